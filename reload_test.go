package main

import (
	"bytes"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestConfigChanges(t *testing.T) {
	base := daemonConfig{LogLevel: slog.LevelInfo, Labels: map[string]string{"zone": "east"}, DataRoot: "/var/lib/shoal"}
	for _, c := range []struct {
		name             string
		change           func(*daemonConfig)
		applied, restart []string
	}{
		{"nothing", func(*daemonConfig) {}, nil, nil},
		{"an empty list is no list", func(c *daemonConfig) { c.RegistryMirrors = []string{} }, nil, nil},
		{"level and labels", func(c *daemonConfig) {
			c.LogLevel = slog.LevelDebug
			c.Labels = map[string]string{"zone": "west"}
		}, []string{"log-level", "labels"}, nil},
		{"registries", func(c *daemonConfig) {
			c.RegistryMirrors = []string{"http://m"}
			c.InsecureRegistry = []string{"r:5000"}
		}, []string{"registry-mirrors", "insecure-registries"}, nil},
		{"data root and hosts", func(c *daemonConfig) {
			c.DataRoot = "/srv"
			c.Hosts = []string{"unix:///x"}
		}, nil, []string{"hosts", "data-root"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			next := base
			next.Labels = maps.Clone(base.Labels)
			c.change(&next)
			applied, restart := configChanges(base, next)
			if !slices.Equal(applied, c.applied) || !slices.Equal(restart, c.restart) {
				t.Fatalf("applied %v restart %v, want %v and %v", applied, restart, c.applied, c.restart)
			}
		})
	}
}

// A reload applies the level, labels and registries it reads, warns of what
// needs a restart, and keeps everything when the file no longer parses.
func TestReloaderApplies(t *testing.T) {
	var logs bytes.Buffer
	level := new(slog.LevelVar)
	var labels map[string]string
	var mirrors []string
	next := daemonConfig{LogLevel: slog.LevelDebug, Labels: map[string]string{"zone": "west"},
		RegistryMirrors: []string{"http://m"}, DataRoot: "/srv"}
	var loadErr error
	r := &reloader{
		source:     reloadSource{load: func() (daemonConfig, error) { return next, loadErr }},
		current:    daemonConfig{LogLevel: slog.LevelInfo, DataRoot: "/var/lib/shoal"},
		level:      level,
		labels:     []func(map[string]string){func(l map[string]string) { labels = l }},
		registries: func(m, _ []string) { mirrors = m },
		log:        slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level})),
	}
	r.reload()
	if level.Level() != slog.LevelDebug || labels["zone"] != "west" || !slices.Equal(mirrors, []string{"http://m"}) {
		t.Fatalf("after reload: level %v labels %v mirrors %v", level.Level(), labels, mirrors)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "data-root") ||
		!strings.Contains(logs.String(), `msg="reloaded configuration"`) {
		t.Fatalf("log:\n%s", logs.String())
	}
	loadErr = errors.New("unable to configure the daemon with file daemon.json: bad")
	next.LogLevel = slog.LevelError
	r.reload()
	if level.Level() != slog.LevelDebug || !strings.Contains(logs.String(), "kept the running one") {
		t.Fatalf("a failed reload changed the level to %v or was not logged:\n%s", level.Level(), logs.String())
	}
}
