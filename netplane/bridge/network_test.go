package bridge

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

func TestStateSurvivesARestart(t *testing.T) {
	l := newLab(t, "10.231.7.0/24")
	ctx := context.Background()
	first := l.open()
	a := l.create(first, "a")
	b := l.create(first, "b")
	nsA := openNetNS(t, a.NetNSPath)
	serveGreeting(t, nsA, ":80", "a")
	ports, err := first.PublishPorts(ctx, a.ID, []PortMapping{{Protocol: "tcp", HostPort: 8080, ContainerPort: 80}})
	if err != nil {
		t.Fatalf("PublishPorts: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Live restore: closing the daemon's side leaves the containers' network working.
	expectReply(t, l.ns, "127.0.0.1:8080", "a sees "+a.Gateway.String())

	second := l.open()
	for _, want := range []Sandbox{a, b} {
		got, ok := second.Sandbox(want.ID)
		if !ok || got.IP != want.IP || got.NetNSPath != want.NetNSPath || got.MAC.String() != want.MAC.String() {
			t.Errorf("after restart Sandbox(%s) = %+v, %v; want %+v", want.ID, got, ok, want)
		}
	}
	if again := l.create(second, a.ID); again.IP != a.IP {
		t.Errorf("CreateSandbox(a) after restart gave %s, want %s", again.IP, a.IP)
	}
	if got, _ := second.Ports(a.ID); len(got) != 1 || got[0] != ports[0] {
		t.Errorf("published ports after restart %+v, want %+v", got, ports)
	}
	c := l.create(second, "c")
	if c.IP == a.IP || c.IP == b.IP {
		t.Errorf("new sandbox got %s, already in use", c.IP)
	}

	bridges := 0
	for name, kind := range l.links() {
		if kind == "bridge" {
			bridges++
			if name != l.cfg.BridgeName {
				t.Errorf("unexpected bridge %s", name)
			}
		}
	}
	if bridges != 1 {
		t.Errorf("%d bridges after restart, want the one adopted", bridges)
	}
	if got := len(l.rules(chainPostrouting)); got != 3 {
		t.Errorf("postrouting has %d rules after restart, want 3 (not duplicated)", got)
	}
	if got := len(l.rules(chainPublished)); got != 1 {
		t.Errorf("published chain has %d rules after restart, want 1", got)
	}
	expectReply(t, l.ns, "127.0.0.1:8080", "a sees "+a.Gateway.String())
	expectReply(t, openNetNS(t, c.NetNSPath), a.IP.String()+":80", "a sees "+c.IP.String())

	// Host port 8080 is still a's after the restart.
	_, err = second.PublishPorts(ctx, c.ID, []PortMapping{{Protocol: "tcp", HostPort: 8080, ContainerPort: 80}})
	var conflict interface{ Conflict() bool }
	if !errors.As(err, &conflict) {
		t.Errorf("publishing a's host port after restart: err %v, want Conflict", err)
	}
}

func TestRestartReleasesSandboxesWhoseNamespaceIsGone(t *testing.T) {
	l := newLab(t, "10.231.8.0/30") // room for exactly one sandbox
	first := l.open()
	gone := l.create(first, "gone")
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// What a host reboot does to /run.
	if err := unix.Unmount(gone.NetNSPath, unix.MNT_DETACH); err != nil {
		t.Fatalf("unmount: %v", err)
	}

	second := l.open()
	if _, ok := second.Sandbox(gone.ID); ok {
		t.Error("sandbox with a vanished namespace was adopted")
	}
	if sb := l.create(second, "next"); sb.IP != gone.IP {
		t.Errorf("new sandbox got %s, want the released %s", sb.IP, gone.IP)
	}
}

// A sandbox whose creation a crash cut short before it was recorded leaves a
// network namespace and a veth; the next start removes them.
func TestRestartDropsUnrecordedSandboxes(t *testing.T) {
	l := newLab(t, "10.231.9.0/29")
	first := l.open()
	cut := l.create(first, "cut")
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	path := filepath.Join(l.cfg.StateDir, l.cfg.BridgeName+".json")
	st, err := loadState(path)
	if err != nil {
		t.Fatal(err)
	}
	delete(st.Sandboxes, cut.ID) // the state as it was before the sandbox was recorded
	if err := st.save(path); err != nil {
		t.Fatal(err)
	}

	l.open()
	if isNetNSMount(cut.NetNSPath) {
		t.Error("the unrecorded sandbox's network namespace is still mounted")
	}
	if _, ok := l.links()[hostVethName(l.cfg.BridgeName, cut.ID)]; ok {
		t.Error("the unrecorded sandbox's veth is still there")
	}
}

func TestMasqueradeRuleCoversTheSubnet(t *testing.T) {
	l := newLab(t, "10.231.9.0/24")
	l.open()

	found := false
	for _, r := range l.rules(chainPostrouting) {
		var masq, subnet, notBridge bool
		for _, e := range r.Exprs {
			switch e := e.(type) {
			case *expr.Masq:
				masq = true
			case *expr.Cmp:
				subnet = subnet || (e.Op == expr.CmpOpEq && bytes.Equal(e.Data, net.IPv4(10, 231, 9, 0).To4()))
				notBridge = notBridge || (e.Op == expr.CmpOpNeq && bytes.Equal(e.Data, ifnameBytes(l.cfg.BridgeName)))
			}
		}
		found = found || (masq && subnet && notBridge)
	}
	if !found {
		t.Errorf("no `ip saddr 10.231.9.0/24 oifname != %s masquerade` rule in table %s", l.cfg.BridgeName, l.cfg.TableName)
	}
}

func TestTeardownRemovesEverything(t *testing.T) {
	l := newLab(t, "10.231.10.0/24")
	ctx := context.Background()
	n := l.open()
	sb := l.create(n, "x")
	if _, err := n.PublishPorts(ctx, sb.ID, []PortMapping{{ContainerPort: 80}}); err != nil {
		t.Fatalf("PublishPorts: %v", err)
	}
	if err := n.Teardown(ctx); err != nil {
		t.Fatalf("Teardown: %v", err)
	}

	links := l.links()
	if _, ok := links[l.cfg.BridgeName]; ok {
		t.Error("bridge still exists")
	}
	if _, ok := links[hostVethName(l.cfg.BridgeName, sb.ID)]; ok {
		t.Error("sandbox veth still exists")
	}
	if _, err := os.Stat(sb.NetNSPath); !os.IsNotExist(err) {
		t.Errorf("netns mount still there (stat err %v)", err)
	}
	if entries, _ := os.ReadDir(l.cfg.StateDir); len(entries) != 0 {
		t.Errorf("state left behind: %v", entries)
	}
	conn := l.nft()
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	for _, tb := range tables {
		if tb.Name == l.cfg.TableName {
			t.Error("nftables table still exists")
		}
	}

	// A fresh start after teardown knows nothing of the old sandbox.
	again := l.open()
	if _, ok := again.Sandbox(sb.ID); ok {
		t.Error("sandbox came back after teardown")
	}
	if _, err := os.Stat(filepath.Join(l.cfg.StateDir, l.cfg.BridgeName+".json")); err != nil {
		t.Errorf("state file not recreated: %v", err)
	}
}
