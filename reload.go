package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"syscall"
)

// reloadSource is how the daemon is asked to reload: SIGHUP, noticed from the
// daemon's start so that an early one does not end it (Go's default for SIGHUP),
// and the parse of the command line and daemon.json to run again.
type reloadSource struct {
	hangups <-chan os.Signal
	load    func() (daemonConfig, error)
}

// hangups notices SIGHUP from now on.
func hangups() <-chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// reloader applies, on SIGHUP, what may change while the daemon runs: the log
// level, the engine labels and the registries (mirrors, insecure ones). It reads
// the command line and daemon.json again, as at start; a change to any other key
// is logged as needing a restart, and a file that no longer parses changes nothing.
type reloader struct {
	source  reloadSource
	current daemonConfig
	level   *slog.LevelVar
	// labels are told the new engine labels (`docker info`, the node's
	// description).
	labels []func(map[string]string)
	// registries is told the new mirrors and insecure registries.
	registries func(mirrors, insecure []string)
	log        *slog.Logger
}

// run reloads at each SIGHUP until ctx is done.
func (r *reloader) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.source.hangups:
			r.reload()
		}
	}
}

// reload reads the configuration again and applies what it can.
func (r *reloader) reload() {
	next, err := r.source.load()
	if err != nil {
		r.log.Error("reload configuration: kept the running one", "err", err)
		return
	}
	applied, restart := configChanges(r.current, next)
	for _, key := range applied {
		switch key {
		case "log-level":
			r.level.Set(next.LogLevel)
		case "labels":
			for _, set := range r.labels {
				set(next.Labels)
			}
		case "registry-mirrors", "insecure-registries":
			r.registries(next.RegistryMirrors, next.InsecureRegistry)
		}
	}
	if len(restart) > 0 {
		r.log.Warn("configuration changed where only a restart applies it; kept the running values", "keys", restart)
	}
	// What a restart applies stays as it runs, so that the next reload
	// reports it again rather than never.
	r.current.LogLevel, r.current.Labels = next.LogLevel, next.Labels
	r.current.RegistryMirrors, r.current.InsecureRegistry = next.RegistryMirrors, next.InsecureRegistry
	r.log.Info("reloaded configuration", "file", next.ConfigFile, "changed", applied,
		"log-level", next.LogLevel.String(), "labels", next.Labels,
		"registry-mirrors", next.RegistryMirrors, "insecure-registries", next.InsecureRegistry)
}

// configChanges lists, by daemon.json key, what differs between two
// configurations: the keys a reload applies, and those only a restart does.
func configChanges(old, next daemonConfig) (applied, restart []string) {
	for _, c := range []struct {
		key        string
		old, next  any
		reloadable bool
	}{
		{"log-level", old.LogLevel, next.LogLevel, true},
		{"labels", old.Labels, next.Labels, true},
		{"registry-mirrors", old.RegistryMirrors, next.RegistryMirrors, true},
		{"insecure-registries", old.InsecureRegistry, next.InsecureRegistry, true},
		{"hosts", old.Hosts, next.Hosts, false},
		{"data-root", old.DataRoot, next.DataRoot, false},
		{"exec-root", old.ExecRoot, next.ExecRoot, false},
		{"bridge", old.BridgeName, next.BridgeName, false},
		{"bip", old.BridgeSubnet, next.BridgeSubnet, false},
		{"default-address-pools", old.AddressPools, next.AddressPools, false},
		{"nftables-table", old.NFTable, next.NFTable, false},
		{"cgroup-parent", old.CgroupParent, next.CgroupParent, false},
		{"tlsverify", old.TLSVerify, next.TLSVerify, false},
		{"tlscacert", old.TLSCACert, next.TLSCACert, false},
		{"tlscert", old.TLSCert, next.TLSCert, false},
		{"tlskey", old.TLSKey, next.TLSKey, false},
		{"node-generic-resources", old.GenericResources, next.GenericResources, false},
		{"min-cert-expiry", old.MinCertExpiry, next.MinCertExpiry, false},
		{"metrics-addr", old.MetricsAddr, next.MetricsAddr, false},
	} {
		if equalValues(c.old, c.next) {
			continue
		}
		if c.reloadable {
			applied = append(applied, c.key)
		} else {
			restart = append(restart, c.key)
		}
	}
	return applied, restart
}

// equalValues compares two values of a key, an empty list or map equal to none.
func equalValues(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	switch va.Kind() {
	case reflect.Slice, reflect.Map:
		if va.Len() == 0 && vb.Len() == 0 {
			return true
		}
	}
	return reflect.DeepEqual(a, b)
}
