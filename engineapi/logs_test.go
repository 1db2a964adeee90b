package engineapi

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster"
	ctr "github.com/shoal-project/shoal/runtime/container"
)

// frame is one decoded frame of a multiplexed stream.
type frame struct {
	stream byte
	data   string
}

// readFrames decodes a whole multiplexed stream.
func readFrames(t *testing.T, data []byte) []frame {
	t.Helper()
	var out []frame
	for len(data) > 0 {
		if len(data) < 8 {
			t.Fatalf("truncated frame header: %q", data)
		}
		n := int(binary.BigEndian.Uint32(data[4:8]))
		if data[1] != 0 || data[2] != 0 || data[3] != 0 || len(data) < 8+n {
			t.Fatalf("bad frame: %q", data)
		}
		out = append(out, frame{stream: data[0], data: string(data[8 : 8+n])})
		data = data[8+n:]
	}
	return out
}

// logFixture is a service "web" with two tasks that wrote three lines.
func logFixture(t *testing.T) (*svcFixture, swarm.Service, []swarm.Task) {
	t.Helper()
	fx := newSvcFixture(t)
	svc := createTestService(t, fx.sw, "web", 2, nil)
	tasks, _ := fx.sw.Tasks(t.Context())
	at := time.Date(2026, 10, 1, 12, 0, 1, 5000, time.UTC)
	fx.sw.addLog(tasks[0], "stdout", "hello from one\n", at)
	fx.sw.addLog(tasks[1], "stderr", "warning from two\n", at.Add(time.Second))
	fx.sw.addLog(tasks[0], "stdout", "bye from one\n", at.Add(2*time.Second))
	return fx, svc, tasks
}

func TestServiceLogsStream(t *testing.T) {
	fx, svc, tasks := logFixture(t)
	details := func(task swarm.Task) string {
		return fmt.Sprintf("com.docker.swarm.node.id=%s,com.docker.swarm.service.id=%s,com.docker.swarm.task.id=%s",
			task.NodeID, svc.ID, task.ID)
	}
	resp, body := fx.api.call(t, "GET", "/v1.50/services/web/logs?stdout=1&stderr=1&details=1&timestamps=1", nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != mediaTypeMultiplexedStream {
		t.Fatalf("status %d, content type %q, body %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	want := []frame{
		{1, "2026-10-01T12:00:01.000005000Z " + details(tasks[0]) + " hello from one\n"},
		{2, "2026-10-01T12:00:02.000005000Z " + details(tasks[1]) + " warning from two\n"},
		{1, "2026-10-01T12:00:03.000005000Z " + details(tasks[0]) + " bye from one\n"},
	}
	if got := readFrames(t, body); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("frames:\n%q\nwant\n%q", got, want)
	}

	// Only stderr, no decorations, the last line only.
	_, body = fx.api.call(t, "GET", "/services/"+svc.ID+"/logs?stderr=true&tail=1", nil, nil)
	if got := readFrames(t, body); fmt.Sprint(got) != fmt.Sprint([]frame{{2, "warning from two\n"}}) {
		t.Fatalf("stderr only: %q", got)
	}
	if fx.sw.lastLogOpts.Tail != 1 || fx.sw.lastLogOpts.Stdout || !fx.sw.lastLogOpts.Stderr {
		t.Errorf("log options reached the control plane as %+v", fx.sw.lastLogOpts)
	}

	// One task's logs.
	_, body = fx.api.call(t, "GET", "/tasks/"+tasks[1].ID+"/logs?stdout=1&stderr=1", nil, nil)
	if got := readFrames(t, body); fmt.Sprint(got) != fmt.Sprint([]frame{{2, "warning from two\n"}}) {
		t.Fatalf("task logs: %q", got)
	}

	for _, tc := range []struct{ path, status, msg string }{
		{"/services/web/logs", "400", "Bad parameters: you must choose at least one stream"},
		{"/services/web/logs?stdout=1&tail=many", "400", `tail value must be a positive integer or \"all\"`},
		{"/services/web/logs?stdout=1&since=yesterday", "400", `invalid value for \"since\"`},
		{"/services/nope/logs?stdout=1", "404", "service nope not found"},
		{"/tasks/nope/logs?stdout=1", "404", "task nope not found"},
	} {
		resp, body := fx.api.call(t, "GET", tc.path, nil, nil)
		if fmt.Sprint(resp.StatusCode) != tc.status || !strings.Contains(string(body), tc.msg) {
			t.Errorf("GET %s: %d %s; want %s %s", tc.path, resp.StatusCode, body, tc.status, tc.msg)
		}
	}
}

func TestServiceLogsFollowSendsHeaderAtOnce(t *testing.T) {
	fx := newSvcFixture(t)
	createTestService(t, fx.sw, "quiet", 1, nil)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://shoal/services/quiet/logs?stdout=1&follow=1", nil)
	resp, err := fx.api.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The service has no output: the header must still arrive while following.
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != mediaTypeMultiplexedStream {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestServiceLogsTTYIsRaw(t *testing.T) {
	fx := newSvcFixture(t)
	one := uint64(1)
	_, err := fx.sw.CreateService(t.Context(), swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "term"},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox", TTY: true}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	tasks, _ := fx.sw.Tasks(t.Context())
	fx.sw.addLog(tasks[0], "stdout", "prompt$ \n", time.Now())
	resp, body := fx.api.call(t, "GET", "/services/term/logs?stdout=1", nil, nil)
	if resp.Header.Get("Content-Type") != mediaTypeRawStream || string(body) != "prompt$ \n" {
		t.Fatalf("tty logs: %q %q", resp.Header.Get("Content-Type"), body)
	}
}

func TestServiceLogsWithDockerCLI(t *testing.T) {
	fx, _, tasks := logFixture(t)
	out, errOut, err := fx.api.docker(t, "", "service", "logs", "web")
	if err != nil {
		t.Fatalf("docker service logs: %v\n%s", err, errOut)
	}
	// The CLI names each line's task and node from the details.
	for _, want := range []string{
		`(?m)^web\.1\.` + tasks[0].ID[:12] + `@edge1\s+\| hello from one$`,
		`(?m)^web\.1\.` + tasks[0].ID[:12] + `@edge1\s+\| bye from one$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Fatalf("docker service logs stdout lacks %s:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^web\.2\.` + tasks[1].ID[:12] + `@edge1\s+\| warning from two$`).MatchString(errOut) {
		t.Fatalf("docker service logs stderr:\n%s", errOut)
	}

	out = fx.api.mustDocker(t, "service", "logs", "--raw", "--timestamps", "--no-task-ids", tasks[0].ID)
	if out != "2026-10-01T12:00:01.000005000Z hello from one\n2026-10-01T12:00:03.000005000Z bye from one\n" {
		t.Fatalf("docker service logs --raw --timestamps <task>:\n%q", out)
	}
}

func TestContainerLogs(t *testing.T) {
	ct := newCtrFake(container.Summary{ID: strings.Repeat("c1", 32), Names: []string{"/web.1.abc"}, State: "running"},
		container.Summary{ID: strings.Repeat("c2", 32), Names: []string{"/term"}, State: "running"})
	at := time.Date(2026, 10, 2, 9, 30, 0, 0, time.UTC)
	ct.logs[strings.Repeat("c1", 32)] = []ctr.LogEntry{
		{Stream: "stdout", Time: at, Line: []byte("out line\n")},
		{Stream: "stderr", Time: at.Add(time.Millisecond), Line: []byte("err line\n")},
	}
	ct.tty[strings.Repeat("c2", 32)] = true
	ct.logs[strings.Repeat("c2", 32)] = []ctr.LogEntry{{Stream: "stdout", Time: at, Line: []byte("tty line\r\n")}}
	api := startSvcAPI(t, Config{Swarm: newServiceFake(), Containers: ct, Images: &imageFake{}})

	resp, body := api.call(t, "GET", "/containers/web.1.abc/logs?stdout=1&stderr=1&timestamps=1&tail=all&since=1790000000.5", nil, nil)
	want := []frame{{1, "2026-10-02T09:30:00.000000000Z out line\n"}, {2, "2026-10-02T09:30:00.001000000Z err line\n"}}
	if resp.StatusCode != 200 || fmt.Sprint(readFrames(t, body)) != fmt.Sprint(want) {
		t.Fatalf("container logs: %d %q", resp.StatusCode, body)
	}
	if got := ct.logOpts; got.Tail != -1 || !got.Since.Equal(time.Unix(1790000000, 500000000)) {
		t.Errorf("log options reached the runtime as %+v", got)
	}
	resp, body = api.call(t, "GET", "/containers/term/logs?stdout=1", nil, nil)
	if resp.Header.Get("Content-Type") != mediaTypeRawStream || string(body) != "tty line\r\n" {
		t.Fatalf("tty container logs: %q %q", resp.Header.Get("Content-Type"), body)
	}
	resp, body = api.call(t, "GET", "/containers/nope/logs?stdout=1", nil, nil)
	if resp.StatusCode != 404 || string(body) != "{\"message\":\"No such container: nope\"}" {
		t.Fatalf("missing container logs: %d %s", resp.StatusCode, body)
	}

	out, errOut, err := api.docker(t, "", "logs", "-t", "web.1.abc")
	if err != nil || out != "2026-10-02T09:30:00.000000000Z out line\n" || errOut != "2026-10-02T09:30:00.001000000Z err line\n" {
		t.Fatalf("docker logs -t: err %v\nstdout %q\nstderr %q", err, out, errOut)
	}
}

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"", time.Time{}, false},
		{"0", time.Time{}, false},
		{"1700000000", time.Unix(1700000000, 0), false},
		{"1700000000.000000001", time.Unix(1700000000, 1), false},
		{"1700000000.5", time.Unix(1700000000, 500000000), false},
		{"2026-10-01T12:00:00Z", time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC), false},
		{"1700000000.", time.Time{}, true},
		{"1700000000.1234567890", time.Time{}, true},
		{"soon", time.Time{}, true},
	}
	for _, tc := range tests {
		got, err := parseTimestamp(tc.in)
		if (err != nil) != tc.bad || !got.Equal(tc.want) {
			t.Errorf("parseTimestamp(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// Large writes are split into frames that a demultiplexer reassembles.
func TestFrameWriterRoundTrip(t *testing.T) {
	pr, pw := io.Pipe()
	stdout, stderr, _ := stdWriters(pw, true, nil)
	go func() {
		_, _ = stdout.Write([]byte("a\n"))
		_, _ = stderr.Write([]byte(strings.Repeat("b", 70000)))
		_ = pw.Close()
	}()
	data, err := io.ReadAll(bufio.NewReader(pr))
	if err != nil {
		t.Fatal(err)
	}
	got := readFrames(t, data)
	if len(got) != 2 || got[0] != (frame{1, "a\n"}) || got[1].stream != 2 || len(got[1].data) != 70000 {
		t.Fatalf("frames: %d", len(got))
	}
}

// `service logs --details` prints the attributes the log driver's options
// asked for among the swarm context, sorted by key and escaped, as dockerd
// does: the CLI shows the ones that are not swarm context before the line.
func TestSwarmLogDetailsWithAttributes(t *testing.T) {
	m := cluster.LogMessage{NodeID: "n1", ServiceID: "s1", TaskID: "t1", Attrs: map[string]string{"asdf": "test1", "z key": "a,b"}}
	want := "asdf=test1,com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1,z+key=a%2Cb"
	if got := swarmLogDetails(m); got != want {
		t.Fatalf("details %q, want %q", got, want)
	}
}
