package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/shoal-project/shoal/cluster"
	"github.com/shoal-project/shoal/engineapi"
	"github.com/shoal-project/shoal/engineapi/dashboard"
	"github.com/shoal-project/shoal/engineapi/metrics"
	"github.com/shoal-project/shoal/netplane/bridge"
	"github.com/shoal-project/shoal/netplane/dns"
	"github.com/shoal-project/shoal/netplane/overlay"
	"github.com/shoal-project/shoal/runtime/container"
	"github.com/shoal-project/shoal/runtime/image"
	"github.com/shoal-project/shoal/runtime/volume"
)

// runDaemon wires the parts and serves the Engine API until ctx is done,
// reloading what it can when reloads asks.
func runDaemon(ctx context.Context, cfg daemonConfig, reloads reloadSource) error {
	started := time.Now()
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	for _, dir := range []string{cfg.DataRoot, cfg.ExecRoot} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	// The parts tell the registry as they work whether or not --metrics-addr
	// serves it: a few nanoseconds each, and no nil to check anywhere.
	reg := metrics.New(version)
	images, err := image.Open(ctx, image.Options{
		Root:     filepath.Join(cfg.DataRoot, "image"),
		Mirrors:  cfg.RegistryMirrors,
		Insecure: cfg.InsecureRegistry,
		Metrics:  reg,
		Logger:   log.With("component", "image"),
	})
	if err != nil {
		return err
	}
	defer images.Close()
	subnet, err := netip.ParsePrefix(cfg.BridgeSubnet)
	if err != nil {
		return fmt.Errorf("invalid --bip %q: %w", cfg.BridgeSubnet, err)
	}
	network, err := bridge.New(ctx, bridge.Config{
		StateDir:   filepath.Join(cfg.DataRoot, "network"),
		NetNSDir:   filepath.Join(cfg.ExecRoot, "netns"),
		BridgeName: cfg.BridgeName,
		Subnet:     subnet,
		TableName:  cfg.NFTable,
		Logger:     log.With("component", "network"),
	})
	if err != nil {
		return err
	}
	defer network.Close()
	plane, err := overlay.New(ctx, overlay.Config{Table: cfg.NFTable + "-overlay", Logger: log})
	if err != nil {
		return err
	}
	defer plane.Close()
	resolver, err := dns.New(dns.Config{Logger: log.With("component", "dns")})
	if err != nil {
		return err
	}
	defer resolver.Close()
	volumes, containers, err := openContainers(ctx, cfg, images, log)
	if err != nil {
		return err
	}
	defer containers.Close()
	hostname, _ := os.Hostname()
	cl, err := cluster.New(ctx, cluster.Config{
		Root:                 filepath.Join(cfg.DataRoot, "swarm"),
		Hostname:             hostname,
		EngineVersion:        version,
		EngineLabels:         cfg.Labels,
		Resources:            cfg.GenericResources,
		DefaultAdvertiseAddr: cfg.SwarmDefaultAdvertiseAddr,
		Containers:           containers,
		Images:               images,
		Network:              network,
		Overlay:              plane,
		DNS:                  resolver,
		MeshKeyRotation:      cfg.MeshKeyRotation,
		PeerImages:           images.PeerHandler(),
		Metrics:              reg,
		Logger:               log.With("component", "cluster"),
	})
	if err != nil {
		return err
	}
	defer cl.Close()
	api := engineapi.New(engineapi.Config{
		Swarm:         cl,
		Secrets:       cl,
		Networks:      cl,
		Containers:    containers,
		Images:        images,
		Volumes:       volumes,
		Registry:      images.ServiceConfig,
		Bridge:        network,
		Version:       version,
		DataRoot:      cfg.DataRoot,
		Labels:        cfg.Labels,
		MinCertExpiry: cfg.MinCertExpiry,
		Requests:      reg,
		Logger:        log.With("component", "api"),
	})
	defer api.Close()
	reload := &reloader{source: reloads, current: cfg, level: level, log: log,
		labels: []func(map[string]string){api.SetLabels, cl.SetEngineLabels}, registries: images.SetRegistries}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	wg.Go(func() { reload.run(ctx) })
	reg.WatchSwarm(cl.Stats)
	reg.WatchMesh(cl.MeshTraffic)
	waitMetrics, err := serveSide(ctx, cfg, "metrics", cfg.MetricsAddr, "/metrics", metricsHandler(reg.Handler()), log)
	if err != nil {
		return err
	}
	defer func() { stop(); waitMetrics() }()
	board := dashboard.New(dashboard.Config{API: api, Logger: log.With("component", "dashboard")})
	waitDashboard, err := serveSide(ctx, cfg, "dashboard", cfg.DashboardAddr, "/", board, log)
	if err != nil {
		return err
	}
	defer func() { stop(); waitDashboard() }()
	return serve(ctx, cfg, api, log, started)
}

// openContainers opens the node's volume store and its container runtime. The
// store asks the runtime which containers use a volume; the runtime is made after
// the store because it mounts volumes through it.
func openContainers(ctx context.Context, cfg daemonConfig, images *image.Store, log *slog.Logger) (*volume.Store, *container.Manager, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("find the shoal binary (the containers' init): %w", err)
	}
	var containers *container.Manager
	volumes, err := volume.Open(ctx, volume.Config{
		Root: filepath.Join(cfg.DataRoot, "volumes"),
		Users: func(name string) []string {
			if containers == nil {
				return nil
			}
			return containers.VolumeUsers(name)
		},
		Logger: log.With("component", "volume"),
	})
	if err != nil {
		return nil, nil, err
	}
	containers, err = container.New(ctx, container.Config{
		InitBinary:   self,
		Root:         filepath.Join(cfg.DataRoot, "containers"),
		StateRoot:    filepath.Join(cfg.ExecRoot, "runc"),
		Images:       images,
		Volumes:      volumes,
		CgroupParent: cfg.CgroupParent,
		Logger:       log.With("component", "container"),
	})
	if err != nil {
		return nil, nil, err
	}
	return volumes, containers, nil
}

// serve listens on every -H address and serves the API until ctx is done.
func serve(ctx context.Context, cfg daemonConfig, handler http.Handler, log *slog.Logger, started time.Time) error {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for _, h := range cfg.Hosts {
		l, err := listen(h, cfg)
		if err != nil {
			return err
		}
		listeners = append(listeners, l)
	}
	// A refused TLS client is worth a debug line, not a raw line on stderr.
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(log.With("component", "api").Handler(), slog.LevelDebug)}
	errs := make(chan error, len(listeners))
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Add(1)
		go func(l net.Listener) {
			defer wg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}(l)
	}
	log.Info("API listening", "hosts", strings.Join(cfg.Hosts, ","), "ready_after", time.Since(started).Round(time.Millisecond))
	notify(log, "READY=1")
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	notify(log, "STOPPING=1")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	wg.Wait()
	log.Info("daemon stopped; task containers keep running")
	return err
}

// listen opens one API listener: a root-only unix socket, or TCP with mutual TLS.
func listen(host string, cfg daemonConfig) (net.Listener, error) {
	switch {
	case strings.HasPrefix(host, "unix://"):
		path := strings.TrimPrefix(host, "unix://")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", host, err)
		}
		if err := os.Chmod(path, 0o660); err != nil {
			l.Close()
			return nil, err
		}
		return l, nil
	case strings.HasPrefix(host, "tcp://"):
		tlsCfg, err := serverTLS(cfg)
		if err != nil {
			return nil, err
		}
		l, err := tls.Listen("tcp", strings.TrimPrefix(host, "tcp://"), tlsCfg)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", host, err)
		}
		return l, nil
	}
	return nil, fmt.Errorf("invalid -H %q: want unix:///path or tcp://host:port", host)
}

// serverTLS is TLS 1.2+ that requires a client certificate signed by --tlscacert.
func serverTLS(cfg daemonConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	caPEM, err := os.ReadFile(cfg.TLSCACert)
	if err != nil {
		return nil, fmt.Errorf("read TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in %s", cfg.TLSCACert)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
}
