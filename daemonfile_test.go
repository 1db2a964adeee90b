package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeConfig writes a daemon.json into a temporary directory and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// daemon.json sets what the flags set, under dockerd's keys, and the flags' own
// checks apply to its values.
func TestConfigFileApplied(t *testing.T) {
	path := writeConfig(t, `{
		"hosts": ["unix:///run/a.sock"],
		"data-root": "/srv/shoal",
		"log-level": "warn",
		"labels": ["zone=east", "tier=edge"],
		"registry-mirrors": ["http://127.0.0.1:5000"],
		"insecure-registries": ["10.1.0.0/16"],
		"default-address-pools": [{"base": "10.20.0.0/16", "size": 24}],
		"metrics-addr": "127.0.0.1:9323",
		"min-cert-expiry": "10s"
	}`)
	cfg, err := parseDaemonFlags([]string{"--config-file", path, "--exec-root", "/run/x"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Hosts, []string{"unix:///run/a.sock"}) || cfg.DataRoot != "/srv/shoal" || cfg.ExecRoot != "/run/x" ||
		cfg.LogLevel != slog.LevelWarn || cfg.Labels["zone"] != "east" || cfg.Labels["tier"] != "edge" ||
		!slices.Equal(cfg.RegistryMirrors, []string{"http://127.0.0.1:5000"}) || !slices.Equal(cfg.InsecureRegistry, []string{"10.1.0.0/16"}) ||
		cfg.BridgeSubnet != "10.20.0.0/24" || cfg.MetricsAddr != "127.0.0.1:9323" || cfg.MinCertExpiry.Seconds() != 10 {
		t.Fatalf("config %+v", cfg)
	}
}

func TestConfigFileRefused(t *testing.T) {
	for _, c := range []struct {
		name, file string
		args       []string
		want       string
	}{
		{"a key also given as a flag", `{"hosts": ["tcp://127.0.0.1:2376"]}`, []string{"-H", "unix:///run/shoal.sock"},
			"the following directives are specified both as a flag and in the configuration file: hosts: (from flag: [unix:///run/shoal.sock], from file: [tcp://127.0.0.1:2376])"},
		{"an unknown key", `{"storage-driver": "overlay2"}`, nil, "the following directives don't match any configuration option: storage-driver"},
		{"a bad label", `{"labels": ["novalue"]}`, nil, `invalid --label "novalue"`},
		{"TCP without TLS", `{"hosts": ["tcp://0.0.0.0:2376"]}`, nil, "a TCP listener needs --tlsverify"},
		{"a bad pool", `{"default-address-pools": [{"base": "10.20.0.0/16", "size": 8}]}`, nil, "invalid --default-address-pool"},
		{"metrics off the loopback without TLS", `{"metrics-addr": "0.0.0.0:9323"}`, nil, "off the loopback metrics need --tlsverify"},
		{"metrics on every address without TLS", `{"metrics-addr": ":9323"}`, nil, "off the loopback metrics need --tlsverify"},
		{"metrics on a name", `{"metrics-addr": "metrics.lan:9323"}`, nil, "want an IP address or localhost"},
		{"dashboard off the loopback without TLS", `{"dashboard-addr": "0.0.0.0:9324"}`, nil, "off the loopback the dashboard needs --tlsverify"},
		{"dashboard without a port", `{"dashboard-addr": "127.0.0.1"}`, nil, "invalid --dashboard-addr \"127.0.0.1\": want host:port"},
		{"bad JSON", `{"labels": [}`, nil, "line 1, column 13"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeConfig(t, c.file)
			_, err := parseDaemonFlags(append([]string{"--config-file", path}, c.args...))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
}

// The default file may be missing; a file named on the command line may not.
func TestConfigFileMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "daemon.json")
	if _, err := parseDaemonFlags([]string{"--config-file", missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("a named missing file: %v, want an error naming it", err)
	}
	if _, err := os.Stat(defaultConfigFile); err == nil {
		t.Skipf("%s exists on this machine", defaultConfigFile)
	}
	if _, err := parseDaemonFlags(nil); err != nil {
		t.Fatalf("no file at the default path: %v", err)
	}
}

// --bip wins over the address pools, as dockerd's bridge takes a pool only when
// no --bip is given; metrics off the loopback are served with the API's TLS.
func TestOperationFlags(t *testing.T) {
	cfg, err := parseDaemonFlags([]string{"--default-address-pool", "base=10.20.0.0/16,size=24", "--bip", "172.31.0.0/16"})
	if err != nil || cfg.BridgeSubnet != "172.31.0.0/16" {
		t.Fatalf("--bip with a pool: %q, %v", cfg.BridgeSubnet, err)
	}
	cfg, err = parseDaemonFlags([]string{"--metrics-addr", "0.0.0.0:9323", "--tlsverify", "--tlscacert", "ca.pem", "--tlscert", "cert.pem", "--tlskey", "key.pem"})
	if err != nil || cfg.MetricsAddr != "0.0.0.0:9323" {
		t.Fatalf("metrics with TLS: %+v, %v", cfg, err)
	}
	cfg, err = parseDaemonFlags([]string{"-D", "--log-level", "error"})
	if err != nil || cfg.LogLevel != slog.LevelDebug {
		t.Fatalf("--debug: level %v, %v", cfg.LogLevel, err)
	}
}
