package e2e

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/shoal-project/shoal/netplane/namespace"
	"github.com/shoal-project/shoal/testenv"
)

// remoteAddrServer serves /cgi-bin/ip, which answers the client address the
// task sees (busybox httpd's REMOTE_ADDR).
const remoteAddrServer = `mkdir -p /www/cgi-bin && ` +
	`printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho "$REMOTE_ADDR"\n' > /www/cgi-bin/ip && ` +
	`chmod +x /www/cgi-bin/ip && exec httpd -f -p 80 -h /www`

// The routing mesh keeps the client's address across nodes when the service
// asks for it with a label: a client outside the nodes connects to a port
// published on node 1 while the only task runs on node 3, and the task sees
// the client's own address; a service without the label sees node 1's mesh
// address, as before; on the wire between the nodes there is WireGuard only.
// Taking the label away goes back to the mesh address.
func TestMultiNodeIngressKeepsClientSource(t *testing.T) {
	t.Parallel()
	lab := swarmLab(t, 1, 2)
	nodes := lab.Nodes
	n1, n3 := nodes[0], nodes[2]
	for _, s := range []struct {
		name, port string
		labels     []string
	}{
		{"keep", "18090", []string{"--label", "com.shoal.ingress.client-source=preserve"}},
		{"masq", "18091", nil},
	} {
		args := append([]string{"service", "create", "-d", "--name", s.name}, s.labels...)
		args = append(args, "--publish", s.port+":80", "--constraint", "node.hostname=="+n3.Name,
			"--stop-grace-period", "1s", "busybox", "sh", "-c", remoteAddrServer)
		n1.MustDocker(args...)
	}
	waitRunningOn(t, n1, "keep", 1, 90*time.Second, nil)
	waitRunningOn(t, n1, "masq", 1, 60*time.Second, nil)

	client := outsider(t, lab.Lab, "10.99.0.250/24")
	seen := func(node *testenv.Node, port string) (string, error) {
		return askRemoteAddr(client, node.Addr()+":"+port)
	}
	testenv.WaitFor(t, 60*time.Second, "keep's task on node3 seeing the client through node1", func() (bool, string) {
		s, err := seen(n1, "18090")
		return err == nil && s == "10.99.0.250", fmt.Sprint(s, err)
	})
	testenv.WaitFor(t, 30*time.Second, "masq's task on node3 seeing node1's mesh address", func() (bool, string) {
		s, err := seen(n1, "18091")
		return err == nil && strings.HasPrefix(s, "10.254."), fmt.Sprint(s, err)
	})
	// Through node 2 as well, and on node 3 itself (no relay needed there).
	for _, via := range []*testenv.Node{nodes[1], n3} {
		testenv.WaitFor(t, 30*time.Second, "keep seeing the client through "+via.Name, func() (bool, string) {
			s, err := seen(via, "18090")
			return err == nil && s == "10.99.0.250", fmt.Sprint(s, err)
		})
	}

	// A task on node1's bridge reaches the port on node1's address too: the
	// relayed packet leaves with a node address (the bridge's masquerade),
	// and the reply comes back through the relay.
	n1.MustDocker("service", "create", "-d", "--name", "local", "--constraint", "node.hostname=="+n1.Name,
		"--stop-grace-period", "1s", "busybox", "sleep", "100000")
	waitRunningOn(t, n1, "local", 1, 60*time.Second, nil)
	local := strings.TrimSpace(n1.MustDocker("ps", "-q", "--filter", "name=local."))
	testenv.WaitFor(t, 30*time.Second, "a task on node1's bridge reaching keep through node1's address", func() (bool, string) {
		out, err := try(n1, "exec", local, "sh", "-c", `printf 'GET /cgi-bin/ip HTTP/1.0\r\n\r\n' | nc -w 2 `+n1.Addr()+` 18090 | tail -n 1`)
		return err == nil && strings.Contains(out, "10."), out
	})

	// On the wire: WireGuard between the nodes, never the relay's VXLAN
	// port, never the request.
	capture, err := lab.Lab.Capture()
	if err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprint("relay-marker-", time.Now().UnixNano())
	var answers []string
	for range 5 {
		s, err := askPath(client, n1.Addr()+":18090", "/cgi-bin/ip?"+marker)
		if err == nil {
			answers = append(answers, s)
		}
	}
	frames, err := capture.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if len(answers) != 5 || strings.Count(strings.Join(answers, " "), "10.99.0.250") != 5 {
		t.Fatalf("5 requests through node1 during the capture: %q", answers)
	}
	// The client's own connection to node1 is on the switch in the clear, as
	// it would be on any network; between the nodes, the request must not be.
	client4 := [4]byte{10, 99, 0, 250}
	between := 0
	for _, f := range frames {
		if len(f) < 34 || f[12] != 0x08 || f[13] != 0x00 ||
			[4]byte(f[26:30]) == client4 || [4]byte(f[30:34]) == client4 {
			continue
		}
		between++
		if strings.Contains(string(f), marker) {
			t.Fatalf("the request's plaintext crossed the switch between two nodes: %q", f)
		}
	}
	if between == 0 {
		t.Fatalf("no frame between the nodes in the capture")
	}
	ports := testenv.UDPPorts(frames)
	if ports[51820] == 0 || ports[4790] != 0 {
		t.Fatalf("UDP ports on the wire %v: want WireGuard's 51820 and never the relay's 4790", ports)
	}

	// Without the label, connections across nodes are masqueraded again.
	n1.MustDocker("service", "update", "-d", "--label-rm", "com.shoal.ingress.client-source", "keep")
	testenv.WaitFor(t, 30*time.Second, "keep's task seeing node1's mesh address once the label is gone", func() (bool, string) {
		s, err := seen(n1, "18090")
		return err == nil && strings.HasPrefix(s, "10.254."), fmt.Sprint(s, err)
	})
}

// outsider makes a namespace cabled to the lab's switch at addr: a client on
// the nodes' own network, outside every node. It goes at cleanup.
func outsider(t *testing.T, lab *testenv.Lab, addr string) netns.NsHandle {
	t.Helper()
	ns := newNamespace(t)
	sw, err := netns.GetFromPath(lab.SwitchNS())
	if err != nil {
		t.Fatalf("open the switch namespace: %v", err)
	}
	defer sw.Close()
	swh, err := netlink.NewHandleAt(sw)
	if err != nil {
		t.Fatal(err)
	}
	defer swh.Close()
	br, err := swh.LinkByName("br0")
	if err != nil {
		t.Fatalf("find the lab's bridge: %v", err)
	}
	name := fmt.Sprintf("out%d", time.Now().UnixNano()%100000)
	if err := swh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, MasterIndex: br.Attrs().Index},
		PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns))}); err != nil {
		t.Fatalf("cable the client to the switch: %v", err)
	}
	t.Cleanup(func() {
		if l, err := swh.LinkByName(name); err == nil {
			_ = swh.LinkDel(l)
		}
	})
	port, err := swh.LinkByName(name)
	if err == nil {
		err = swh.LinkSetUp(port)
	}
	if err != nil {
		t.Fatalf("switch port of the client: %v", err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	a, err := netlink.ParseAddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"lo", "eth0"} {
		l, err := h.LinkByName(n)
		if err == nil && n == "eth0" {
			err = h.AddrAdd(l, a)
		}
		if err == nil {
			err = h.LinkSetUp(l)
		}
		if err != nil {
			t.Fatalf("set the client's %s up: %v", n, err)
		}
	}
	return ns
}

// newNamespace makes an anonymous network namespace, alive while its handle
// is open (closed at cleanup).
func newNamespace(t *testing.T) netns.NsHandle {
	t.Helper()
	type result struct {
		ns  netns.NsHandle
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer orig.Close()
		ns, err := netns.New()
		if err != nil {
			done <- result{err: err}
			return
		}
		if err := netns.Set(orig); err != nil {
			done <- result{ns, err} // the thread stays locked and dies with the goroutine
			return
		}
		runtime.UnlockOSThread()
		done <- result{ns, nil}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("new netns: %v", r.err)
	}
	t.Cleanup(func() { r.ns.Close() })
	return r.ns
}

// askRemoteAddr asks the server at addr which client address it sees.
func askRemoteAddr(ns netns.NsHandle, addr string) (string, error) {
	return askPath(ns, addr, "/cgi-bin/ip")
}

// askPath GETs path from addr over a connection made in ns and returns the
// body, trimmed.
func askPath(ns netns.NsHandle, addr, path string) (string, error) {
	var c net.Conn
	if err := namespace.Run(ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 2*time.Second)
		return err
	}); err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.0\r\n\r\n", path); err != nil {
		return "", err
	}
	resp, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	// The last line is the body (CGI headers may end in a bare newline).
	lines := strings.Split(strings.TrimSpace(string(resp)), "\n")
	if !strings.Contains(lines[0], " 200 ") || len(lines) < 3 {
		return "", fmt.Errorf("answer %q", resp)
	}
	// busybox httpd listens on IPv6 and says "[::ffff:10.99.0.250]".
	seen := strings.Trim(strings.TrimSpace(lines[len(lines)-1]), "[]")
	return strings.TrimPrefix(seen, "::ffff:"), nil
}
