package overlay

import (
	"net/netip"
	"strings"
	"testing"
)

func TestAttachmentsAreChecked(t *testing.T) {
	good := Attachment{NetworkID: "neta", Subnet: netip.MustParsePrefix("10.10.1.0/24"),
		Gateway: netip.MustParseAddr("10.10.1.1"), Addr: netip.MustParseAddr("10.10.1.5"), IfName: "eth1", MTU: 1420}
	tests := []struct {
		name    string
		sandbox string
		change  func(*Attachment)
		wantErr string
	}{
		{"good", "task1", func(*Attachment) {}, ""},
		{"no sandbox", "", func(*Attachment) {}, "sandbox"},
		{"slash in sandbox", "a/b", func(*Attachment) {}, "sandbox"},
		{"no network", "task1", func(a *Attachment) { a.NetworkID = "" }, "network"},
		{"IPv6 subnet", "task1", func(a *Attachment) { a.Subnet = netip.MustParsePrefix("fd00::/64") }, "subnet"},
		{"gateway outside", "task1", func(a *Attachment) { a.Gateway = netip.MustParseAddr("10.10.2.1") }, "gateway"},
		{"address is the gateway", "task1", func(a *Attachment) { a.Addr = a.Gateway }, "address"},
		{"address is the network", "task1", func(a *Attachment) { a.Addr = netip.MustParseAddr("10.10.1.0") }, "address"},
		{"address outside", "task1", func(a *Attachment) { a.Addr = netip.MustParseAddr("10.10.2.5") }, "address"},
		{"long interface name", "task1", func(a *Attachment) { a.IfName = "eth1234567890123" }, "interface"},
		{"tiny MTU", "task1", func(a *Attachment) { a.MTU = 100 }, "MTU"},
		{"IPv6 route", "task1", func(a *Attachment) { a.Routes = []netip.Prefix{netip.MustParsePrefix("fd00::/8")} }, "route"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := good
			tc.change(&a)
			err := validateAttachment(tc.sandbox, a)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one about %s", err, tc.wantErr)
			}
		})
	}
}

// Host end names fit IFNAMSIZ, start with the rules' wildcard, and differ
// by sandbox and by network.
func TestHostEndNames(t *testing.T) {
	long := strings.Repeat("x", 128)
	names := map[string]bool{}
	for _, pair := range [][2]string{{"t1", "n1"}, {"t1", "n2"}, {"t2", "n1"}, {long, long}} {
		n := hostEndName(pair[0], pair[1])
		if len(n) != 15 || !strings.HasPrefix(n, hostEndPrefix) || names[n] {
			t.Errorf("host end name %q for %v", n, pair)
		}
		names[n] = true
	}
	if hostEndName("t1", "n1") != hostEndName("t1", "n1") {
		t.Errorf("names are not deterministic")
	}
}
