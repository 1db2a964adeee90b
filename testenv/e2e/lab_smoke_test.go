package e2e

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

// A port that a task publishes on one lab node answers another node across the
// lab's switch, stops answering while a partition separates them, and answers
// again after Heal.
func TestLabPublishedPortAcrossNodes(t *testing.T) {
	t.Parallel()
	lab := testenv.NewLab(t, testenv.LabOptions{Nodes: 2})
	n1, n2 := lab.Nodes[0], lab.Nodes[1]
	n1.MustDocker("swarm", "init", "--advertise-addr", n1.Addr())
	archive := imagetest.BusyboxArchive(t, t.TempDir(), "busybox:latest")
	n1.MustDocker("load", "-i", archive)
	n1.MustDocker("service", "create", "-d", "--name", "web", "--stop-grace-period", "1s",
		"--publish", "mode=host,published=18080,target=8080",
		"busybox", "sh", "-c", "echo published > /tmp/index.html; exec httpd -f -p 8080 -h /tmp")
	url := "http://" + n1.Addr() + ":18080/index.html"
	get := func(timeout time.Duration) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		resp, err := n2.HTTPGet(ctx, url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body))), err
	}
	answers := func() (bool, string) {
		got, err := get(3 * time.Second)
		return err == nil && got == "200 published", fmt.Sprint(got, err)
	}
	testenv.WaitFor(t, 30*time.Second, "node2 gets the page that node1 publishes", answers)

	lab.Partition([]*testenv.Node{n1}, []*testenv.Node{n2})
	if got, err := get(time.Second); err == nil {
		t.Errorf("across the partition node2 got %q", got)
	}
	lab.Heal()
	testenv.WaitFor(t, 10*time.Second, "node2 gets the page again after heal", answers)
}
