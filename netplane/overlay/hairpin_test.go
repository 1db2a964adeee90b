package overlay

import (
	"net/netip"
	"testing"
)

// A task that is a backend of a VIP it connects to reaches itself: the
// connection leaves through its host end and comes back, so the node must
// give it a source the task does not own, and take the reply back.
func TestVIPReachesTheClientItself(t *testing.T) {
	l := newLab(t)
	n1, n2 := l.nodes[0], l.nodes[1]
	c := l.task(n1, "c", netA, "10.10.1.10")
	serve(t, c.ns, ":80", "c")
	l.apply(n1, VIP{Addr: netip.MustParseAddr("10.10.1.250"), Backends: []netip.Addr{c.addr}})
	l.apply(n2)
	expectReply(t, c.ns, "10.10.1.250:80", "c sees 10.10.1.1")
}
