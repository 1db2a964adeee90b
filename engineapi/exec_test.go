package engineapi

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func TestExecWithDockerCLI(t *testing.T) {
	ct, _, api := ctrFixture(t)
	if out := api.mustDocker(t, "exec", "web.1.task1", "hostname"); out != "web-host\n" {
		t.Fatalf("docker exec hostname: %q", out)
	}
	out, errOut, err := api.docker(t, "hi\nthere\n", "exec", "-i", "web.1.task1", "cat")
	if err != nil || out != "hi\nthere\n" {
		t.Fatalf("echo hi | docker exec -i cat: err %v, stdout %q, stderr %q", err, out, errOut)
	}
	out, errOut, err = api.docker(t, "", "exec", "-e", "A=1", "-w", "/tmp", "-u", "nobody", "probe", "fail")
	var exitErr *exec.ExitError
	if !asExitError(err, &exitErr) || exitErr.ExitCode() != 3 || out != "partial output\n" || errOut != "something broke\n" {
		t.Fatalf("docker exec fail: err %v, stdout %q, stderr %q", err, out, errOut)
	}
	last := ct.execs[len(ct.execs)-1]
	if strings.Join(last.Env, ",") != "A=1" || last.WorkingDir != "/tmp" || last.User != "nobody" || last.Console != nil {
		t.Fatalf("exec config reached the runtime as %+v", last)
	}
	out, _, err = api.docker(t, "", "exec", "probe", "nosuch")
	if !asExitError(err, &exitErr) || exitErr.ExitCode() != 126 || !strings.Contains(out, `exec: "nosuch": executable file not found in $PATH`) {
		t.Fatalf("docker exec nosuch: err %v, stdout %q", err, out)
	}
	_, errOut, err = api.docker(t, "", "exec", "web.1.task0", "hostname")
	if err == nil || !strings.Contains(errOut, "container "+strings.Repeat("b2", 32)+" is not running") {
		t.Fatalf("exec in exited container: err %v, stderr %q", err, errOut)
	}
	api.mustDocker(t, "exec", "-d", "probe", "sleep")
}

func asExitError(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*target = e
	return ok
}

// TestExecStartProtocol drives the exec endpoints by hand: create, start with an
// upgrade on a raw connection, stdin through the hijacked connection, then inspect.
func TestExecStartProtocol(t *testing.T) {
	_, _, api := ctrFixture(t)
	resp, body := api.call(t, "POST", "/v1.50/containers/probe/exec",
		strings.NewReader(`{"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Cmd":["cat"]}`),
		map[string]string{"Content-Type": "application/json"})
	var created container.ExecCreateResponse
	if resp.StatusCode != 201 || json.Unmarshal(body, &created) != nil || len(created.ID) != 64 {
		t.Fatalf("exec create: %d %s", resp.StatusCode, body)
	}

	conn, err := net.Dial("unix", api.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	start := `{"Detach":false,"Tty":false}`
	_, err = io.WriteString(conn, "POST /v1.50/exec/"+created.ID+"/start HTTP/1.1\r\nHost: shoal\r\nContent-Type: application/json\r\n"+
		"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: "+itoa(uint64(len(start)))+"\r\n\r\n"+start+"line one\n")
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	hresp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hresp.StatusCode != 101 || hresp.Header.Get("Content-Type") != mediaTypeMultiplexedStream || hresp.Header.Get("Upgrade") != "tcp" {
		t.Fatalf("exec start answered %s %v", hresp.Status, hresp.Header)
	}
	if info := execInfo(t, api, created.ID); !info.Running || info.ExitCode != nil {
		t.Fatalf("while running: %+v", info)
	}
	_, _ = io.WriteString(conn, "line two\n")
	_ = conn.(*net.UnixConn).CloseWrite()
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	frames := readFrames(t, rest)
	var got strings.Builder
	for _, f := range frames {
		if f.stream != 1 {
			t.Fatalf("frame on stream %d: %q", f.stream, f.data)
		}
		got.WriteString(f.data)
	}
	if got.String() != "line one\nline two\n" {
		t.Fatalf("exec output %q", got.String())
	}
	info := execInfo(t, api, created.ID)
	if info.Running || info.ExitCode == nil || *info.ExitCode != 0 || info.ProcessConfig.Entrypoint != "cat" || !info.OpenStdin ||
		info.ContainerID != strings.Repeat("c3", 32) {
		t.Fatalf("after exit: %+v", info)
	}

	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/exec/" + created.ID + "/start", `{"message":"exec command ` + created.ID + ` has already run"}`},
		{"GET", "/exec/nope/json", `{"message":"No such exec instance: nope"}`},
		{"POST", "/exec/" + created.ID + "/resize?h=x&w=80", `{"message":"invalid resize h: \"x\""}`},
		{"POST", "/containers/probe/exec", `{"message":"No exec command specified"}`},
	} {
		_, body := api.call(t, tc.method, tc.path, strings.NewReader(`{"Detach":false}`), map[string]string{"Content-Type": "application/json"})
		if strings.TrimSpace(string(body)) != tc.body {
			t.Errorf("%s %s: %s; want %s", tc.method, tc.path, body, tc.body)
		}
	}
	if resp, _ := api.call(t, "POST", "/exec/"+created.ID+"/resize?h=24&w=80", nil, nil); resp.StatusCode != 200 {
		t.Errorf("resize: %d", resp.StatusCode)
	}
}

func execInfo(t *testing.T, api *svcAPI, id string) container.ExecInspectResponse {
	t.Helper()
	_, body := api.call(t, "GET", "/exec/"+id+"/json", nil, nil)
	var info container.ExecInspectResponse
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatalf("exec inspect %s: %v", body, err)
	}
	return info
}
