package engineapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"

	ctr "github.com/shoal-project/shoal/runtime/container"
)

func pruneFixture(t *testing.T) (*svcAPI, *ctrFake, *imageFake, map[string]string) {
	t.Helper()
	images := &imageFake{}
	used := images.addImage("used:1")
	unused := images.addImage("unused:1")
	dangling := images.addImage()
	now := time.Now().Unix()
	ctrs := newCtrFake(
		container.Summary{ID: strings.Repeat("a", 64), Names: []string{"/web.1.x"}, State: container.StateRunning, ImageID: used.ID, Created: now},
		container.Summary{ID: strings.Repeat("b", 64), Names: []string{"/job.1.y"}, State: container.StateExited, ImageID: used.ID, Created: now},
		container.Summary{ID: strings.Repeat("c", 64), Names: []string{"/job.2.z"}, State: container.StateExited, Created: now,
			Labels: map[string]string{"keep": "yes"}},
	)
	api := startSvcAPI(t, Config{Swarm: newServiceFake(), Containers: ctrs, Images: images})
	return api, ctrs, images, map[string]string{"used": used.ID, "unused": unused.ID, "dangling": dangling.ID}
}

func TestPauseUnpauseWithTheCLI(t *testing.T) {
	api, ctrs, _, _ := pruneFixture(t)
	id := strings.Repeat("a", 64)
	if out := api.mustDocker(t, "pause", "web.1.x"); strings.TrimSpace(out) != "web.1.x" {
		t.Fatalf("docker pause printed %q", out)
	}
	if ins, _ := ctrs.Inspect(t.Context(), id); ins.State.Status != container.StatePaused {
		t.Fatalf("state after pause: %s", ins.State.Status)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"pause", "web.1.x"}, "Error response from daemon: Container " + id + " is already paused"},
		{[]string{"pause", "job.1.y"}, "Error response from daemon: Container " + strings.Repeat("b", 64) + " is not running"},
		{[]string{"unpause", "job.1.y"}, "Error response from daemon: Container " + strings.Repeat("b", 64) + " is not paused"},
		{[]string{"pause", "nosuch"}, "Error response from daemon: No such container: nosuch"},
	}
	for _, tc := range tests {
		_, errOut, err := api.docker(t, "", tc.args...)
		if err == nil || strings.TrimSpace(errOut) != tc.want {
			t.Errorf("docker %s: %v %q, want %q", strings.Join(tc.args, " "), err, errOut, tc.want)
		}
	}
	if out := api.mustDocker(t, "unpause", "web.1.x"); strings.TrimSpace(out) != "web.1.x" {
		t.Fatalf("docker unpause printed %q", out)
	}
	if ins, _ := ctrs.Inspect(t.Context(), id); ins.State.Status != container.StateRunning {
		t.Fatalf("state after unpause: %s", ins.State.Status)
	}
}

func TestContainerPruneWithTheCLI(t *testing.T) {
	api, ctrs, _, _ := pruneFixture(t)
	out := api.mustDocker(t, "container", "prune", "-f", "--filter", "label!=keep")
	want := "Deleted Containers:\n" + strings.Repeat("b", 64) + "\n\nTotal reclaimed space: 100B\n"
	if out != want {
		t.Fatalf("docker container prune printed %q, want %q", out, want)
	}
	list, _ := ctrs.List(t.Context(), true)
	if len(list) != 2 {
		t.Fatalf("%d containers left, want the running one and the labelled one", len(list))
	}
	if out := api.mustDocker(t, "container", "prune", "-f", "--filter", "until=1h"); out != "Total reclaimed space: 0B\n" {
		t.Fatalf("prune until 1h ago printed %q", out)
	}

	tests := []struct{ filters, want string }{
		{`{"until":{"bogus":true}}`, `invalid timestamp`},
		{`{"until":{"1h":true,"2h":true}}`, "more than one until filter specified"},
		{`{"dangling":{"true":true}}`, "invalid filter 'dangling'"},
	}
	for _, tc := range tests {
		resp, body := api.call(t, "POST", "/v1.51/containers/prune?filters="+url.QueryEscape(tc.filters), nil, nil)
		if resp.StatusCode != 400 || !strings.Contains(string(body), tc.want) {
			t.Errorf("prune with %s: %d %s, want 400 %q", tc.filters, resp.StatusCode, body, tc.want)
		}
	}
}

func TestImagePruneWithTheCLI(t *testing.T) {
	api, _, images, ids := pruneFixture(t)
	out := api.mustDocker(t, "image", "prune", "-f")
	want := "Deleted Images:\ndeleted: " + ids["dangling"] + "\n\nTotal reclaimed space: 3kB\n"
	if out != want {
		t.Fatalf("docker image prune printed %q, want %q", out, want)
	}
	out = api.mustDocker(t, "image", "prune", "-af")
	want = "Deleted Images:\nuntagged: unused:1\ndeleted: " + ids["unused"] + "\n\nTotal reclaimed space: 2kB\n"
	if out != want {
		t.Fatalf("docker image prune -a printed %q, want %q", out, want)
	}
	list, _ := images.List(t.Context())
	if len(list) != 1 || list[0].ID != ids["used"] {
		t.Fatalf("images left %+v, want only the one a container uses", list)
	}

	resp, body := api.call(t, "POST", "/v1.51/images/prune?filters="+url.QueryEscape(`{"dangling":{"maybe":true}}`), nil, nil)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "invalid filter 'dangling=maybe'") {
		t.Fatalf("dangling=maybe: %d %s", resp.StatusCode, body)
	}
	resp, body = api.call(t, "POST", "/v1.51/images/prune", nil, nil)
	var rep image.PruneReport
	if resp.StatusCode != 200 || json.Unmarshal(body, &rep) != nil || rep.ImagesDeleted == nil {
		t.Fatalf("empty prune: %d %s, want an empty ImagesDeleted list", resp.StatusCode, body)
	}
}

func TestSystemPruneWithTheCLI(t *testing.T) {
	api, _, images, ids := pruneFixture(t)
	out := api.mustDocker(t, "system", "prune", "-f")
	for _, want := range []string{
		"Deleted Containers:\n" + strings.Repeat("b", 64) + "\n" + strings.Repeat("c", 64) + "\n",
		"Deleted Images:\ndeleted: " + ids["dangling"] + "\n",
		"Total reclaimed space: 3.2kB",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("docker system prune printed %q, want %q in it", out, want)
		}
	}
	// -a removes the tagged unused image too; the running container keeps its own.
	api.mustDocker(t, "system", "prune", "-af")
	if list, _ := images.List(t.Context()); len(list) != 1 || list[0].ID != ids["used"] {
		t.Fatalf("images left after system prune -a: %+v, want only the one in use", list)
	}
	resp, body := api.call(t, "POST", "/v1.51/build/prune", nil, nil)
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"CachesDeleted":[],"SpaceReclaimed":0}` {
		t.Fatalf("build prune: %d %s", resp.StatusCode, body)
	}
}

// systemContainersFake serves /info and events only: it pauses and prunes nothing.
func (f *systemContainersFake) Pause(context.Context, string) error {
	return errors.New("no pause in the fake")
}

func (f *systemContainersFake) Unpause(context.Context, string) error {
	return errors.New("no unpause in the fake")
}

func (f *systemContainersFake) Prune(context.Context, ctr.PruneOptions) (container.PruneReport, error) {
	return container.PruneReport{}, errors.New("no prune in the fake")
}
