package wg

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Two nodes that change at the same moment both start a handshake: two nodes
// that learn of each other at once (a node joins, and it and the others get
// the same mesh), or a rotation the other node learns of as it happens. The
// two handshakes can cross: each side takes the other's initiation after
// sending its own, both answer as responders, no session is ever confirmed,
// and WireGuard's own retry comes only after 5 s. A relay holds both
// initiations and lets them go together, which makes them cross nearly always; one
// side must notice and handshake again well before that retry, both times.
func TestCrossedHandshakesRecover(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and TUN devices")
	}
	ns := "wgtx" + randomHex(t, 3)
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")

	r := newRelay(t, ns, netip.MustParseAddrPort("127.0.0.1:51830"), netip.MustParseAddrPort("127.0.0.1:51831"))
	keyA, keyB := newKey(t), newKey(t)
	devA := openIn(t, ns, Config{Name: "shoal-xa" + ns[4:], Key: keyA, Port: 51830, Address: netip.MustParsePrefix("10.201.0.1/16")})
	devB := openIn(t, ns, Config{Name: "shoal-xb" + ns[4:], Key: keyB, Port: 51831, Address: netip.MustParsePrefix("10.201.0.2/16")})
	peerOfA := func(b wgtypes.Key) []Peer {
		return []Peer{{Key: b.PublicKey(), Endpoint: r.toB, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.201.0.2/32")}}}
	}

	t.Run("learn each other", func(t *testing.T) {
		r.cross(t, devA, devB, func() {
			if err := devA.SetPeers(peerOfA(keyB)); err != nil {
				t.Fatal(err)
			}
			if err := devB.SetPeers([]Peer{{Key: keyA.PublicKey(), Endpoint: r.toA, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.201.0.1/32")}}}); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("rotation", func(t *testing.T) {
		newB := newKey(t)
		r.cross(t, devA, devB, func() {
			if err := devB.SetKey(newB); err != nil {
				t.Fatal(err)
			}
			if err := devA.SetPeers(peerOfA(newB)); err != nil {
				t.Fatal(err)
			}
		})
	})
}

// cross holds the packets between a and b while change runs, until both
// have sent a handshake initiation; lets them go together; and waits for a
// handshake on both sides, sooner than WireGuard's own retry.
func (r *relay) cross(t *testing.T, a, b *Device, change func()) {
	t.Helper()
	r.hold()
	change()
	for deadline := time.Now().Add(10 * time.Second); !r.heldInitiations(); {
		if time.Now().After(deadline) {
			r.release()
			t.Fatal("no initiation from both sides")
		}
		time.Sleep(10 * time.Millisecond)
	}
	released := time.Now()
	r.release()
	waitHandshakes(t, released, 4500*time.Millisecond, a, b)
}

// waitHandshakes waits until every device has a handshake after since with
// its one peer.
func waitHandshakes(t *testing.T, since time.Time, within time.Duration, devs ...*Device) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		done := true
		var last []any
		for _, d := range devs {
			peers, err := d.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if len(peers) != 1 || !peers[0].LastHandshakeTime.After(since) {
				done = false
			}
			for _, p := range peers {
				last = append(last, p.LastHandshakeTime)
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no handshake after %v within %v: last handshakes %v", since, within, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// relay carries WireGuard's packets between two devices on one loopback, and
// can hold them: toB is where a's peer b is reached, toA where b's peer a is.
type relay struct {
	toA, toB netip.AddrPort

	mu      sync.Mutex
	holding bool
	held    []heldPacket
	fromA   *net.UDPConn // receives a's packets (toB), sends b's to a
	fromB   *net.UDPConn // receives b's packets (toA), sends a's to b
	a, b    netip.AddrPort
}

type heldPacket struct {
	out  *net.UDPConn
	to   netip.AddrPort
	data []byte
}

// newRelay opens the relay's sockets in ns; a and b are the devices' ports.
func newRelay(t *testing.T, ns string, a, b netip.AddrPort) *relay {
	t.Helper()
	r := &relay{a: a, b: b}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // dies with the goroutine: its namespace is changed
		target, err := netns.GetFromName(ns)
		if err != nil {
			done <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			done <- err
			return
		}
		if r.fromA, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			done <- err
			return
		}
		r.fromB, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatalf("relay sockets: %v", err)
	}
	r.toB = r.fromA.LocalAddr().(*net.UDPAddr).AddrPort()
	r.toA = r.fromB.LocalAddr().(*net.UDPAddr).AddrPort()
	t.Cleanup(func() { r.fromA.Close(); r.fromB.Close() })
	go r.carry(r.fromA, r.fromB, b)
	go r.carry(r.fromB, r.fromA, a)
	return r
}

// carry forwards what in receives to to, out of out.
func (r *relay) carry(in, out *net.UDPConn, to netip.AddrPort) {
	buf := make([]byte, 65536)
	for {
		n, _, err := in.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		data := append([]byte(nil), buf[:n]...)
		r.mu.Lock()
		if r.holding {
			r.held = append(r.held, heldPacket{out, to, data})
			r.mu.Unlock()
			continue
		}
		r.mu.Unlock()
		_, _ = out.WriteToUDPAddrPort(data, to)
	}
}

func (r *relay) hold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holding = true
}

// heldInitiations tells whether a handshake initiation (message type 1) is
// held from each side.
func (r *relay) heldInitiations() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	toA, toB := false, false
	for _, p := range r.held {
		if len(p.data) > 0 && p.data[0] == 1 {
			toA = toA || p.to == r.a
			toB = toB || p.to == r.b
		}
	}
	return toA && toB
}

// release sends what was held, and stops holding.
func (r *relay) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.held {
		_, _ = p.out.WriteToUDPAddrPort(p.data, p.to)
	}
	r.held, r.holding = nil, false
}
