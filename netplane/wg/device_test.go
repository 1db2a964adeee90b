package wg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
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
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and TUN devices")
	}
	suffix := randomHex(t, 3)
	nsA, nsB := "wgta"+suffix, "wgtb"+suffix
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

	keyA, keyB := newKey(t), newKey(t)
	devA := openIn(t, nsA, Config{Name: "shoal-a" + suffix, Key: keyA, Address: netip.MustParsePrefix("10.200.0.1/16")})
	devB := openIn(t, nsB, Config{Name: "shoal-b" + suffix, Key: keyB, Address: netip.MustParsePrefix("10.200.0.2/16")})
	if !devA.Userspace() {
		t.Log("the kernel has WireGuard: testing the kernel device")
	}
	if err := devA.SetPeers([]Peer{{Key: keyB.PublicKey(), Endpoint: netip.MustParseAddrPort("192.0.2.2:51820"),
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.200.0.2/32")}}}); err != nil {
		t.Fatal(err)
	}
	if err := devB.SetPeers([]Peer{{Key: keyA.PublicKey(), Endpoint: netip.MustParseAddrPort("192.0.2.1:51820"),
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.200.0.1/32")}}}); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+nsA, "busybox", "ping", "-c", "1", "-W", "1", "10.200.0.2").CombinedOutput()
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ping across the overlay: %v\n%s", err, out)
		}
	}
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
