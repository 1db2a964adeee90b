package main

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/shoal-project/shoal/engineapi/daemonconfig"
)

// defaultConfigFile is where the daemon looks for daemon.json when --config-file
// is not given; unlike a named file, it may be missing.
const defaultConfigFile = "/etc/shoal/daemon.json"

// configAliases are dockerd's daemon.json names of the flags that repeat: the file
// says "hosts" where the command line says --host.
var configAliases = map[string]string{
	"hosts":                  "host",
	"registry-mirrors":       "registry-mirror",
	"insecure-registries":    "insecure-registry",
	"labels":                 "label",
	"default-address-pools":  "default-address-pool",
	"node-generic-resources": "node-generic-resource",
}

// addOperationFlags declares the flags of the daemon's operation rather than of
// its swarm: the configuration file, metrics, and dockerd's names that shoal
// takes for compatibility.
func addOperationFlags(fs *pflag.FlagSet, cfg *daemonConfig, f *daemonFlags) {
	fs.StringVar(&cfg.ConfigFile, "config-file", defaultConfigFile, "daemon configuration file (daemon.json)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "address to serve Prometheus metrics on (/metrics), e.g. 127.0.0.1:9323; plain HTTP on loopback only, mutual TLS (the --tls* flags) elsewhere")
	fs.StringVar(&cfg.DashboardAddr, "dashboard-addr", "", "address to serve the fleet dashboard on, e.g. 127.0.0.1:9324; plain HTTP on loopback only, mutual TLS (the --tls* flags) elsewhere")
	fs.Var(listFlag{&cfg.AddressPools}, "default-address-pool", "address pool for the node's bridge when --bip is not given: base=CIDR,size=N (repeatable)")
	fs.BoolVarP(&f.debug, "debug", "D", false, "log at debug level (as --log-level debug)")
	fs.BoolVar(&f.tls, "tls", false, "use TLS; implied by --tlsverify, which shoal's TCP listeners always need")
}

// mergeConfigFile merges daemon.json into the parsed flags: the default file may be
// missing, a named one may not.
func mergeConfigFile(fs *pflag.FlagSet, path string) error {
	file, err := daemonconfig.Load(path, fs.Changed("config-file"))
	if err != nil {
		return err
	}
	return daemonconfig.Merge(file, daemonconfig.Keys(fs, configAliases, "config-file", "help"))
}

// checkOperations checks the operation flags once flags and file are merged: the
// bridge's subnet from the address pools, and where metrics and the dashboard
// may be served.
func checkOperations(fs *pflag.FlagSet, cfg *daemonConfig) error {
	for i, p := range cfg.AddressPools {
		subnet, err := firstSubnet(p)
		if err != nil {
			return err
		}
		if i == 0 && !fs.Changed("bip") {
			cfg.BridgeSubnet = subnet.String()
		}
	}
	for _, side := range []struct{ flag, needs, addr string }{
		{"metrics-addr", "metrics need", cfg.MetricsAddr},
		{"dashboard-addr", "the dashboard needs", cfg.DashboardAddr},
	} {
		if side.addr == "" {
			continue
		}
		loopback, err := loopbackAddr(side.flag, side.addr)
		if err != nil {
			return err
		}
		if !loopback && !cfg.mutualTLS() {
			return fmt.Errorf("invalid --%s %q: off the loopback %s --tlsverify with --tlscacert, --tlscert and --tlskey: shoal never listens on TCP without mutual TLS", side.flag, side.addr, side.needs)
		}
	}
	return nil
}

// mutualTLS reports whether the TLS flags are all there for a TCP listener.
func (cfg *daemonConfig) mutualTLS() bool {
	return cfg.TLSVerify && cfg.TLSCACert != "" && cfg.TLSCert != "" && cfg.TLSKey != ""
}

// firstSubnet is the first subnet of a pool, base=CIDR,size=N as dockerd's
// --default-address-pool: the one the node's bridge takes, as docker0 does.
func firstSubnet(pool string) (netip.Prefix, error) {
	var base netip.Prefix
	size := -1
	for _, kv := range strings.Split(pool, ",") {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "base":
			base, err = netip.ParsePrefix(v)
		case "size":
			size, err = strconv.Atoi(v)
		default:
			err = fmt.Errorf("unknown field %q", k)
		}
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid --default-address-pool %q: %w", pool, err)
		}
	}
	if !base.IsValid() || !base.Addr().Is4() || size < base.Bits() || size > 30 {
		return netip.Prefix{}, fmt.Errorf("invalid --default-address-pool %q: want base=<IPv4 CIDR>,size=<prefix length from the base's to 30>", pool)
	}
	return netip.PrefixFrom(base.Masked().Addr(), size), nil
}

// loopbackAddr reports whether a host:port (given as --flag) listens on the
// loopback only.
func loopbackAddr(flag, addr string) (bool, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return false, fmt.Errorf("invalid --%s %q: want host:port", flag, addr)
	}
	if host == "localhost" {
		return true, nil
	}
	ip, err := netip.ParseAddr(host)
	if host != "" && err != nil {
		return false, fmt.Errorf("invalid --%s %q: want an IP address or localhost", flag, addr)
	}
	return host != "" && ip.IsLoopback(), nil
}
