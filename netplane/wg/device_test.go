package wg

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Two nodes, each a network namespace joined by a veth (the underlay), open
// their interfaces (userspace here: this kernel has no WireGuard), learn each
// other as peers through wgctrl, and ping across the overlay; both see the
// handshake and the bytes.
func TestTwoNodesPingOverWireGuard(t *testing.T) {
	nsA, _, devA, devB, _, _ := twoNodes(t)
	waitPing(t, nsA, "10.200.0.2")
	for name, d := range map[string]*Device{"a": devA, "b": devB} {
		peers, err := d.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if len(peers) != 1 || peers[0].LastHandshakeTime.IsZero() || peers[0].ReceiveBytes == 0 || peers[0].TransmitBytes == 0 {
			t.Errorf("node %s: peers %+v, want one with a handshake and bytes both ways", name, peers)
		}
	}
	// The peer list is replaced, not merged: with none, the other node is unreachable.
	if err := devA.SetPeers(nil); err != nil {
		t.Fatal(err)
	}
	if peers, err := devA.Stats(); err != nil || len(peers) != 0 {
		t.Errorf("peers after SetPeers(nil): %+v %v", peers, err)
	}
}

// twoNodes makes two namespaces joined by a veth, each with an interface
// whose peer is the other: a at 10.200.0.1, b at 10.200.0.2.
func twoNodes(t *testing.T) (nsA, nsB string, devA, devB *Device, keyA, keyB wgtypes.Key) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and TUN devices")
	}
	suffix := randomHex(t, 3)
	nsA, nsB = "wgta"+suffix, "wgtb"+suffix
	run(t, "ip", "netns", "add", nsA)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", nsA).Run() })
	run(t, "ip", "netns", "add", nsB)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", nsB).Run() })
	run(t, "ip", "link", "add", "va"+suffix, "netns", nsA, "type", "veth", "peer", "name", "vb"+suffix, "netns", nsB)
	run(t, "ip", "-n", nsA, "addr", "add", "192.0.2.1/24", "dev", "va"+suffix)
	run(t, "ip", "-n", nsB, "addr", "add", "192.0.2.2/24", "dev", "vb"+suffix)
	for _, ns := range []string{nsA, nsB} {
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "-n", nsA, "link", "set", "va"+suffix, "up")
	run(t, "ip", "-n", nsB, "link", "set", "vb"+suffix, "up")

	keyA, keyB = newKey(t), newKey(t)
	devA = openIn(t, nsA, Config{Name: "shoal-a" + suffix, Key: keyA, Address: netip.MustParsePrefix("10.200.0.1/16")})
	devB = openIn(t, nsB, Config{Name: "shoal-b" + suffix, Key: keyB, Address: netip.MustParsePrefix("10.200.0.2/16")})
	if !devA.Userspace() {
		t.Log("the kernel has WireGuard: testing the kernel device")
	}
	if err := devA.SetPeers([]Peer{peerB(keyB.PublicKey())}); err != nil {
		t.Fatal(err)
	}
	if err := devB.SetPeers([]Peer{peerA(keyA.PublicKey())}); err != nil {
		t.Fatal(err)
	}
	return nsA, nsB, devA, devB, keyA, keyB
}

func peerA(k wgtypes.Key) Peer {
	return Peer{Key: k, Endpoint: netip.MustParseAddrPort("192.0.2.1:51820"), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.200.0.1/32")}}
}

func peerB(k wgtypes.Key) Peer {
	return Peer{Key: k, Endpoint: netip.MustParseAddrPort("192.0.2.2:51820"), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.200.0.2/32")}}
}

// waitPing waits until a ping from ns reaches addr.
func waitPing(t *testing.T, ns, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+ns, "busybox", "ping", "-c", "1", "-W", "1", addr).CombinedOutput()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ping across the overlay: %v\n%s", err, out)
		}
	}
}

// A node's key rotates while the other pings it without pause: the other
// learns the new key as the node takes it, and no ping is lost (packets wait
// for the new handshake, they are not dropped).
func TestKeyRotationLosesNothing(t *testing.T) {
	nsA, _, devA, devB, _, _ := twoNodes(t)
	waitPing(t, nsA, "10.200.0.2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ping := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+nsA, "busybox", "ping", "-c", "60", "-i", "0.05", "-W", "2", "10.200.0.2")
	stdout, err := ping.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	var replies atomic.Int32
	var out strings.Builder
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "bytes from") {
				replies.Add(1)
			}
		}
	}()
	// Rotate under traffic: once pings flow.
	for deadline := time.Now().Add(10 * time.Second); replies.Load() < 5; {
		if time.Now().After(deadline) {
			t.Fatal("no pings before the rotation")
		}
		time.Sleep(10 * time.Millisecond)
	}
	newB := newKey(t)
	if err := devB.SetKey(newB); err != nil {
		t.Fatal(err)
	}
	if err := devA.SetPeers([]Peer{peerB(newB.PublicKey())}); err != nil {
		t.Fatal(err)
	}
	<-read
	if err := ping.Wait(); err != nil {
		t.Fatalf("ping during the rotation: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "60 packets received") {
		t.Fatalf("pings lost during the rotation:\n%s", out.String())
	}
	peers, err := devA.Stats()
	if err != nil || len(peers) != 1 || peers[0].PublicKey != newB.PublicKey() || peers[0].LastHandshakeTime.IsZero() {
		t.Fatalf("a's peer after the rotation: %+v %v", peers, err)
	}
}

// openIn opens a device inside the named namespace, from a locked thread.
func openIn(t *testing.T, ns string, cfg Config) *Device {
	t.Helper()
	type result struct {
		d   *Device
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- result{err: err}
			return
		}
		target, err := netns.GetFromName(ns)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			done <- result{err: err}
			return
		}
		d, err := Open(cfg)
		if err := netns.Set(orig); err != nil {
			done <- result{d, err} // the thread stays locked and dies with the goroutine
			return
		}
		runtime.UnlockOSThread()
		done <- result{d, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("open %s in %s: %v", cfg.Name, ns, r.err)
	}
	t.Cleanup(func() { r.d.Close() })
	return r.d
}

func newKey(t *testing.T) wgtypes.Key {
	t.Helper()
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
