package cluster

import (
	"testing"
	"time"

	"github.com/shoal-project/shoal/cluster/ca"
)

// A certificate renews between half and four fifths of the life it was issued
// with, not counting the clock skew it is backdated by: a 30 s certificate
// renews 15 to 24 s after its issue, not at once.
func TestRenewAt(t *testing.T) {
	issued := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, life := range []time.Duration{30 * time.Second, time.Hour, 90 * 24 * time.Hour} {
		for range 100 {
			at := renewAt(issued.Add(-ca.ClockSkew), issued.Add(life))
			if at.Before(issued.Add(life/2)) || at.After(issued.Add(life*8/10)) {
				t.Fatalf("life %s: renews %s after its issue, want between %s and %s", life, at.Sub(issued), life/2, life*8/10)
			}
		}
	}
	// A certificate without the backdating (not issued by shoal) counts its
	// life from notBefore.
	if at := renewAt(issued, issued.Add(time.Minute)); at.Before(issued.Add(30*time.Second)) || at.After(issued.Add(48*time.Second)) {
		t.Errorf("renews %s after notBefore, want 30 to 48 s", at.Sub(issued))
	}
}

func TestRenewRetry(t *testing.T) {
	for _, c := range []struct{ left, want time.Duration }{
		{time.Hour, time.Minute},
		{2 * time.Minute, 30 * time.Second},
		{2 * time.Second, time.Second},
		{-time.Second, time.Second},
	} {
		if got := renewRetry(c.left); got != c.want {
			t.Errorf("renewRetry(%s) = %s, want %s", c.left, got, c.want)
		}
	}
}
