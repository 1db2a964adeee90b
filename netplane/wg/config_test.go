package wg

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// What wgctrl is told, on either device: a kernel link gets its key and port;
// a peer list is applied in place (peers gone removed, others set with their
// endpoint and AllowedIPs replaced), never by replacing every peer; a new
// peer gets a keepalive (which starts a handshake at once) only from the side
// that leads the pair, and a peer that stays keeps the keepalive it has; a
// rotation turns the keepalive off and on for the peers it leads only. The
// kernel device takes these as the userspace one does
// (TestTwoNodesPingOverWireGuard runs the userspace one here: this kernel has
// no WireGuard).
func TestWgctrlConfiguration(t *testing.T) {
	key := newKey(t)
	kc := keyConfig(Config{Key: key, Port: 51820})
	if kc.PrivateKey == nil || *kc.PrivateKey != key || kc.ListenPort == nil || *kc.ListenPort != 51820 || kc.ReplacePeers || len(kc.Peers) != 0 {
		t.Fatalf("kernel key config %+v", kc)
	}

	keys := []wgtypes.Key{newKey(t).PublicKey(), newKey(t).PublicKey(), newKey(t).PublicKey(), newKey(t).PublicKey(), newKey(t).PublicKey()}
	slices.SortFunc(keys, func(a, b wgtypes.Key) int { return bytes.Compare(a[:], b[:]) })
	below, self, stay, gone, above := keys[0], keys[1], keys[2], keys[3], keys[4]
	cur := []wgtypes.Peer{{PublicKey: stay}, {PublicKey: gone}}
	cfg := peersConfig(self, cur, []Peer{
		{Key: stay, Endpoint: netip.MustParseAddrPort("192.0.2.2:51820"), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.254.0.2/32"), netip.MustParsePrefix("10.0.1.5/32")}},
		{Key: above, Endpoint: netip.MustParseAddrPort("192.0.2.3:51820"), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.254.0.3/32")}},
		{Key: below, Endpoint: netip.MustParseAddrPort("192.0.2.4:51820"), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.254.0.4/32")}},
	})
	if cfg.ReplacePeers || cfg.PrivateKey != nil || cfg.ListenPort != nil {
		t.Fatalf("peer config touches more than peers: %+v", cfg)
	}
	if len(cfg.Peers) != 4 {
		t.Fatalf("peer configs %+v, want gone removed, stay and the two added set", cfg.Peers)
	}
	if p := cfg.Peers[0]; p.PublicKey != gone || !p.Remove {
		t.Errorf("first config %+v, want the gone peer removed", p)
	}
	for i, want := range []struct {
		key       wgtypes.Key
		endpoint  string
		allowed   []string
		keepalive time.Duration // -1: left as it is
	}{
		{stay, "192.0.2.2:51820", []string{"10.254.0.2/32", "10.0.1.5/32"}, -1},
		{above, "192.0.2.3:51820", []string{"10.254.0.3/32"}, 25 * time.Second},
		{below, "192.0.2.4:51820", []string{"10.254.0.4/32"}, -1},
	} {
		p := cfg.Peers[i+1]
		keepaliveOK := p.PersistentKeepaliveInterval == nil && want.keepalive < 0 ||
			p.PersistentKeepaliveInterval != nil && *p.PersistentKeepaliveInterval == want.keepalive
		if p.PublicKey != want.key || p.Remove || p.UpdateOnly || !p.ReplaceAllowedIPs || p.Endpoint.String() != want.endpoint ||
			!keepaliveOK || len(p.AllowedIPs) != len(want.allowed) {
			t.Fatalf("peer %d config %+v, want %+v", i, p, want)
		}
		for j, a := range want.allowed {
			if p.AllowedIPs[j].String() != a {
				t.Errorf("peer %d allowed %v, want %v", i, p.AllowedIPs, want.allowed)
			}
		}
	}

	hs := handshakeConfigs(self, []wgtypes.Peer{{PublicKey: below}, {PublicKey: stay}, {PublicKey: above}})
	if len(hs) != 2 {
		t.Fatalf("handshake configs %+v", hs)
	}
	for i, want := range []time.Duration{0, 25 * time.Second} {
		if len(hs[i].Peers) != 2 || hs[i].Peers[0].PublicKey != stay || hs[i].Peers[1].PublicKey != above {
			t.Errorf("handshake step %d: %+v, want the two peers above self only", i, hs[i].Peers)
		}
		for _, p := range hs[i].Peers {
			if !p.UpdateOnly || p.PersistentKeepaliveInterval == nil || *p.PersistentKeepaliveInterval != want || p.Remove || p.ReplaceAllowedIPs {
				t.Errorf("handshake step %d: %+v, want keepalive %s on an existing peer only", i, p, want)
			}
		}
	}
}

// The mesh is sized from the underlay: an interface's MTU less WireGuard's
// overhead for the address's family, the default when no interface holds
// the address.
func TestMTUFor(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces")
	}
	ns := "wgmtu" + randomHex(t, 3)
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "add", "pppish", "mtu", "1492", "type", "veth", "peer", "name", "other")
	run(t, "ip", "-n", ns, "addr", "add", "192.0.2.7/24", "dev", "pppish")
	run(t, "ip", "-n", ns, "addr", "add", "2001:db8::7/64", "dev", "pppish")
	got := map[string]int{}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread dies in the namespace
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
		for _, a := range []string{"192.0.2.7", "2001:db8::7", "198.51.100.1"} {
			got[a] = MTUFor(netip.MustParseAddr(a))
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got["192.0.2.7"] != 1432 || got["2001:db8::7"] != 1412 || got["198.51.100.1"] != DefaultMTU {
		t.Fatalf("MTUFor = %v, want 1432 over IPv4, 1412 over IPv6, the default for an address no interface holds", got)
	}
}
