package overlay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/shoal-project/shoal/netplane/namespace"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// DefaultTable is the nftables table a Plane owns when Config.Table is empty.
const DefaultTable = "shoal-overlay"

// DefaultMeshRange is the node mesh's range when Config.MeshRange is not set:
// the addresses the nodes' WireGuard interfaces have.
var DefaultMeshRange = netip.MustParsePrefix("10.254.0.0/16")

// Config says which kernel objects a Plane owns.
type Config struct {
	// Table is the nftables table (family ip) the Plane rewrites on every
	// Apply; default DefaultTable.
	Table string
	// MeshRange is the range of the nodes' mesh addresses; default
	// DefaultMeshRange. Traffic between it and the ingress network is allowed,
	// and sources in it are not masqueraded by the routing mesh.
	MeshRange netip.Prefix
	Logger    *slog.Logger
}

// Plane is a node's overlay data plane. It is bound to the network namespace
// of the thread that called New and is safe for concurrent use.
type Plane struct {
	cfg Config
	log *slog.Logger

	hostNS netns.NsHandle
	host   *netlink.Handle
	nft    *nftables.Conn

	mu      sync.Mutex
	applied *State // the last state applied by this Plane; nil after New
	closed  bool
}

// New opens the overlay plane of the calling thread's network namespace (the
// host's; a caller elsewhere locks its thread first). It adopts what an
// earlier daemon left: endpoints, routes and the table stay as they are
// until the first Apply rewrites them, so live connections are not disturbed.
// It turns IPv4 forwarding on if it is off.
func New(ctx context.Context, cfg Config) (*Plane, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, fmt.Errorf("open overlay plane: %w", err)
	}
	p := &Plane{cfg: cfg, log: cfg.Logger.With("component", "overlay"), hostNS: netns.None()}
	if err := p.open(); err != nil {
		p.release()
		return nil, fmt.Errorf("open overlay plane: %w", err)
	}
	if err := ctx.Err(); err != nil {
		p.release()
		return nil, fmt.Errorf("open overlay plane: %w", err)
	}
	if err := p.enableForwarding(); err != nil {
		p.release()
		return nil, fmt.Errorf("open overlay plane: %w", err)
	}
	ends, err := p.hostEnds()
	if err != nil {
		p.release()
		return nil, fmt.Errorf("open overlay plane: %w", err)
	}
	p.log.Info("overlay plane ready", "table", cfg.Table, "adopted endpoints", len(ends))
	return p, nil
}

func withDefaults(cfg Config) (Config, error) {
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if !cfg.MeshRange.IsValid() {
		cfg.MeshRange = DefaultMeshRange
	}
	if !cfg.MeshRange.Addr().Is4() {
		return cfg, fmt.Errorf("mesh range %s: want an IPv4 prefix", cfg.MeshRange)
	}
	cfg.MeshRange = cfg.MeshRange.Masked()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// open binds the netlink and nftables handles to the caller's namespace.
func (p *Plane) open() error {
	var err error
	if p.hostNS, err = netns.Get(); err != nil {
		return fmt.Errorf("get host netns: %w", err)
	}
	if p.host, err = netlink.NewHandleAt(p.hostNS); err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	if p.nft, err = nftables.New(nftables.WithNetNSFd(int(p.hostNS))); err != nil {
		return fmt.Errorf("open nftables: %w", err)
	}
	return nil
}

// enableForwarding turns IPv4 forwarding on when it is off, and leaves it
// alone otherwise (the bridge package turns it on too).
func (p *Plane) enableForwarding() error {
	const path = "/proc/sys/net/ipv4/ip_forward"
	return namespace.Run(p.hostNS, func() error {
		cur, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if strings.TrimSpace(string(cur)) != "1" {
			if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
				return fmt.Errorf("enable IPv4 forwarding: %w", err)
			}
		}
		return nil
	})
}

// Close releases the Plane's handles and leaves every endpoint, route and
// rule in place, so tasks keep their networks while the daemon is stopped.
func (p *Plane) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.release()
	return nil
}

func (p *Plane) release() {
	if p.host != nil {
		p.host.Close()
	}
	if p.hostNS.IsOpen() {
		p.hostNS.Close()
	}
}

// Teardown removes everything the Plane (or an earlier daemon's) made on the
// host: the nftables table, the network routes and every host end, which
// takes its sandbox end with it. The Plane is closed afterwards.
func (p *Plane) Teardown(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("tear down overlay plane: %w", errClosed)
	}
	var errs []error
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tear down overlay plane: %w", err)
	}
	if err := deleteTable(p.nft, p.cfg.Table); err != nil {
		errs = append(errs, err)
	}
	if err := p.syncNetworkRoutes(State{}); err != nil {
		errs = append(errs, err)
	}
	if err := p.removeRelay(); err != nil {
		errs = append(errs, err)
	}
	ends, err := p.hostEnds()
	if err != nil {
		errs = append(errs, err)
	}
	for _, l := range ends {
		if err := p.deleteLink(l); err != nil {
			errs = append(errs, err)
		}
	}
	p.closed = true
	p.release()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tear down overlay plane: %w", err)
	}
	p.log.Info("overlay plane removed", "endpoints", len(ends))
	return nil
}

// errClosed is returned by the methods of a closed or torn down Plane.
var errClosed = errors.New("overlay plane is closed")
