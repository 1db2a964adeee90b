package dns

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const hostConf = `# host resolvers
nameserver 10.255.255.53
nameserver 127.0.0.53
nameserver fe80::1%eth0
nameserver not-an-address
search corp.example example.net
options ndots:2 timeout:1 edns0
; an old comment
domain corp.example
sortlist 10.0.0.0/8
`

func TestResolvConf(t *testing.T) {
	got := string(ResolvConf([]byte(hostConf)))
	want := resolvConfHeader +
		"nameserver 127.0.0.11\n" +
		"search corp.example example.net\n" +
		"options ndots:2 timeout:1 edns0\n" +
		"domain corp.example\n"
	if got != want {
		t.Fatalf("ResolvConf =\n%s\nwant\n%s", got, want)
	}
	if empty := string(ResolvConf(nil)); !strings.HasSuffix(empty, "\nnameserver 127.0.0.11\n") ||
		strings.Count(empty, "nameserver") != 1 {
		t.Fatalf("ResolvConf(nil) =\n%s\nwant the header and the embedded server only", empty)
	}
}

func TestParseUpstreams(t *testing.T) {
	got := parseUpstreams([]byte(hostConf))
	want := []netip.AddrPort{
		netip.MustParseAddrPort("10.255.255.53:53"),
		netip.MustParseAddrPort("127.0.0.53:53"),
		netip.MustParseAddrPort("[fe80::1%eth0]:53"),
	}
	if len(got) != len(want) {
		t.Fatalf("upstreams %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("upstreams %v, want %v", got, want)
		}
	}
}

func TestNewReadsHostResolvConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte(hostConf), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{HostResolvConf: path})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if len(s.fwd.upstreams) != 3 || s.fwd.upstreams[1] != "127.0.0.53:53" {
		t.Fatalf("upstreams %v, want the file's three nameservers in order", s.fwd.upstreams)
	}
	if _, err := New(Config{HostResolvConf: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Fatal("New with a missing resolv.conf succeeded")
	}
}
