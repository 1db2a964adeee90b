package image

import (
	"context"
	"sync"
	"testing"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
)

// transfers records what a store tells its Metrics.
type transfers struct {
	mu         sync.Mutex
	pulls      map[string]int // source/ok or source/failed
	layers     int
	layerBytes int64
}

func (m *transfers) Pulled(source string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.pulls[source+"/"+result]++
}

func (m *transfers) LayerServed(n int64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		m.layers++
		m.layerBytes += n
	}
}

// A pull from a peer is told to the pulling store's Metrics, and each layer the
// serving store sends to the serving one's, with its size.
func TestMetricsOfPeerTransfers(t *testing.T) {
	ctx := context.Background()
	served := &transfers{pulls: map[string]int{}}
	a := openStore(t, Options{Metrics: served})
	loadFile(t, a, imagetest.BusyboxArchive(t, t.TempDir(), "busybox:latest"))
	want, err := a.Get(ctx, "busybox:latest")
	if err != nil {
		t.Fatal(err)
	}
	peer, _ := servePeer(t, a.PeerHandler(), false)
	pulled := &transfers{pulls: map[string]int{}}
	b := openStore(t, Options{Metrics: pulled})
	if _, err := b.PullFromPeer(ctx, "busybox:latest", peer); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PullFromPeer(ctx, "nothere:1", peer); err == nil {
		t.Fatal("a peer without the image served it")
	}
	if pulled.pulls["peer/ok"] != 1 || pulled.pulls["peer/failed"] != 1 || len(pulled.pulls) != 2 {
		t.Errorf("pulls told: %v, want one ok and one failed from a peer", pulled.pulls)
	}
	var size int64
	for _, d := range want.DiffIDs {
		n, _, err := a.layerTarSize(d)
		if err != nil {
			t.Fatal(err)
		}
		size += n
	}
	if served.layers != len(want.DiffIDs) || served.layerBytes != size {
		t.Errorf("layers served: %d of %d bytes, want %d of %d", served.layers, served.layerBytes, len(want.DiffIDs), size)
	}
}
