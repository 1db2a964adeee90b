package engineapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

// systemContainersFake serves /info and events only.
func (f *systemContainersFake) Top(context.Context, string, string) (container.TopResponse, error) {
	return container.TopResponse{}, errors.New("no top in the fake")
}

func (f *systemContainersFake) Stats(context.Context, string) (container.StatsResponse, error) {
	return container.StatsResponse{}, errors.New("no stats in the fake")
}

func TestContainerTop(t *testing.T) {
	ct, _, api := ctrFixture(t)
	resp, body := api.call(t, "GET", "/v1.50/containers/web.1.task1/top?ps_args="+strings.ReplaceAll("-o pid,comm", " ", "%20"), nil, nil)
	if resp.StatusCode != 200 || ct.psArgs != "-o pid,comm" {
		t.Fatalf("top: %d %s, ps args %q", resp.StatusCode, body, ct.psArgs)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || len(raw) != 2 || raw["Titles"] == nil || raw["Processes"] == nil {
		t.Fatalf("top body %s, want {Titles, Processes}", body)
	}
	out := api.mustDocker(t, "top", "web.1.task1")
	if !regexp.MustCompile(`(?m)^UID +PID +PPID +C +STIME +TTY +TIME +CMD\nroot +4242 +4200 +0 +10:00 +\? +00:00:00 +sleep 1000$`).MatchString(out) {
		t.Fatalf("docker top printed:\n%s", out)
	}
	for _, tc := range []struct{ path, status, body string }{
		{"/containers/web.1.task0/top", "409", `{"message":"container ` + strings.Repeat("b2", 32) + ` is not running"}`},
		{"/containers/nope/top", "404", `{"message":"No such container: nope"}`},
		{"/containers/probe/top?ps_args=bogus", "500", `{"message":"ps: error: garbage option"}`},
	} {
		resp, body := api.call(t, "GET", tc.path, nil, nil)
		if itoa(uint64(resp.StatusCode)) != tc.status || strings.TrimSpace(string(body)) != tc.body {
			t.Errorf("GET %s: %d %s; want %s %s", tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
	}
}

// decodeStats reads every stats object of a response body.
func decodeStats(t *testing.T, body []byte) []container.StatsResponse {
	t.Helper()
	var out []container.StatsResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var st container.StatsResponse
		if err := dec.Decode(&st); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("decode stats %s: %v", body, err)
		}
		out = append(out, st)
	}
}

func TestContainerStatsNoStream(t *testing.T) {
	tests := []struct {
		name, path string
		samples    int  // Stats calls the request should make
		pre        bool // whether precpu_stats and preread are filled
	}{
		{"two samples a second apart", "/v1.50/containers/web.1.task1/stats?stream=0", 2, true},
		{"one-shot", "/v1.50/containers/web.1.task1/stats?stream=false&one-shot=1", 1, false},
		{"one-shot ignored before 1.41", "/v1.40/containers/web.1.task1/stats?stream=0&one-shot=1", 2, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct, _, api := ctrFixture(t)
			resp, body := api.call(t, "GET", tc.path, nil, nil)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("stats: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			list := decodeStats(t, body)
			if len(list) != 1 || ct.statsCalls != tc.samples {
				t.Fatalf("got %d objects after %d samples, want 1 after %d", len(list), ct.statsCalls, tc.samples)
			}
			st := list[0]
			if st.ID != strings.Repeat("a1", 32) || st.Name != "/web.1.task1" || st.MemoryStats.Limit != 64<<20 {
				t.Fatalf("stats = %+v", st)
			}
			gotPre := st.PreCPUStats.CPUUsage.TotalUsage == 5e8 && st.CPUStats.CPUUsage.TotalUsage == 1e9 &&
				st.Read.Sub(st.PreRead) >= 900*time.Millisecond && st.Read.Sub(st.PreRead) < 5*time.Second
			noPre := st.PreRead.IsZero() && st.PreCPUStats.CPUUsage.TotalUsage == 0
			if (tc.pre && !gotPre) || (!tc.pre && !noPre) {
				t.Fatalf("pre = %v %+v, read %v; want pre-sample %v", st.PreRead, st.PreCPUStats, st.Read, tc.pre)
			}
		})
	}
}

func TestContainerStatsNotRunningAndUnknown(t *testing.T) {
	ct, _, api := ctrFixture(t)
	want := `{"id":"` + strings.Repeat("b2", 32) + `","name":"/web.1.task0","os_type":"linux","read":"0001-01-01T00:00:00Z",`
	for _, path := range []string{"/containers/web.1.task0/stats?stream=0", "/containers/web.1.task0/stats"} {
		resp, body := api.call(t, "GET", path, nil, nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), want) || len(decodeStats(t, body)) != 1 {
			t.Fatalf("GET %s: %d %s; want one empty sample starting %s", path, resp.StatusCode, body, want)
		}
	}
	if ct.statsCalls != 0 {
		t.Fatalf("%d samples of an exited container", ct.statsCalls)
	}
	resp, body := api.call(t, "GET", "/containers/nope/stats?stream=0", nil, nil)
	if resp.StatusCode != 404 || strings.TrimSpace(string(body)) != `{"message":"No such container: nope"}` {
		t.Fatalf("stats of unknown: %d %s", resp.StatusCode, body)
	}
}

func TestContainerStatsStreamEndsWhenTheContainerStops(t *testing.T) {
	ct, _, api := ctrFixture(t)
	ct.mu.Lock()
	ct.stopAfterStats = 2
	ct.mu.Unlock()
	resp, body := api.call(t, "GET", "/v1.50/containers/probe/stats", nil, nil)
	list := decodeStats(t, body)
	if resp.StatusCode != 200 || len(list) != 3 {
		t.Fatalf("stream: %d, %d objects, want 2 samples and a last empty one: %s", resp.StatusCode, len(list), body)
	}
	if !list[0].PreRead.IsZero() || list[1].PreCPUStats.CPUUsage.TotalUsage != list[0].CPUStats.CPUUsage.TotalUsage ||
		!list[1].PreRead.Equal(list[0].Read) || list[1].CPUStats.CPUUsage.TotalUsage != 1e9 {
		t.Fatalf("samples do not chain: %+v", list[:2])
	}
	if list[2].CPUStats.CPUUsage.TotalUsage != 0 || list[2].Name != "/probe" {
		t.Fatalf("last object = %+v, want an empty sample of /probe", list[2])
	}
}

func TestDockerStatsNoStream(t *testing.T) {
	_, _, api := ctrFixture(t)
	out := api.mustDocker(t, "stats", "--no-stream", "--format",
		"{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.MemPerc}} {{.NetIO}} {{.BlockIO}} {{.PIDs}}", "web.1.task1")
	// CPU: 0.5 s of 1 s of host time on two CPUs; memory: 20 MiB less 4 MiB of inactive file cache.
	if want := "web.1.task1 100.00% 16MiB / 64MiB 25.00% 2.05kB / 4.1kB 4.1kB / 8.19kB 2\n"; out != want {
		t.Fatalf("docker stats printed %q, want %q", out, want)
	}
}

// flushRecorder is an http.ResponseWriter whose body can be read while the
// handler writes.
type flushRecorder struct {
	mu     sync.Mutex
	header http.Header
	body   bytes.Buffer
}

func (r *flushRecorder) Header() http.Header { return r.header }
func (r *flushRecorder) WriteHeader(int)     {}
func (r *flushRecorder) Flush()              {}

func (r *flushRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.body.Write(p)
}

func (r *flushRecorder) objects() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Count(r.body.String(), "\n")
}

func TestContainerStatsStreamStopsWhenTheClientGoesAway(t *testing.T) {
	ct, _, _ := ctrFixture(t)
	srv := New(Config{Swarm: newServiceFake(), Containers: ct, Version: "0.1.0-test", DataRoot: t.TempDir()})
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "/v1.50/containers/probe/stats?stream=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &flushRecorder{header: http.Header{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeHTTP(rec, req)
	}()
	deadline := time.After(10 * time.Second)
	for rec.objects() < 2 {
		select {
		case <-deadline:
			t.Fatalf("%d samples streamed in 10s", rec.objects())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stats stream still runs after the client went away")
	}
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.list[2].State != container.StateRunning || ct.statsCalls < 2 {
		t.Fatalf("state %s after %d samples", ct.list[2].State, ct.statsCalls)
	}
}
