package wg

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// handshakeConfigs start a handshake with every peer of cur whose pair self
// leads: a keepalive interval turned on sends a keepalive at once, so off,
// then on.
func handshakeConfigs(self wgtypes.Key, cur []wgtypes.Peer) []wgtypes.Config {
	var out []wgtypes.Config
	for _, interval := range []time.Duration{0, KeepaliveInterval} {
		cfg := wgtypes.Config{}
		for _, p := range cur {
			if leads(self, p.PublicKey) {
				cfg.Peers = append(cfg.Peers, wgtypes.PeerConfig{PublicKey: p.PublicKey, UpdateOnly: true, PersistentKeepaliveInterval: &interval})
			}
		}
		if len(cfg.Peers) > 0 {
			out = append(out, cfg)
		}
	}
	return out
}

// The side that leads a pair starts a handshake again with a peer that has
// had none, at each of restartAfter; the other side turns its keepalive on at
// keepaliveAfter. Both come well before WireGuard's own retry, 5 s after an
// initiation, and apart from each other: two initiations at once would cross.
var (
	restartAfter   = []time.Duration{time.Second, 2 * time.Second}
	keepaliveAfter = 2500 * time.Millisecond
)

// watch looks after the handshakes a change at since asks of peers. Two nodes
// that change at the same moment (they learn of each other from one mesh view,
// or one takes a new key as the other learns it) would both start a
// handshake, and two that cross leave no session (each side answers the
// other's as a responder, and neither answer is taken; WireGuard retries 5 s
// later) or, with wireguard-go's parallel handshake workers, a session whose
// index one side has already dropped (traffic one way is lost until the
// sender gives up on it, 15 s later). So only the side with the lower public
// key (both know which) starts one at once, and starts again with a peer
// that still has had none (its initiation may have reached a node that did
// not know it yet); the other turns its keepalive on later, which starts one
// only if there is still no session.
func (d *Device) watch(since time.Time, self wgtypes.Key, peers []wgtypes.Key) {
	var led, followed []wgtypes.Key
	for _, p := range peers {
		if leads(self, p) {
			led = append(led, p)
		} else {
			followed = append(followed, p)
		}
	}
	if len(peers) == 0 {
		return
	}
	go func() {
		start := time.Now()
		wait := func(at time.Duration) bool {
			select {
			case <-d.closed:
				return false
			case <-time.After(time.Until(start.Add(at))):
				return true
			}
		}
		for _, at := range restartAfter {
			if len(led) == 0 || !wait(at) {
				break
			}
			stale, err := d.restartStale(since, led)
			if err != nil {
				d.log.Warn("wireguard: start a handshake again", "name", d.name, "err", err)
				break
			}
			if stale == 0 {
				break
			}
			d.log.Debug("wireguard: started handshakes again", "name", d.name, "peers", stale)
		}
		if len(followed) > 0 && wait(keepaliveAfter) {
			if err := d.keepaliveOn(followed); err != nil {
				d.log.Warn("wireguard: turn keepalives on", "name", d.name, "err", err)
			}
		}
	}()
}

// leads tells whether, of the nodes with keys self and peer, self is the one
// that starts their handshakes.
func leads(self, peer wgtypes.Key) bool {
	return bytes.Compare(self[:], peer[:]) < 0
}

// restartStale removes and adds again each of peers that has had no
// handshake since, and says how many there were: a new peer's handshake
// starts at once, where the old one's would wait out WireGuard's retry timer.
func (d *Device) restartStale(since time.Time, peers []wgtypes.Key) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, err := d.client.Device(d.name)
	if err != nil {
		return 0, fmt.Errorf("read peers: %w", err)
	}
	cfg := restartConfig(cur.Peers, since, peers)
	if len(cfg.Peers) == 0 {
		return 0, nil
	}
	if err := d.client.ConfigureDevice(d.name, cfg); err != nil {
		return 0, fmt.Errorf("restart peers: %w", err)
	}
	return len(cfg.Peers) / 2, nil
}

// restartConfig removes each of peers that cur has with no handshake since,
// and adds it again with its endpoint, AllowedIPs and keepalive.
func restartConfig(cur []wgtypes.Peer, since time.Time, peers []wgtypes.Key) wgtypes.Config {
	cfg := wgtypes.Config{}
	for _, p := range cur {
		if p.LastHandshakeTime.After(since) || !slices.Contains(peers, p.PublicKey) {
			continue
		}
		keepalive := p.PersistentKeepaliveInterval
		cfg.Peers = append(cfg.Peers,
			wgtypes.PeerConfig{PublicKey: p.PublicKey, Remove: true},
			wgtypes.PeerConfig{PublicKey: p.PublicKey, Endpoint: p.Endpoint, ReplaceAllowedIPs: true, AllowedIPs: p.AllowedIPs, PersistentKeepaliveInterval: &keepalive})
	}
	return cfg
}

// keepaliveOn gives each of peers that is still there and has none its
// keepalive.
func (d *Device) keepaliveOn(peers []wgtypes.Key) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, err := d.client.Device(d.name)
	if err != nil {
		return fmt.Errorf("read peers: %w", err)
	}
	keepalive := KeepaliveInterval
	cfg := wgtypes.Config{}
	for _, p := range cur.Peers {
		if p.PersistentKeepaliveInterval == 0 && slices.Contains(peers, p.PublicKey) {
			cfg.Peers = append(cfg.Peers, wgtypes.PeerConfig{PublicKey: p.PublicKey, UpdateOnly: true, PersistentKeepaliveInterval: &keepalive})
		}
	}
	if len(cfg.Peers) == 0 {
		return nil
	}
	return d.client.ConfigureDevice(d.name, cfg)
}
