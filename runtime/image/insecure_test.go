package image

import (
	"net/netip"
	"slices"
	"testing"
)

func TestInsecureRegistries(t *testing.T) {
	s := &Store{}
	mirrors := []string{"http://127.0.0.1:5000"}
	s.SetRegistries(mirrors, []string{"registry.lan:5000", "10.1.0.0/16", "http://plain.example:80/"})
	for host, want := range map[string]bool{
		"127.0.0.1:5000":    true, // loopback, always (as dockerd)
		"127.9.9.9":         true,
		"[::1]:5000":        true,
		"localhost:5000":    true,
		"registry.lan:5000": true,
		"registry.lan":      false, // the port is part of the name
		"10.1.2.3:5000":     true,
		"10.2.0.1:5000":     false,
		"plain.example:80":  true,
		"docker.io":         false,
		"192.168.1.1:443":   false,
	} {
		if got := s.isInsecure(host); got != want {
			t.Errorf("isInsecure(%q) = %v, want %v", host, got, want)
		}
	}
	cfg := s.ServiceConfig()
	if !slices.Equal(cfg.InsecureRegistryCIDRs, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.1.0.0/16")}) {
		t.Errorf("InsecureRegistryCIDRs = %v", cfg.InsecureRegistryCIDRs)
	}
	if idx := cfg.IndexConfigs["registry.lan:5000"]; idx == nil || idx.Secure {
		t.Errorf("index of registry.lan:5000 = %+v", idx)
	}
	if idx := cfg.IndexConfigs["docker.io"]; idx == nil || !idx.Official || !idx.Secure || !slices.Equal(idx.Mirrors, mirrors) {
		t.Errorf("index of docker.io = %+v", idx)
	}
}

// A reload (SIGHUP) replaces the registries: what was insecure is no longer, and
// docker info shows the new mirrors.
func TestSetRegistriesReplaces(t *testing.T) {
	s := &Store{}
	s.SetRegistries([]string{"mirror.lan:5000"}, []string{"registry.lan:5000"})
	s.SetRegistries([]string{"http://other.lan"}, []string{"10.9.0.0/16"})
	if s.isInsecure("registry.lan:5000") || !s.isInsecure("10.9.0.1:5000") {
		t.Errorf("after the reload: registry.lan:5000 insecure %v, 10.9.0.1:5000 insecure %v",
			s.isInsecure("registry.lan:5000"), s.isInsecure("10.9.0.1:5000"))
	}
	if m := s.ServiceConfig().Mirrors; !slices.Equal(m, []string{"http://other.lan"}) {
		t.Errorf("mirrors after the reload: %v", m)
	}
}
