package engineapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPayloadUpdateVersion: an update whose version is not a number is
// refused with moby's words for secrets and configs, which (unlike a
// service's or a node's) do not repeat the value or the parser's error.
func TestPayloadUpdateVersion(t *testing.T) {
	fake := &secretsFake{}
	srv := New(Config{Swarm: newServiceFake(), Secrets: fake, Version: "test"})
	t.Cleanup(srv.Close)
	if rec := postCreate(srv, "/secrets/create", []byte(`{"Name":"s","Data":"eA=="}`)); rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	for _, tc := range []struct{ path, want string }{
		{"/secrets/s/update?version=bogus", `{"message":"invalid secret version"}`},
		{"/secrets/s/update", `{"message":"invalid secret version"}`},
		{"/configs/c/update?version=-1", `{"message":"invalid config version"}`},
	} {
		req := httptest.NewRequest(http.MethodPost, "/v1.51"+tc.path, strings.NewReader(`{"Name":"s"}`))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest || strings.TrimSpace(rec.Body.String()) != tc.want {
			t.Errorf("POST %s: %d %s, want 400 %s", tc.path, rec.Code, rec.Body, tc.want)
		}
	}
}

// TestPayloadListFilters: secrets take the names filter (exact names), configs
// refuse it, as dockerd does.
func TestPayloadListFilters(t *testing.T) {
	fake := &secretsFake{}
	srv := New(Config{Swarm: newServiceFake(), Secrets: fake, Version: "test"})
	t.Cleanup(srv.Close)
	for _, path := range []string{"/secrets/create", "/configs/create"} {
		for _, name := range []string{"ab", "abc"} {
			if rec := postCreate(srv, path, []byte(`{"Name":"`+name+`","Data":"eA=="}`)); rec.Code != http.StatusCreated {
				t.Fatalf("create %s: %d %s", name, rec.Code, rec.Body)
			}
		}
	}
	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{`/secrets?filters={"names":["ab"]}`, 200, `"Name":"ab"`},
		{`/secrets?filters={"name":["ab"]}`, 200, `"Name":"abc"`},
		{`/configs?filters={"name":["ab"]}`, 200, `"Name":"abc"`},
		{`/configs?filters={"names":["ab"]}`, 400, `invalid filter 'names'`},
	} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1.51"+tc.path, nil))
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("GET %s: %d %s, want %d with %s", tc.path, rec.Code, rec.Body, tc.status, tc.want)
		}
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, `/v1.51/secrets?filters={"names":["ab"]}`, nil))
	if strings.Contains(rec.Body.String(), `"abc"`) {
		t.Errorf("names matched a longer name: %s", rec.Body)
	}
}
