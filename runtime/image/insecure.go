package image

import (
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/registry"
)

// loopback is what dockerd always treats as insecure: a registry on the node
// itself needs no TLS.
var loopback = netip.MustParsePrefix("127.0.0.0/8")

// insecureRegistries splits --insecure-registry values into hosts and CIDRs.
func insecureRegistries(values []string) (hosts map[string]bool, cidrs []netip.Prefix) {
	hosts = map[string]bool{}
	cidrs = []netip.Prefix{loopback}
	for _, v := range values {
		if p, err := netip.ParsePrefix(v); err == nil {
			if !slices.Contains(cidrs, p.Masked()) {
				cidrs = append(cidrs, p.Masked())
			}
			continue
		}
		hosts[hostOf(v)] = true
	}
	return hosts, cidrs
}

// registries is where images come from besides their own registry, and which
// registries may be reached without verified TLS. SIGHUP may replace it while
// pulls run, so the store holds it behind an atomic pointer.
type registries struct {
	mirrors       []string
	insecure      map[string]bool // --insecure-registry hosts
	insecureCIDRs []netip.Prefix  // --insecure-registry CIDRs, and 127.0.0.0/8
}

// SetRegistries replaces the registry mirrors for docker.io and the insecure
// registries (hosts or CIDRs); pulls that start afterwards use them.
func (s *Store) SetRegistries(mirrors, insecure []string) {
	r := &registries{mirrors: append([]string(nil), mirrors...)}
	r.insecure, r.insecureCIDRs = insecureRegistries(insecure)
	s.reg.Store(r)
}

// isInsecure reports whether host (host[:port]) may be reached over plain HTTP or
// unverified TLS: it was named by --insecure-registry, or its address is in one
// of the insecure CIDRs (127.0.0.0/8 always, as with dockerd).
func (s *Store) isInsecure(host string) bool {
	r := s.reg.Load()
	if r.insecure[host] {
		return true
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	addr, err := netip.ParseAddr(strings.Trim(name, "[]"))
	if err != nil {
		return name == "localhost"
	}
	if addr.IsLoopback() {
		return true
	}
	for _, p := range r.insecureCIDRs {
		if p.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

// ServiceConfig is the registry configuration as `docker info` shows it.
func (s *Store) ServiceConfig() *registry.ServiceConfig {
	r := s.reg.Load()
	mirrors := append([]string{}, r.mirrors...)
	cfg := &registry.ServiceConfig{
		InsecureRegistryCIDRs: append([]netip.Prefix{}, r.insecureCIDRs...),
		IndexConfigs: map[string]*registry.IndexInfo{
			"docker.io": {Name: "docker.io", Mirrors: mirrors, Secure: true, Official: true},
		},
		Mirrors: mirrors,
	}
	for host := range r.insecure {
		cfg.IndexConfigs[host] = &registry.IndexInfo{Name: host, Mirrors: []string{}, Secure: false}
	}
	return cfg
}
