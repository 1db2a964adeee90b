package engineapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

// postCreate sends body to path through the whole API (routing, body bounds,
// decoding, the real create checks) and returns the answer.
func postCreate(srv *Server, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1.47"+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

// checkCreateAnswer fails unless the answer is a 201 with an ID or a 4xx with
// Docker's {"message": ...}.
func checkCreateAnswer(t *testing.T, rec *httptest.ResponseRecorder, body []byte) {
	t.Helper()
	var answer struct{ ID, Message string }
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
		t.Fatalf("body %q: answer %d %q is not JSON", body, rec.Code, rec.Body.String())
	}
	switch {
	case rec.Code == http.StatusCreated && answer.ID != "":
	case rec.Code >= 400 && rec.Code < 500 && answer.Message != "":
	default:
		t.Fatalf("body %q: answer %d %q", body, rec.Code, rec.Body.String())
	}
}

// FuzzSecretCreate feeds arbitrary bodies to POST /secrets/create: each is
// stored (and valid) or refused with a 4xx, never a panic or a 5xx, and no
// answer, not even a list of every secret, shows a stored secret's data.
func FuzzSecretCreate(f *testing.F) {
	for _, seed := range []string{
		`{"Name":"db_pass","Data":"aHVudGVyMg=="}`,
		`{"Name":"db_pass","Labels":{"a":"b"},"Data":"aHVudGVyMg==","Templating":{"Name":"golang"}}`,
		`{"Name":"x","Data":""}`, `{"Name":"-x","Data":"eA=="}`, `{"Data":"eA=="}`,
		`{"Name":"v","Driver":{"Name":"vault"}}`, `{"Name":"t","Data":"eA==","Templating":{"Name":"jinja"}}`,
		`{"Name":"x","Data":"not base64"}`, `{"Name":1}`, `[]`, `null`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	fake := &secretsFake{}
	srv := New(Config{Swarm: newServiceFake(), Secrets: fake, Version: "fuzz"})
	f.Cleanup(srv.Close)
	f.Fuzz(func(t *testing.T, body []byte) {
		fake.reset()
		rec := postCreate(srv, "/secrets/create", body)
		checkCreateAnswer(t, rec, body)
		if rec.Code != http.StatusCreated {
			return
		}
		var spec swarm.SecretSpec // the first JSON value, as dockerd reads a body
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&spec); err != nil || len(spec.Data) == 0 {
			t.Fatalf("body %q was stored, but it decodes to %+v (%v)", body, spec, err)
		}
		list := httptest.NewRecorder()
		srv.ServeHTTP(list, httptest.NewRequest(http.MethodGet, "/secrets", nil))
		shown := list.Body.String()
		// Decoded, not searched as text: an ID can hold the data's base64 by
		// chance (the fake's IDs are mostly zeros, as was a fuzzed secret).
		var secrets []swarm.Secret
		if list.Code != http.StatusOK || strings.Contains(shown, `"Data"`) || json.Unmarshal(list.Body.Bytes(), &secrets) != nil {
			t.Fatalf("secret list: %d %s", list.Code, shown)
		}
		for _, s := range secrets {
			if len(s.Spec.Data) > 0 {
				t.Fatalf("secret list shows data: %s", shown)
			}
		}
	})
}

// FuzzConfigCreate is FuzzSecretCreate for POST /configs/create; a stored
// config reads back with the data it was created with.
func FuzzConfigCreate(f *testing.F) {
	for _, seed := range []string{
		`{"Name":"app_conf","Data":"cG9ydD04MDgw"}`,
		`{"Name":"tmpl","Data":"e3suU2VydmljZS5OYW1lfX0=","Templating":{"Name":"golang"}}`,
		`{"Name":"x"}`, `{"Name":"a.b-c_d","Labels":{"":""},"Data":"eA=="}`, `{"Name":"x","Data":"eA==","Templating":{}}`,
		`{"Name":"x","Data":"eA==","Extra":[1,2]}`, `{}`, `"str"`, `{"Name":"x","Data":"eA=="} trailing`,
	} {
		f.Add([]byte(seed))
	}
	fake := &secretsFake{}
	srv := New(Config{Swarm: newServiceFake(), Secrets: fake, Version: "fuzz"})
	f.Cleanup(srv.Close)
	f.Fuzz(func(t *testing.T, body []byte) {
		fake.reset()
		rec := postCreate(srv, "/configs/create", body)
		checkCreateAnswer(t, rec, body)
		if rec.Code != http.StatusCreated {
			return
		}
		var created struct{ ID string }
		_ = json.Unmarshal(rec.Body.Bytes(), &created)
		got := httptest.NewRecorder()
		srv.ServeHTTP(got, httptest.NewRequest(http.MethodGet, "/configs/"+created.ID, nil))
		var cfg swarm.Config
		if got.Code != http.StatusOK || json.Unmarshal(got.Body.Bytes(), &cfg) != nil || len(cfg.Spec.Data) == 0 {
			t.Fatalf("config %s reads back as %d %s", created.ID, got.Code, got.Body.String())
		}
	})
}
