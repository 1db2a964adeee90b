package engineapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"

	ctr "github.com/shoal-project/shoal/runtime/container"
)

// recorded is how many events the hub holds.
func recorded(h *eventHub) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stored
}

func serviceEvent(id, name string, action events.Action, at time.Time) events.Message {
	return events.Message{
		Type: events.ServiceEventType, Action: action, Scope: "swarm",
		Actor: events.Actor{ID: id, Attributes: map[string]string{"name": name}},
		Time:  at.Unix(), TimeNano: at.UnixNano(),
	}
}

func TestEventFilter(t *testing.T) {
	now := time.Now()
	web := serviceEvent("svcweb0001", "web", events.ActionUpdate, now)
	die := events.Message{
		Type: events.ContainerEventType, Action: events.ActionDie, Scope: "local",
		Actor: events.Actor{ID: "ctr0123456789", Attributes: map[string]string{
			"name": "web.1.abc", "image": "docker.io/library/busybox:latest", "exitCode": "1",
			"com.docker.swarm.service.name": "web",
		}},
	}
	health := die
	health.Action = "health_status: unhealthy"
	node := events.Message{Type: events.NodeEventType, Action: events.ActionUpdate, Scope: "swarm",
		Actor: events.Actor{ID: "node0001", Attributes: map[string]string{"name": "edge-1"}}}

	tests := []struct {
		filters string
		want    []string // which of web, die, health, node pass
	}{
		{``, []string{"web", "die", "health", "node"}},
		{`{"type":{"service":true}}`, []string{"web"}},
		{`{"type":{"container":true,"node":true}}`, []string{"die", "health", "node"}},
		{`{"event":{"die":true}}`, []string{"die"}},
		{`{"event":{"health_status":true}}`, []string{"health"}},
		{`{"action":{"update":true}}`, []string{"web", "node"}},
		{`{"scope":{"local":true}}`, []string{"die", "health"}},
		// As in Docker, an object filter matches any actor whose name it prefixes.
		{`{"service":{"web":true}}`, []string{"web", "die", "health"}},
		{`{"service":{"svcweb":true}}`, []string{"web"}},
		{`{"container":{"web.1":true}}`, []string{"die", "health"}},
		{`{"container":{"ctr0123":true}}`, []string{"die", "health"}},
		{`{"node":{"edge-1":true}}`, []string{"node"}},
		{`{"id":{"node0":true}}`, []string{"node"}},
		{`{"label":{"com.docker.swarm.service.name=web":true}}`, []string{"die", "health"}},
		{`{"label":{"com.docker.swarm.service.name=db":true}}`, []string{}},
		{`{"image":{"busybox":true}}`, []string{"die", "health"}},
		{`{"image":{"busybox:latest":true}}`, []string{}},
		{`{"image":{"docker.io/library/busybox:latest":true}}`, []string{"die", "health"}},
		{`{"type":{"service":true},"event":{"die":true}}`, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.filters, func(t *testing.T) {
			f, err := parseFilters(tt.filters)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, c := range []struct {
				name string
				ev   events.Message
			}{{"web", web}, {"die", die}, {"health", health}, {"node", node}} {
				if eventFilter(f).include(c.ev) {
					got = append(got, c.name)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("passed %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEventHubReplayWindowAndRing(t *testing.T) {
	h := newEventHub(nil, nil, nil)
	t.Cleanup(h.close)
	base := time.Now().Add(-time.Hour)
	for i := range eventHistory + 10 {
		h.publish(serviceEvent(fmt.Sprintf("svc%04d", i), "s", events.ActionCreate, base.Add(time.Duration(i)*time.Second)))
	}
	all := func(events.Message) bool { return true }

	past, _, cancel := h.subscribe(time.Time{}, time.Time{}, all)
	cancel()
	if len(past) != 0 {
		t.Errorf("no since/until replays %d events, want none (as Docker)", len(past))
	}
	past, _, cancel = h.subscribe(base, time.Now(), all)
	cancel()
	if len(past) != eventHistory || past[0].Actor.ID != "svc0010" || past[len(past)-1].Actor.ID != fmt.Sprintf("svc%04d", eventHistory+9) {
		t.Fatalf("replay of everything: %d events from %s, want the last %d oldest first", len(past), past[0].Actor.ID, eventHistory)
	}
	past, _, cancel = h.subscribe(base.Add(100*time.Second), base.Add(102*time.Second), all)
	cancel()
	var ids []string
	for _, ev := range past {
		ids = append(ids, ev.Actor.ID)
	}
	if !slices.Equal(ids, []string{"svc0100", "svc0101", "svc0102"}) {
		t.Errorf("window replay %v", ids)
	}
}

func TestEventHubClosesStreams(t *testing.T) {
	h := newEventHub(nil, nil, nil)
	_, live, _ := h.subscribe(time.Time{}, time.Time{}, func(events.Message) bool { return true })
	h.close()
	select {
	case _, ok := <-live:
		if ok {
			t.Fatal("got an event after close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscriber stream not ended by close")
	}
}

func TestEventsStreamLiveToDockerCLI(t *testing.T) {
	sw := newSwarmFake("evnode0123456789abcdefghi", "ev-host")
	ct := &systemContainersFake{image: map[string]string{"c0ffee000111": "busybox:latest"}}
	api := startSystemAPI(t, Config{Swarm: sw, Containers: ct})
	sysWaitFor(t, "the hub to subscribe to the containers", func() bool { return ct.subscribers() == 1 })

	// The swarm feed exists only once the node is in a swarm.
	if status, body, _ := api.do(t, http.MethodPost, "/swarm/init", "application/json", `{"ListenAddr":"127.0.0.1:2377"}`); status != http.StatusOK {
		t.Fatalf("swarm init: %d %s", status, body)
	}
	sysWaitFor(t, "the hub to follow the new swarm", func() bool { return sw.subscribers() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	cmd := api.dockerCommand(t, ctx, "events", "--filter", "type=service", "--format", "{{.Type}} {{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"name\"}}")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start docker events: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	sysWaitFor(t, "docker events to connect", func() bool { return api.srv.events.listeners() == 1 })

	ct.emit(ctr.Event{ID: "c0ffee000111", Name: "/web.1.x", Action: "start", Time: time.Now()})
	sw.emit(serviceEvent("svc0abc", "web", events.ActionCreate, time.Now()))
	sw.emit(serviceEvent("svc0abc", "web", events.ActionUpdate, time.Now()))

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for _, want := range []string{"service create svc0abc web", "service update svc0abc web"} {
		select {
		case got := <-lines:
			if got != want {
				t.Errorf("docker events printed %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("docker events did not print %q", want)
		}
	}
}

func TestEventsPastWindowWithDockerCLI(t *testing.T) {
	ct := &systemContainersFake{image: map[string]string{"abc123def456": "nginx:1.27"}}
	api := startSystemAPI(t, Config{Containers: ct})
	sysWaitFor(t, "the hub to subscribe", func() bool { return ct.subscribers() == 1 })

	t0 := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	labels := map[string]string{"com.docker.swarm.service.name": "api"}
	ct.emit(ctr.Event{ID: "abc123def456", Name: "api.1.t1", Action: "create", Time: t0, Labels: labels})
	ct.emit(ctr.Event{ID: "abc123def456", Name: "api.1.t1", Action: "start", Time: t0.Add(time.Second), Labels: labels})
	ct.emit(ctr.Event{ID: "abc123def456", Name: "api.1.t1", Action: "die", ExitCode: 137, Time: t0.Add(2 * time.Second), Labels: labels})
	ct.emit(ctr.Event{ID: "abc123def456", Name: "api.1.t1", Action: "destroy", Time: t0.Add(20 * time.Second), Labels: labels})
	sysWaitFor(t, "four recorded events", func() bool { return recorded(api.srv.events) == 4 })

	since := fmt.Sprint(t0.Add(time.Second).Unix())
	until := fmt.Sprint(t0.Add(5 * time.Second).Unix())
	out, errOut, err := api.docker(t, "events", "--since", since, "--until", until, "--format",
		`{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.image}} {{index .Actor.Attributes "exitCode"}} {{index .Actor.Attributes "com.docker.swarm.service.name"}}`)
	if err != nil {
		t.Fatalf("docker events --since --until: %v\n%s", err, errOut)
	}
	want := "container start api.1.t1 nginx:1.27  api\ncontainer die api.1.t1 nginx:1.27 137 api\n"
	if out != want {
		t.Errorf("docker events printed\n%s\nwant\n%s", out, want)
	}

	out, errOut, err = api.docker(t, "events", "--since", since, "--until", until, "--filter", "event=die")
	if err != nil {
		t.Fatalf("docker events --filter event=die: %v\n%s", err, errOut)
	}
	if !strings.HasSuffix(out, " container die abc123def456 (com.docker.swarm.service.name=api, exitCode=137, image=nginx:1.27, name=api.1.t1)\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("docker events default format printed %q", out)
	}
}

func TestEventsHTTPFormat(t *testing.T) {
	ct := &systemContainersFake{image: map[string]string{"feed00000001": "redis:7"}}
	api := startSystemAPI(t, Config{Containers: ct})
	sysWaitFor(t, "the hub to subscribe", func() bool { return ct.subscribers() == 1 })
	at := time.Now().Add(-10 * time.Second)
	ct.emit(ctr.Event{ID: "feed00000001", Name: "cache", Action: "kill", Signal: 15, Time: at})
	sysWaitFor(t, "the recorded event", func() bool { return recorded(api.srv.events) == 1 })

	window := "?since=" + url.QueryEscape(fmt.Sprintf("%d.%09d", at.Unix()-1, 0)) + "&until=" + fmt.Sprint(time.Now().Unix())
	tests := []struct {
		path, wantType string
		legacy         bool
	}{
		{"/v1.41/events" + window, "application/json", true},
		{"/v1.50/events" + window, "application/json", true},
		// 1.52's JSON lines are served once APIVersion reaches 1.52: until then
		// /v1.52 is refused as too new, as dockerd refuses it.
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			status, body, h := api.do(t, http.MethodGet, tt.path, "", "")
			if status != http.StatusOK || h.Get("Content-Type") != tt.wantType {
				t.Fatalf("status %d, Content-Type %q: %s", status, h.Get("Content-Type"), body)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(strings.TrimSpace(body)), &m); err != nil {
				t.Fatalf("not one JSON event per line: %v: %q", err, body)
			}
			actor, _ := m["Actor"].(map[string]any)
			attrs, _ := actor["Attributes"].(map[string]any)
			if m["Type"] != "container" || m["Action"] != "kill" || m["scope"] != "local" || attrs["signal"] != "15" || attrs["image"] != "redis:7" {
				t.Errorf("event %s", body)
			}
			if _, has := m["status"]; has != tt.legacy || (tt.legacy && (m["id"] != "feed00000001" || m["from"] != "redis:7")) {
				t.Errorf("legacy fields present=%v, want %v: %s", has, tt.legacy, body)
			}
		})
	}

	for _, bad := range []string{"?since=yesterday", "?until=12x", "?since=200&until=100", "?filters=%7Bbad"} {
		if status, body, _ := api.do(t, http.MethodGet, "/events"+bad, "", ""); status != http.StatusBadRequest || !strings.Contains(body, `"message"`) {
			t.Errorf("GET /events%s: %d %s, want 400", bad, status, body)
		}
	}
}

func TestParseEventTime(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"1700000000", time.Unix(1700000000, 0)},
		{"1700000000.5", time.Unix(1700000000, 500000000)},
		{"1700000000.000000001", time.Unix(1700000000, 1)},
		{"10m", now.Add(-10 * time.Minute)},
		{"2026-05-01T11:00:00Z", now.Add(-time.Hour)},
	}
	for _, tt := range tests {
		got, err := parseEventTime(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseEventTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"soon", "12.ab", "-"} {
		if _, err := parseEventTime(bad, now); err == nil {
			t.Errorf("parseEventTime(%q) accepted", bad)
		}
	}
}

// A task container's start and death come with the bridge network's connect and
// disconnect events, in dockerd's order; a container outside the swarm has none.
func TestTaskContainerNetworkEvents(t *testing.T) {
	ct := &systemContainersFake{image: map[string]string{"c0ffee000111": "busybox:latest", "beef00000222": "busybox:latest"}}
	h := newEventHub(nil, ct, nil)
	t.Cleanup(h.close)
	sysWaitFor(t, "the hub to subscribe to the containers", func() bool { return ct.subscribers() == 1 })
	start := time.Now().Add(-time.Second)
	task := map[string]string{"com.docker.swarm.task.id": "task1"}
	ct.emit(ctr.Event{ID: "c0ffee000111", Name: "/web.1.task1", Action: "start", Labels: task, Time: time.Now()})
	ct.emit(ctr.Event{ID: "c0ffee000111", Name: "/web.1.task1", Action: "die", Labels: task, Time: time.Now()})
	ct.emit(ctr.Event{ID: "beef00000222", Name: "/loose", Action: "start", Time: time.Now()})
	var got []string
	sysWaitFor(t, "five events", func() bool {
		past, _, cancel := h.subscribe(start, time.Now().Add(time.Second), func(events.Message) bool { return true })
		cancel()
		got = got[:0]
		for _, ev := range past {
			got = append(got, fmt.Sprintf("%s %s %s", ev.Type, ev.Action, ev.Actor.Attributes["container"]))
		}
		return len(got) == 5
	})
	want := []string{"network connect c0ffee000111", "container start ", "container die ", "network disconnect c0ffee000111", "container start "}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}
