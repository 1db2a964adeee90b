package cluster

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/ca"
	"github.com/shoal-project/shoal/cluster/store"
)

// The swarm's certificate authority lives in a store-only object (keys never
// in an API type). Rotating it (`docker swarm ca --rotate`) keeps every node
// connected and every task running:
//
//  1. A new root is made (or the one given with --ca-cert/--ca-key), and
//     cross-signed by the current one. From then on node certificates are
//     issued by the new root with the cross-signed certificate in their chain,
//     and nodes trust both roots. The cluster object names the new root.
//  2. Every node is told in its session and asks for a new certificate.
//  3. Once every node that is not down holds one, the leader ends the
//     rotation: only the new root is trusted, the join tokens carry its
//     digest, and nodes renew once more to drop the old root.
//
// A node down for the whole rotation keeps a certificate the others no longer
// trust: it must join again, as with Docker.

// swarmRoot reads the swarm's CA: the store-only object, or, in a swarm made by
// an older shoal, the key the cluster object kept (written to the object on
// the next change).
func swarmRoot(tx store.ReadTx) (*store.RootCA, error) {
	r, err := tx.Root()
	if err == nil {
		return r, nil
	}
	if !store.IsNotFound(err) {
		return nil, err
	}
	cl, err := tx.Cluster()
	if err != nil {
		return nil, err
	}
	if cl.Spec.CAConfig.SigningCAKey == "" {
		return nil, errors.New("the swarm has no root CA")
	}
	return &store.RootCA{ID: store.RootID, CertPEM: []byte(cl.Spec.CAConfig.SigningCACert), KeyPEM: []byte(cl.Spec.CAConfig.SigningCAKey)}, nil
}

// putRoot writes the CA object, creating it if it came from an older store;
// the cluster object then keeps no key.
func putRoot(tx store.Tx, r *store.RootCA, cl *swarm.Swarm) error {
	cl.Spec.CAConfig.SigningCACert, cl.Spec.CAConfig.SigningCAKey = "", ""
	if r.Version.Index == 0 {
		return tx.CreateRoot(r)
	}
	return tx.UpdateRoot(r)
}

// signer is what issues node certificates now.
func signer(r *store.RootCA) ca.RootCA {
	return ca.RootCA{CertPEM: r.CertPEM, KeyPEM: r.KeyPEM, Intermediate: r.CrossSignedPEM}
}

// trustBundle is what nodes trust: the root, and during a rotation the
// previous one after it.
func trustBundle(r *store.RootCA) []byte {
	return append(bytes.Clone(r.CertPEM), r.PrevCertPEM...)
}

// rotating reports whether a root rotation is under way.
func rotating(r *store.RootCA) bool { return len(r.PrevCertPEM) > 0 }

// tlsInfoOf is a root as the API shows it (the cluster's TLSInfo, a node's).
func tlsInfoOf(rootPEM []byte) (swarm.TLSInfo, error) {
	cert, err := ca.RootCA{CertPEM: rootPEM}.Certificate()
	if err != nil {
		return swarm.TLSInfo{}, err
	}
	return swarm.TLSInfo{TrustRoot: string(rootPEM), CertIssuerSubject: cert.RawSubject, CertIssuerPublicKey: cert.RawSubjectPublicKeyInfo}, nil
}

// firstPEM is the first PEM block of a bundle, re-encoded.
func firstPEM(bundle []byte) []byte {
	block, _ := pem.Decode(bundle)
	if block == nil {
		return nil
	}
	return pem.EncodeToMemory(block)
}

// startRotation begins a root rotation to next (a new root when zero).
func startRotation(tx store.Tx, cl *swarm.Swarm, cur *store.RootCA, next ca.RootCA) error {
	if rotating(cur) {
		return errInvalidf("a root CA rotation is already in progress; it finishes once every node has a certificate from the new root")
	}
	now := time.Now()
	if next.CertPEM == nil {
		var err error
		if next, err = ca.NewRootCA(now); err != nil {
			return err
		}
	}
	cross, err := signer(cur).CrossSign(next, now)
	if err != nil {
		return err
	}
	info, err := tlsInfoOf(next.CertPEM)
	if err != nil {
		return err
	}
	prev := cur.CertPEM
	cur.CertPEM, cur.KeyPEM, cur.PrevCertPEM, cur.CrossSignedPEM = next.CertPEM, next.KeyPEM, prev, cross
	cl.TLSInfo, cl.RootRotationInProgress = info, true
	return putRoot(tx, cur, cl)
}

// finishRotation ends a rotation once every node that is not down holds a
// certificate of the new root; it reports whether it did.
func finishRotation(tx store.Tx) (bool, error) {
	r, err := swarmRoot(tx)
	if err != nil || !rotating(r) {
		return false, err
	}
	info, err := tlsInfoOf(r.CertPEM)
	if err != nil {
		return false, err
	}
	nodes, err := tx.Nodes()
	if err != nil {
		return false, err
	}
	for _, n := range nodes {
		if n.Status.State != swarm.NodeStateDown && !bytes.Equal(n.Description.TLSInfo.CertIssuerPublicKey, info.CertIssuerPublicKey) {
			return false, nil
		}
	}
	cl, err := tx.Cluster()
	if err != nil {
		return false, err
	}
	r.PrevCertPEM, r.CrossSignedPEM = nil, nil
	cl.TLSInfo, cl.RootRotationInProgress = info, false
	root := ca.RootCA{CertPEM: r.CertPEM}
	for _, tok := range []*string{&cl.JoinTokens.Worker, &cl.JoinTokens.Manager} {
		if *tok, err = ca.Redigest(*tok, root); err != nil {
			return false, err
		}
	}
	if err := putRoot(tx, r, cl); err != nil {
		return false, err
	}
	return true, tx.UpdateCluster(cl)
}

// watchRotation ends a root rotation as soon as the nodes allow it (on the
// leader).
func (l *leadership) watchRotation(ctx context.Context) error {
	events, err := l.store.ViewAndWatch(ctx, func(store.ReadTx) error { return nil }, store.KindNode, store.KindRoot)
	if err != nil {
		return err
	}
	for {
		var done bool
		err := retryUpdate(ctx, l.store, func(tx store.Tx) error {
			var err error
			done, err = finishRotation(tx)
			return err
		})
		if err != nil && ctx.Err() == nil {
			l.log.Warn("finish the root CA rotation", "err", err)
		}
		if done {
			l.log.Info("root CA rotation finished: every node has a certificate of the new root")
		}
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-events:
			if !ok {
				return nil
			}
			for drained := false; !drained; {
				select {
				case <-events:
				default:
					drained = true
				}
			}
		}
	}
}
