package client

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

func TestFromEnvHosts(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := FromEnv(env(nil))
	if err != nil || c.Host != DefaultHost {
		t.Errorf("no DOCKER_HOST: %v, %v; want %s", c, err, DefaultHost)
	}
	if _, err := FromEnv(env(map[string]string{"DOCKER_HOST": "ssh://x"})); err == nil || !strings.Contains(err.Error(), "want unix:///path or tcp://host:port") {
		t.Errorf("ssh:// = %v", err)
	}
	if _, err := FromEnv(env(map[string]string{"DOCKER_HOST": "tcp://127.0.0.1:1", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": t.TempDir()})); err == nil || !strings.Contains(err.Error(), "read TLS CA") {
		t.Errorf("TLS without certificates = %v", err)
	}
}

// Calls carry the version prefix and filters; an error answer is a
// StatusError with the daemon's message.
func TestCallOverUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 2)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery
		if r.Method == "DELETE" {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"service x not found"}`))
			return
		}
		w.Write([]byte(`[{"ID":"s1","Spec":{"Name":"shop_web"}}]`))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	c, err := New("unix://"+sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	svcs, err := c.Services(context.Background(), Filters{"label": {"com.docker.stack.namespace=shop"}})
	if err != nil || len(svcs) != 1 || svcs[0].Spec.Name != "shop_web" {
		t.Fatalf("Services = %+v, %v", svcs, err)
	}
	if want := `GET /v1.51/services?filters=%7B%22label%22%3A%7B%22com.docker.stack.namespace%3Dshop%22%3Atrue%7D%7D`; <-seen != want {
		t.Errorf("request was not %q", want)
	}
	err = c.RemoveService(context.Background(), "x")
	if !IsNotFound(err) || err.Error() != "service x not found" {
		t.Errorf("RemoveService = %v, want the daemon's 404", err)
	}
}
