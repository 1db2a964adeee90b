package cluster

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/autolock"
	"github.com/shoal-project/shoal/cluster/ca"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/transport"
)

// Defaults of a new swarm, as Docker's.
const (
	DefaultControlPort  = 2377
	DefaultDataPathPort = 51820 // WireGuard, where Docker has VXLAN's 4789
	DefaultSubnetSize   = 24
	defaultHeartbeat    = 5 * time.Second
	defaultCertExpiry   = 90 * 24 * time.Hour
)

// Info is the Swarm section of `docker info`.
func (c *Cluster) Info(ctx context.Context) swarm.Info {
	c.mu.RLock()
	node, s, ag, locked := c.node, c.store, c.agent, c.locked
	c.mu.RUnlock()
	if node == nil {
		return swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}
	}
	if locked {
		return lockedInfo(node)
	}
	info := swarm.Info{
		NodeID:           node.NodeID,
		NodeAddr:         hostOf(node.AdvertiseAddr),
		LocalNodeState:   swarm.LocalNodeStateActive,
		ControlAvailable: s != nil,
	}
	if s == nil {
		if ag != nil {
			for _, addr := range ag.follower.Managers() {
				info.RemoteManagers = append(info.RemoteManagers, swarm.Peer{Addr: addr})
			}
		}
		return info
	}
	if members, err := s.Members(); err == nil {
		for _, m := range members {
			info.RemoteManagers = append(info.RemoteManagers, swarm.Peer{NodeID: m.ID, Addr: string(m.Addr)})
		}
	}
	_ = s.View(func(tx store.ReadTx) error {
		if cl, err := tx.Cluster(); err == nil {
			ci := publicCluster(cl).ClusterInfo
			info.Cluster = &ci
		}
		nodes, err := tx.Nodes()
		if err != nil {
			return err
		}
		info.Nodes = len(nodes)
		for _, n := range nodes {
			if n.Spec.Role == swarm.NodeRoleManager {
				info.Managers++
			}
		}
		return nil
	})
	return info
}

// Init makes this node the first manager of a new swarm; with ForceNewCluster,
// on a manager of a swarm that lost its quorum, the only manager of that swarm,
// its state kept.
func (c *Cluster) Init(ctx context.Context, req swarm.InitRequest) (string, error) {
	if req.ForceNewCluster {
		if s, _, _, err := c.current(); err == nil && s != nil {
			return c.forceNewCluster(ctx)
		}
	}
	release, err := c.claim()
	if err != nil {
		return "", err
	}
	defer release()
	if err := checkListenAddr(req.ListenAddr); err != nil {
		return "", err
	}
	listen, err := listenAddr(req.ListenAddr)
	if err != nil {
		return "", err
	}
	advertise, err := advertiseAddr(cmp.Or(req.AdvertiseAddr, c.cfg.DefaultAdvertiseAddr), listen, "")
	if err != nil {
		return "", err
	}
	if err := validateInit(req); err != nil {
		return "", err
	}
	if err := os.MkdirAll(c.cfg.Root, 0o700); err != nil {
		return "", fmt.Errorf("create swarm dir: %w", err)
	}
	now := time.Now().UTC()
	nodeID := store.NewID()
	cl, root, err := newClusterObject(req, now)
	if err != nil {
		return "", err
	}
	files, err := issueOwn(root, ca.Identity{NodeID: nodeID, Role: ca.ManagerRole, ClusterID: cl.ID}, now, cl.Spec.CAConfig.NodeCertExpiry)
	if err != nil {
		return "", err
	}
	st := &nodeState{NodeID: nodeID, ClusterID: cl.ID, Role: ca.ManagerRole, AdvertiseAddr: advertise, ListenAddr: listen, DataPathAddr: req.DataPathAddr}
	node := c.describeNode(nodeID, advertise, req.Availability)
	node.Description.TLSInfo = cl.TLSInfo
	err = c.becomeManager(ctx, st, files, func(s *store.Store, _ *transport.Credentials) error {
		if err := s.Bootstrap(ctx); err != nil {
			return fmt.Errorf("bootstrap swarm store: %w", err)
		}
		if err := waitLeader(ctx, s); err != nil {
			return fmt.Errorf("elect swarm leader: %w", err)
		}
		err := s.Update(ctx, func(tx store.Tx) error {
			if err := tx.CreateCluster(cl); err != nil {
				return err
			}
			r := &store.RootCA{ID: store.RootID, CertPEM: root.CertPEM, KeyPEM: root.KeyPEM}
			if req.AutoLockManagers {
				r.UnlockKey = autolock.NewKey()
			}
			if err := tx.CreateRoot(r); err != nil {
				return err
			}
			if err := tx.CreateNode(node); err != nil {
				return err
			}
			ingress, err := ingressNetwork(cl, now)
			if err != nil {
				return fmt.Errorf("ingress network: %w", err)
			}
			if err := tx.CreateNetwork(ingress); err != nil {
				return err
			}
			return tx.CreatePeer(&store.Peer{ID: nodeID, ControlAddr: advertise})
		})
		if err != nil {
			return fmt.Errorf("create swarm: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if req.AutoLockManagers {
		if err := c.lockNow(ctx); err != nil {
			return "", err
		}
	}
	c.log.Info("swarm initialized", "node", nodeID, "advertise", advertise, "autolock", req.AutoLockManagers)
	return nodeID, nil
}

// issueOwn makes a key and a certificate for this node, on a manager that holds
// the root CA.
func issueOwn(root ca.RootCA, id ca.Identity, now time.Time, expiry time.Duration) (ca.NodeFiles, error) {
	key, keyPEM, err := ca.NewNodeKey()
	if err != nil {
		return ca.NodeFiles{}, err
	}
	csr, err := ca.NewCSR(key)
	if err != nil {
		return ca.NodeFiles{}, err
	}
	cert, err := root.Issue(csr, id, now, expiry)
	if err != nil {
		return ca.NodeFiles{}, err
	}
	return ca.NodeFiles{CertPEM: cert, KeyPEM: keyPEM, RootPEM: root.CertPEM}, nil
}

// validateInit checks the parts of an init request Docker checks.
func validateInit(req swarm.InitRequest) error {
	switch req.Availability {
	case "", swarm.NodeAvailabilityActive, swarm.NodeAvailabilityPause, swarm.NodeAvailabilityDrain:
	default:
		return errInvalidf("invalid availability %q", req.Availability)
	}
	if req.SubnetSize != 0 && (req.SubnetSize < 16 || req.SubnetSize > 29) {
		return errInvalidf("invalid subnet size %d: must be between 16 and 29", req.SubnetSize)
	}
	for _, p := range req.DefaultAddrPool {
		if !p.IsValid() || !p.Addr().Is4() {
			return errInvalidf("invalid default address pool %s", p)
		}
	}
	if l := req.Spec.Orchestration.TaskHistoryRetentionLimit; l != nil && *l < 0 {
		return errInvalidf("invalid task history limit %d: must be 0 or more", *l)
	}
	return nil
}

// newClusterObject is the cluster object of a new swarm: Docker's defaults, the
// request's settings, a new root CA and join tokens.
func newClusterObject(req swarm.InitRequest, now time.Time) (*swarm.Swarm, ca.RootCA, error) {
	root, err := ca.NewRootCA(now)
	if err != nil {
		return nil, ca.RootCA{}, err
	}
	spec := req.Spec
	if spec.Name == "" {
		spec.Name = "default"
	}
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	if spec.Orchestration.TaskHistoryRetentionLimit == nil {
		limit := int64(5)
		spec.Orchestration.TaskHistoryRetentionLimit = &limit
	}
	if spec.Raft.SnapshotInterval == 0 {
		spec.Raft.SnapshotInterval = 10000
	}
	if spec.Raft.KeepOldSnapshots == nil {
		zero := uint64(0)
		spec.Raft.KeepOldSnapshots = &zero
	}
	if spec.Raft.LogEntriesForSlowFollowers == 0 {
		spec.Raft.LogEntriesForSlowFollowers = 500
	}
	if spec.Raft.ElectionTick == 0 {
		spec.Raft.ElectionTick = 10
	}
	if spec.Raft.HeartbeatTick == 0 {
		spec.Raft.HeartbeatTick = 1
	}
	if spec.Dispatcher.HeartbeatPeriod == 0 {
		spec.Dispatcher.HeartbeatPeriod = defaultHeartbeat
	}
	if spec.CAConfig.NodeCertExpiry == 0 {
		spec.CAConfig.NodeCertExpiry = defaultCertExpiry
	}
	spec.EncryptionConfig.AutoLockManagers = req.AutoLockManagers
	worker, err := ca.NewJoinToken(root)
	if err != nil {
		return nil, ca.RootCA{}, err
	}
	manager, err := ca.NewJoinToken(root)
	if err != nil {
		return nil, ca.RootCA{}, err
	}
	// Without --default-addr-pool the swarm shows none, as dockerd does;
	// networks then come from Docker's 10.0.0.0/8 (defaultPools).
	pool := req.DefaultAddrPool
	if len(pool) == 0 {
		pool = nil // null, not [], as dockerd shows it
	}
	subnet := req.SubnetSize
	if subnet == 0 {
		subnet = DefaultSubnetSize
	}
	port := req.DataPathPort
	if port == 0 {
		port = DefaultDataPathPort
	}
	cert, err := root.Certificate()
	if err != nil {
		return nil, ca.RootCA{}, err
	}
	return &swarm.Swarm{
		ClusterInfo: swarm.ClusterInfo{
			ID:   store.NewID(),
			Spec: spec,
			TLSInfo: swarm.TLSInfo{
				TrustRoot:           string(root.CertPEM),
				CertIssuerSubject:   cert.RawSubject,
				CertIssuerPublicKey: cert.RawSubjectPublicKeyInfo,
			},
			DefaultAddrPool: pool,
			SubnetSize:      subnet,
			DataPathPort:    port,
		},
		JoinTokens: swarm.JoinTokens{Worker: worker, Manager: manager},
	}, root, nil
}

// publicCluster is the cluster object as the API shows it: never the CA's key.
func publicCluster(cl *swarm.Swarm) swarm.Swarm {
	out := *cl
	out.Spec.CAConfig.SigningCAKey = ""
	out.Spec.CAConfig.SigningCACert = ""
	return out
}

// describeNode is the node object of this machine as a new manager.
func (c *Cluster) describeNode(id, advertise string, availability swarm.NodeAvailability) *swarm.Node {
	if availability == "" {
		availability = swarm.NodeAvailabilityActive
	}
	return &swarm.Node{
		ID: id,
		Spec: swarm.NodeSpec{
			Annotations:  swarm.Annotations{Labels: map[string]string{}},
			Role:         swarm.NodeRoleManager,
			Availability: availability,
		},
		ManagerStatus: &swarm.ManagerStatus{Reachability: swarm.ReachabilityReachable, Addr: advertise},
		Description:   c.description(),
		Status:        swarm.NodeStatus{State: swarm.NodeStateReady, Addr: hostOf(advertise)},
	}
}

// Inspect returns the cluster object (GET /swarm).
func (c *Cluster) Inspect(ctx context.Context) (swarm.Swarm, error) {
	var out swarm.Swarm
	err := c.view(func(tx store.ReadTx) error {
		cl, err := tx.Cluster()
		if err != nil {
			return err
		}
		out = publicCluster(cl)
		return nil
	})
	return out, err
}

// Update changes the swarm's spec (compare-and-set on version) and rotates tokens.
func (c *Cluster) Update(ctx context.Context, version uint64, spec swarm.Spec, flags UpdateFlags) error {
	if l := spec.Orchestration.TaskHistoryRetentionLimit; l != nil && *l < 0 {
		return errInvalidf("invalid task history limit %d: must be 0 or more", *l)
	}
	err := c.update(ctx, func(tx store.Tx) error {
		cl, err := tx.Cluster()
		if err != nil {
			return err
		}
		if cl.Version.Index != version {
			return store.ErrOutOfSequence
		}
		r, err := swarmRoot(tx)
		if err != nil {
			return err
		}
		givenCert, givenKey := spec.CAConfig.SigningCACert, spec.CAConfig.SigningCAKey
		spec.CAConfig.SigningCACert, spec.CAConfig.SigningCAKey = "", ""
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		rotate := spec.CAConfig.ForceRotate != cl.Spec.CAConfig.ForceRotate ||
			(givenCert != "" && givenCert != string(r.CertPEM))
		cl.Spec = spec
		relock := updateUnlockKey(r, spec.EncryptionConfig.AutoLockManagers, flags.RotateManagerUnlockKey)
		if rotate {
			var next ca.RootCA
			if givenCert != "" {
				if next, err = ca.ParseRoot([]byte(givenCert), []byte(givenKey)); err != nil {
					return errInvalidf("%v", err)
				}
			}
			if err := startRotation(tx, cl, r, next); err != nil {
				return err
			}
		} else if r.Version.Index == 0 || relock {
			if err := putRoot(tx, r, cl); err != nil { // or a swarm made by an older shoal
				return err
			}
		}
		// Tokens pin the root the nodes trust: the previous one while the
		// root rotates (the rotation's end moves them to the new one).
		tokenRoot := ca.RootCA{CertPEM: r.CertPEM}
		if rotating(r) {
			tokenRoot = ca.RootCA{CertPEM: r.PrevCertPEM}
		}
		if flags.RotateWorkerToken {
			if cl.JoinTokens.Worker, err = ca.NewJoinToken(tokenRoot); err != nil {
				return err
			}
		}
		if flags.RotateManagerToken {
			if cl.JoinTokens.Manager, err = ca.NewJoinToken(tokenRoot); err != nil {
				return err
			}
		}
		return tx.UpdateCluster(cl)
	})
	if err != nil {
		return err
	}
	// This manager's disk follows before the answer, so that a restart
	// right after `swarm update --autolock` finds it locked (or not); the
	// other managers follow the change as it reaches their stores.
	return c.lockNow(ctx)
}

// updateUnlockKey gives the swarm an unlock key when autolock turns on or the
// key rotates, and takes it away when autolock turns off; it reports whether
// the key changed.
func updateUnlockKey(r *store.RootCA, autolockOn, rotate bool) bool {
	switch {
	case autolockOn && (len(r.UnlockKey) == 0 || rotate):
		r.UnlockKey = autolock.NewKey()
		return true
	case !autolockOn && len(r.UnlockKey) > 0:
		r.UnlockKey = nil
		return true
	}
	return false
}

// lockNow applies the swarm's autolock to this manager's disk now.
func (c *Cluster) lockNow(ctx context.Context) error {
	s, _, err := c.active()
	if err != nil {
		return err
	}
	if err := c.syncLock(ctx, s); err != nil {
		return fmt.Errorf("apply the swarm's autolock to this manager: %w", err)
	}
	return nil
}

// UnlockKey returns the key that unlocks an autolocked swarm (GET
// /swarm/unlockkey); without autolock it is "", as dockerd answers (the docker
// CLI then says "no unlock key is set").
func (c *Cluster) UnlockKey(ctx context.Context) (string, error) {
	var key autolock.Key
	err := c.view(func(tx store.ReadTx) error {
		key, _ = wantLocked(tx)
		return nil
	})
	if err != nil || key == nil {
		return "", err
	}
	return key.String(), nil
}

// listenAddr normalizes --listen-addr: host[:port], default 0.0.0.0:2377.
func listenAddr(addr string) (string, error) {
	if addr == "" {
		return net.JoinHostPort("0.0.0.0", strconv.Itoa(DefaultControlPort)), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, strconv.Itoa(DefaultControlPort)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return "", errInvalidf("invalid listen address %s: bad port", addr)
	}
	if ip := resolveHost(host); ip != "" {
		host = ip
	}
	return net.JoinHostPort(host, port), nil
}

// advertiseAddr picks the address other nodes reach this one at: the one asked for
// (an IP or an interface name), else the listen address, else the address this
// host leaves from towards remote (a manager it joins) or by its default route.
func advertiseAddr(addr, listen, remote string) (string, error) {
	_, listenPort, _ := net.SplitHostPort(listen)
	if addr != "" {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			host, port = addr, listenPort
		}
		ip := resolveHost(host)
		if ip == "" {
			return "", errInvalidf("advertise address must be a non-zero IP address or network interface (with optional port number)")
		}
		return net.JoinHostPort(ip, port), nil
	}
	if host, _, _ := net.SplitHostPort(listen); host != "0.0.0.0" && host != "::" && host != "" {
		return listen, nil
	}
	ip, err := sourceIP(remote)
	if err != nil {
		return "", errInvalidf("could not find the system's IP address") // dockerd's words; the CLI adds its hint
	}
	return net.JoinHostPort(ip, listenPort), nil
}

// resolveHost turns an IP or an interface name into an IP, or "".
func resolveHost(host string) string {
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() {
			return ""
		}
		return ip.String()
	}
	ifc, err := net.InterfaceByName(host)
	if err != nil {
		return ""
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return ""
}

// sourceIP is the source address the kernel would use to reach remote (a
// host:port), or to leave the host by its default route when remote is "". It
// sends nothing: connecting a UDP socket only picks a route.
func sourceIP(remote string) (string, error) {
	if remote == "" {
		remote = "192.0.2.1:9"
	}
	conn, err := net.Dial("udp4", remote)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP.String(), nil
}
