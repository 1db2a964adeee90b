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

// Two nodes that change at the same moment (they learn of each other from one
// mesh view, or one takes a new key as the other learns it) must not both
// start a handshake: two that cross leave no session for seconds. Only the
// side with the lower key starts one; the handshake then completes at once.
func TestOneSideStartsTheHandshake(t *testing.T) {
	p := newPair(t)
	t.Run("learn each other", func(t *testing.T) {
		p.r.hold()
		p.learnEachOther(t)
		p.oneInitiation(t, p.keyA.PublicKey(), p.keyB.PublicKey())
	})
	t.Run("rotation", func(t *testing.T) {
		newB := newKey(t)
		p.r.hold()
		if err := p.b.SetKey(newB); err != nil {
			t.Fatal(err)
		}
		if err := p.a.SetPeers(p.peerOfA(newB)); err != nil {
			t.Fatal(err)
		}
		p.oneInitiation(t, p.keyA.PublicKey(), newB.PublicKey())
	})
}

// When both sides start a handshake all the same (traffic both ways at the
// moment they learn of each other), the two can cross: each takes the other's
// initiation after sending its own, both answer as responders, no session is
// confirmed, and WireGuard's own retry comes only after 5 s. A relay holds
// both initiations and lets them go together, which makes them cross nearly
// always; the leading side must handshake again well before that retry.
func TestCrossedHandshakesRecover(t *testing.T) {
	p := newPair(t)
	p.r.hold()
	p.learnEachOther(t)
	// The following side starts one too, as its traffic would.
	follower, key := p.b, p.keyA.PublicKey()
	if leads(p.keyB.PublicKey(), key) {
		follower, key = p.a, p.keyB.PublicKey()
	}
	if err := follower.keepaliveOn([]wgtypes.Key{key}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if toA, toB := p.r.heldInitiations(); toA && toB {
			break
		}
		if time.Now().After(deadline) {
			p.r.release()
			t.Fatal("no initiation from both sides")
		}
	}
	released := time.Now()
	p.r.release()
	// WireGuard retries a handshake after 5 s and more; the repair must come first.
	waitHandshakes(t, released, 4500*time.Millisecond, p.a, p.b)
}

// pair is two interfaces in one namespace whose packets go through a relay.
type pair struct {
	r          *relay
	a, b       *Device
	keyA, keyB wgtypes.Key
}

func newPair(t *testing.T) *pair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and TUN devices")
	}
	ns := "wgtx" + randomHex(t, 3)
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	p := &pair{r: newRelay(t, ns, netip.MustParseAddrPort("127.0.0.1:51830"), netip.MustParseAddrPort("127.0.0.1:51831")), keyA: newKey(t), keyB: newKey(t)}
	p.a = openIn(t, ns, Config{Name: "shoal-xa" + ns[4:], Key: p.keyA, Port: 51830, Address: netip.MustParsePrefix("10.201.0.1/16")})
	p.b = openIn(t, ns, Config{Name: "shoal-xb" + ns[4:], Key: p.keyB, Port: 51831, Address: netip.MustParsePrefix("10.201.0.2/16")})
	return p
}

func (p *pair) peerOfA(b wgtypes.Key) []Peer {
	return []Peer{{Key: b.PublicKey(), Endpoint: p.r.toB, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.201.0.2/32")}}}
}

// learnEachOther makes each the other's peer, one right after the other.
func (p *pair) learnEachOther(t *testing.T) {
	t.Helper()
	if err := p.a.SetPeers(p.peerOfA(p.keyB)); err != nil {
		t.Fatal(err)
	}
	if err := p.b.SetPeers([]Peer{{Key: p.keyA.PublicKey(), Endpoint: p.r.toA, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.201.0.1/32")}}}); err != nil {
		t.Fatal(err)
	}
}

// oneInitiation checks, while the relay holds the packets, that the side that
// leads (of a, with key pubA, and b, with pubB) sent an initiation and the
// other none within a moment; then lets the packets go and waits for the
// handshake on both sides.
func (p *pair) oneInitiation(t *testing.T, pubA, pubB wgtypes.Key) {
	t.Helper()
	aLeads := leads(pubA, pubB)
	from := func() (a, b bool) { toA, toB := p.r.heldInitiations(); return toB, toA }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if a, b := from(); a && aLeads || b && !aLeads {
			break
		}
		if time.Now().After(deadline) {
			p.r.release()
			t.Fatal("no initiation from the leading side")
		}
	}
	// The other side's own would have gone with its change, before this one's.
	for until := time.Now().Add(300 * time.Millisecond); time.Now().Before(until); time.Sleep(10 * time.Millisecond) {
		if a, b := from(); a && b {
			p.r.release()
			t.Fatalf("both sides started a handshake (a leads: %v)", aLeads)
		}
	}
	released := time.Now()
	p.r.release()
	waitHandshakes(t, released, 4500*time.Millisecond, p.a, p.b)
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
// held on its way to a, and to b.
func (r *relay) heldInitiations() (toA, toB bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.held {
		if len(p.data) > 0 && p.data[0] == 1 {
			toA = toA || p.to == r.a
			toB = toB || p.to == r.b
		}
	}
	return toA, toB
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
