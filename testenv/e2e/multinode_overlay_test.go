package e2e

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// Overlay networks across three nodes: tasks reach a service by name through
// its VIP, which balances over the service's tasks on every node; tasks.<name>
// lists them; a task on another network can neither resolve nor reach them; a
// port published through the routing mesh answers on every node, from tasks on
// any node.
func TestMultiNodeOverlay(t *testing.T) {
	t.Parallel()
	lab := swarmLab(t, 1, 2)
	nodes := lab.Nodes
	n1 := nodes[0]
	n1.MustDocker("network", "create", "-d", "overlay", "--subnet", "10.20.0.0/24", "backend")
	n1.MustDocker("network", "create", "-d", "overlay", "--opt", "encrypted", "other")
	if out := n1.MustDocker("network", "inspect", "--format", "{{.Scope}} {{.Driver}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}", "backend"); strings.TrimSpace(out) != "swarm overlay 10.20.0.0/24 10.20.0.1" {
		t.Fatalf("network inspect backend: %q", out)
	}
	// Each task serves its slot; one per node (the scheduler spreads a service).
	n1.MustDocker("service", "create", "-d", "--name", "srv", "--replicas", "3", "--network", "backend",
		"--publish", "18080:80", "--env", "SLOT={{.Task.Slot}}", "--stop-grace-period", "1s",
		"busybox", "sh", "-c", "echo $SLOT > /tmp/slot; hostname > /tmp/name; exec httpd -f -p 80 -h /tmp")
	n1.MustDocker("service", "create", "-d", "--name", "cli", "--network", "backend", "--stop-grace-period", "1s",
		"--constraint", "node.hostname=="+n1.Name, "busybox", "sleep", "100000")
	n1.MustDocker("service", "create", "-d", "--name", "iso", "--network", "other", "--stop-grace-period", "1s",
		"--constraint", "node.hostname=="+n1.Name, "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	waitRunningOn(t, n1, "srv", 3, 90*time.Second, func(by map[string]int) bool { return len(by) == 3 })
	waitRunningOn(t, n1, "cli", 1, 60*time.Second, nil)
	waitRunningOn(t, n1, "iso", 1, 60*time.Second, nil)

	cli := strings.TrimSpace(n1.MustDocker("ps", "-q", "--filter", "name=cli."))
	vip := strings.TrimSpace(n1.MustDocker("service", "inspect", "--format",
		`{{range .Endpoint.VirtualIPs}}{{.Addr}} {{end}}`, "srv"))
	if !strings.HasPrefix(vip, "10.20.0.") {
		t.Fatalf("srv VIPs %q: want one in backend's 10.20.0.0/24", vip)
	}
	vipAddr, _, _ := strings.Cut(vip, "/")

	// Names: srv is the VIP, tasks.srv the three task addresses.
	testenv.WaitFor(t, 30*time.Second, "srv resolving to its VIP and tasks.srv to three tasks", func() (bool, string) {
		out, _ := try(n1, "exec", cli, "nslookup", "srv")
		tasks, _ := try(n1, "exec", cli, "nslookup", "tasks.srv")
		return strings.Contains(out, "Address: "+vipAddr) && strings.Count(tasks, "Address: 10.20.0.") == 3, out + tasks
	})

	// The VIP spreads connections over the tasks on all three nodes: 300 in a
	// row, every one answered, by each task.
	testenv.WaitFor(t, 60*time.Second, "connections to srv answered", func() (bool, string) {
		out, err := try(n1, "exec", cli, "sh", "-c", `printf 'GET /slot HTTP/1.0\r\n\r\n' | nc -w 2 srv 80 | tail -n 1`)
		return err == nil && strings.TrimSpace(out) != "", out
	})
	out, err := try(n1, "exec", cli, "sh", "-c",
		`i=0; while [ $i -lt 300 ]; do printf 'GET /slot HTTP/1.0\r\n\r\n' | nc -w 2 srv 80 | tail -n 1; i=$((i+1)); done`)
	if err != nil {
		t.Fatalf("300 connections to srv: %v\n%s", err, out)
	}
	slots := map[string]int{}
	for _, s := range strings.Fields(out) {
		slots[s]++
	}
	if len(slots) != 3 || slots["1"]+slots["2"]+slots["3"] != 300 {
		t.Fatalf("300 connections to srv's VIP answered by %v: want all 300 spread over slots 1, 2 and 3", slots)
	}

	// On the wire between the nodes there is WireGuard, never the payload.
	capture, err := lab.Lab.Capture()
	if err != nil {
		t.Fatal(err)
	}
	marker := "plaintext-marker-" + strings.Repeat("x", 8) + fmt.Sprint(time.Now().UnixNano())
	out, err = try(n1, "exec", cli, "sh", "-c",
		`for i in 1 2 3 4 5 6; do printf 'GET /slot?`+marker+` HTTP/1.0\r\n\r\n' | nc -w 2 srv 80 | tail -n 1; done`)
	frames, cerr := capture.Stop()
	if err != nil || cerr != nil {
		t.Fatalf("requests during the capture: %v %v\n%s", err, cerr, out)
	}
	if got := strings.Fields(out); len(got) != 6 {
		t.Fatalf("6 requests during the capture answered %q", out)
	}
	for _, f := range frames {
		if strings.Contains(string(f), marker) {
			t.Fatalf("the request's plaintext crossed the lab's switch: %q", f)
		}
	}
	if ports := testenv.UDPPorts(frames); ports[51820] == 0 {
		t.Fatalf("no WireGuard traffic between the nodes while tasks talked across them: UDP ports %v", ports)
	}

	// A task that dies leaves the VIP: once it has stopped, no connection
	// reaches it.
	victim := nodes[2]
	dead := strings.TrimSpace(victim.MustDocker("ps", "-q", "--filter", "name=srv."))
	deadName := strings.TrimSpace(victim.MustDocker("exec", dead, "hostname"))
	victim.MustDocker("kill", dead)
	testenv.WaitFor(t, 30*time.Second, "the killed task stopped", func() (bool, string) {
		out, _ := try(victim, "ps", "-q", "--no-trunc", "--filter", "status=running", "--filter", "id="+dead)
		return strings.TrimSpace(out) == "", out
	})
	testenv.WaitFor(t, 10*time.Second, "the killed task out of srv's VIP", func() (bool, string) {
		out, err := try(n1, "exec", cli, "sh", "-c",
			`for i in 1 2 3 4 5 6 7 8 9 10 11 12; do printf 'GET /name HTTP/1.0\r\n\r\n' | nc -w 1 srv 80 | tail -n 1; done`)
		return err == nil && !strings.Contains(out, deadName), out
	})

	// The task on the other network does not resolve or reach srv's tasks.
	isoAddr := taskAddr(t, n1, "iso")
	if out, err := try(n1, "exec", cli, "sh", "-c", fmt.Sprintf(`printf 'GET /hostname HTTP/1.0\r\n\r\n' | nc -w 2 %s 80`, isoAddr)); err == nil && strings.TrimSpace(out) != "" {
		t.Errorf("cli on backend reached iso on other at %s: %q", isoAddr, out)
	}
	if out, err := try(n1, "exec", cli, "nslookup", "iso"); err == nil && strings.Contains(out, "Address: "+isoAddr) {
		t.Errorf("cli on backend resolved iso on other: %s", out)
	}

	// The node itself reaches the published port at 127.0.0.1, tasks of other
	// nodes included.
	local := map[string]bool{}
	testenv.WaitFor(t, 60*time.Second, "127.0.0.1:18080 on node1 reaching every task", func() (bool, string) {
		for i := 0; i < 6; i++ {
			if s, err := httpGet(n1, "http://127.0.0.1:18080/slot"); err == nil {
				local[s] = true
			}
		}
		return len(local) == 3, fmt.Sprint(local)
	})

	// A host-mode port answers on the node of its task only.
	n1.MustDocker("service", "create", "-d", "--name", "hosted", "--constraint", "node.hostname=="+nodes[1].Name,
		"--publish", "mode=host,published=18081,target=80", "--stop-grace-period", "1s",
		"busybox", "sh", "-c", "echo hosted > /tmp/page; exec httpd -f -p 80 -h /tmp")
	waitRunningOn(t, n1, "hosted", 1, 60*time.Second, nil)
	testenv.WaitFor(t, 30*time.Second, "the host-mode port on its task's node", func() (bool, string) {
		s, err := httpGet(n1, "http://"+nodes[1].Addr()+":18081/page")
		return err == nil && s == "hosted", fmt.Sprint(s, err)
	})
	for _, other := range []*testenv.Node{nodes[0], nodes[2]} {
		if s, err := httpGet(n1, "http://"+other.Addr()+":18081/page"); err == nil {
			t.Errorf("the host-mode port answered on %s, which does not run its task: %q", other.Name, s)
		}
	}

	// The routing mesh: every node answers the published port, and from
	// each, connections reach tasks on other nodes too.
	for _, via := range nodes {
		seen := map[string]bool{}
		testenv.WaitFor(t, 60*time.Second, "port 18080 on "+via.Name+" reaching every task", func() (bool, string) {
			for i := 0; i < 6; i++ {
				if s, err := httpGet(nodes[(i+1)%len(nodes)], "http://"+via.Addr()+":18080/slot"); err == nil {
					seen[s] = true
				}
			}
			return len(seen) == 3, fmt.Sprint(seen)
		})
	}
}

// taskAddr is the overlay address of a service's first running task.
func taskAddr(t *testing.T, n *testenv.Node, service string) string {
	t.Helper()
	id := strings.Fields(n.MustDocker("service", "ps", "-q", "--filter", "desired-state=running", service))[0]
	out := strings.TrimSpace(n.MustDocker("inspect", "--type", "task", "--format", `{{range .NetworksAttachments}}{{range .Addresses}}{{.}} {{end}}{{end}}`, id))
	addr, _, _ := strings.Cut(out, "/")
	if addr == "" {
		t.Fatalf("task %s of %s has no overlay address", id, service)
	}
	return addr
}

// httpGet fetches url from inside n's namespace, the body trimmed.
func httpGet(n *testenv.Node, url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := n.HTTPGet(ctx, url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	return strings.TrimSpace(string(body)), err
}
