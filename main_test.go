package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// Bad -H addresses are refused while flags are parsed, before the daemon creates
// anything on the host (bridge, nftables table, directories).
func TestDaemonHostFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // "" = accepted
	}{
		{[]string{"-H", "fd://"}, `invalid -H "fd://": systemd socket activation (fd://) is not supported; use unix:///path or tcp://host:port`},
		{[]string{"-H", "unix:///run/x.sock", "--host", "fd://3"}, "systemd socket activation (fd://) is not supported"},
		{[]string{"-H", "npipe:////./pipe/docker"}, `invalid -H "npipe:////./pipe/docker": want unix:///path or tcp://host:port`},
		{[]string{"-H", "/run/x.sock"}, "want unix:///path or tcp://host:port"},
		{[]string{"-H", "unix://"}, "want unix:///path or tcp://host:port"},
		{[]string{"-H", "tcp://0.0.0.0:2376"}, "a TCP listener needs --tlsverify"},
		{[]string{"-H", "unix:///run/x.sock"}, ""},
		{nil, ""},
	} {
		cfg, err := parseDaemonFlags(c.args)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: refused: %v", c.args, err)
		case c.want == "" && len(cfg.Hosts) == 0:
			t.Errorf("%v: no host", c.args)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

func TestDaemonLabelFlags(t *testing.T) {
	cfg, err := parseDaemonFlags([]string{"--label", "zone=east", "--label", "gpu=", "--data-root", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Labels) != 2 || cfg.Labels["zone"] != "east" || cfg.Labels["gpu"] != "" {
		t.Fatalf("labels %v, want zone=east and gpu=", cfg.Labels)
	}
	if _, err := parseDaemonFlags([]string{"--label", "novalue"}); err == nil {
		t.Fatal("a label without = was accepted")
	}
}

func TestDaemonSwarmDefaultAdvertiseAddrFlag(t *testing.T) {
	cfg, err := parseDaemonFlags([]string{"--swarm-default-advertise-addr=lo"})
	if err != nil || cfg.SwarmDefaultAdvertiseAddr != "lo" {
		t.Fatalf("--swarm-default-advertise-addr=lo: %q, %v", cfg.SwarmDefaultAdvertiseAddr, err)
	}
}

func TestDaemonGenericResourceFlags(t *testing.T) {
	cfg, err := parseDaemonFlags([]string{"--node-generic-resource", "gpu=GPU-1", "--node-generic-resource", "ssd=2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.GenericResources) != 2 || cfg.GenericResources[0].NamedResourceSpec == nil ||
		cfg.GenericResources[0].NamedResourceSpec.Value != "GPU-1" || cfg.GenericResources[1].DiscreteResourceSpec == nil ||
		cfg.GenericResources[1].DiscreteResourceSpec.Value != 2 {
		t.Fatalf("generic resources %+v", cfg.GenericResources)
	}
	if _, err := parseDaemonFlags([]string{"--node-generic-resource", "gpu"}); err == nil {
		t.Fatal("a resource without = was accepted")
	}
}

// Flags are GNU-style, as dockerd's: --help is not an error, -H is --host, and a
// single-dash long flag is refused.
func TestDaemonFlagStyle(t *testing.T) {
	if _, err := parseDaemonFlags([]string{"--help"}); !errors.Is(err, pflag.ErrHelp) {
		t.Errorf("--help: %v, want ErrHelp", err)
	}
	cfg, err := parseDaemonFlags([]string{"--host", "unix:///run/a.sock", "-H", "unix:///run/b.sock", "--data-root=/tmp/x"})
	if err != nil || len(cfg.Hosts) != 2 || cfg.DataRoot != "/tmp/x" {
		t.Errorf("GNU-style flags: %+v, %v", cfg, err)
	}
	if _, err := parseDaemonFlags([]string{"-data-root", "/tmp/x"}); err == nil {
		t.Error("-data-root (one dash) was accepted")
	}
	if u := daemonUsage(); !strings.Contains(u, "--data-root string") || !strings.Contains(u, `(default "/var/lib/shoal")`) {
		t.Errorf("usage does not show --data-root with its default:\n%s", u)
	}
}
