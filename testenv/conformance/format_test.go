package conformance

import (
	"os"
	"strings"
	"testing"
)

func TestParseScenario(t *testing.T) {
	src := `# a comment
docker service create --name 'a b' "x \"y\"" busybox
api POST /services/create {"Name":"x"}

until '1/1' docker service ls \
  --format {{.Replicas}}
let C docker ps -q
docker secret create s - < $TMP/data
file data 'ab\n' 3
sorted docker stack deploy -c x.yml s
`
	sc, err := ParseScenario("s", src)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Steps) != 7 {
		t.Fatalf("got %d steps: %+v", len(sc.Steps), sc.Steps)
	}
	if got := strings.Join(sc.Steps[0].Args, "|"); got != `service|create|--name|a b|x "y"|busybox` {
		t.Errorf("docker args = %s", got)
	}
	if s := sc.Steps[1]; s.Kind != API || s.Method != "POST" || s.Path != "/services/create" || s.Body != `{"Name":"x"}` {
		t.Errorf("api step = %+v", s)
	}
	if s := sc.Steps[2]; s.Kind != Until || s.Want != "1/1" || strings.Join(s.Args, " ") != "service ls --format {{.Replicas}}" || s.Line != 5 {
		t.Errorf("until step = %+v", s)
	}
	if s := sc.Steps[3]; s.Kind != Let || s.Var != "C" {
		t.Errorf("let step = %+v", s)
	}
	if s := sc.Steps[4]; s.Kind != Docker || s.Stdin != "$TMP/data" || strings.Join(s.Args, " ") != "secret create s -" {
		t.Errorf("docker step with stdin = %+v", s)
	}
	if s := sc.Steps[5]; s.Kind != File || s.File != "data" || string(s.Data) != "ab\nab\nab\n" {
		t.Errorf("file step = %+v", s)
	}
	if s := sc.Steps[6]; s.Kind != Docker || !s.SortLines || strings.Join(s.Args, " ") != "stack deploy -c x.yml s" {
		t.Errorf("sorted step = %+v", s)
	}
	if got := sortLines("b\na\nc\n"); got != "a\nb\nc\n" {
		t.Errorf("sortLines = %q", got)
	}
	for _, bad := range []string{"rm -rf /", "api GET", "until x ls", "docker 'open", "file x", "file ../x y", "file x y -1", "sorted api GET /x"} {
		if _, err := ParseScenario("bad", bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestVariantMarker: a "[VARIANT]" marker keeps a step to one CLI variant;
// the 20.10 variant of a scenario carries its suffix and sends its API steps
// to API 1.41's paths, unless they name a version.
func TestVariantMarker(t *testing.T) {
	src := `docker service ls
[cli28] docker service ls --format '{{json .}}'
[cli20.10] @node2 docker node ls
api GET /services
api GET /v1.12/version
`
	sc, err := ParseScenario("03-x", src)
	if err != nil {
		t.Fatal(err)
	}
	if s := sc.Steps[1]; s.Variant != "cli28" || s.Kind != Docker || strings.Join(s.Args, " ") != "service ls --format {{json .}}" {
		t.Errorf("[cli28] step = %+v", s)
	}
	if s := sc.Steps[2]; s.Variant != "cli20.10" || s.Node != "node2" || strings.Join(s.Args, " ") != "node ls" {
		t.Errorf("[cli20.10] @node2 step = %+v", s)
	}
	texts := func(sc Scenario) (out []string) {
		for _, st := range sc.Steps {
			out = append(out, st.Text)
		}
		return out
	}
	v := sc.For(CLI28)
	if v.Name != "03-x" || v.CLI != "docker" || strings.Join(texts(v), ";") != "docker service ls;[cli28] docker service ls --format '{{json .}}';api GET /services;api GET /v1.12/version" || v.Steps[2].Path != "/services" {
		t.Errorf("cli28 variant = %s %v", v.Name, texts(v))
	}
	v = sc.For(CLI2010)
	if v.Name != "03-x@cli20.10" || v.CLI != "/usr/bin/docker" || strings.Join(texts(v), ";") != "docker service ls;[cli20.10] @node2 docker node ls;api GET /services;api GET /v1.12/version" {
		t.Errorf("cli20.10 variant = %s %v", v.Name, texts(v))
	}
	if p := v.Steps[2].Path + " " + v.Steps[3].Path; p != "/v1.41/services /v1.12/version" {
		t.Errorf("cli20.10 variant's API paths: %s", p)
	}
	for _, bad := range []string{"[cli19] docker ps", "[cli28]", "[cli28 docker ps", "[] docker ps"} {
		if _, err := ParseScenario("bad", bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestNormalise(t *testing.T) {
	n := Normaliser{Literal: map[string]string{"/tmp/x": "<dir>"}, Seen: map[string]bool{}}
	if got := n.Text("created qwertyuiopasq8vx1o2a8d0sn, listed as qwertyuiopas"); got != "created <swarm-id>, listed as <swarm-id12>" {
		t.Errorf("a seen ID's prefix: %q", got)
	}
	for in, want := range map[string]string{
		"web.1.q8vx1o2a8d0sn9yq8nshy1m7x Running 3 seconds ago":          "web.1.<swarm-id> Running <duration> ago",
		"0a1b2c3d4e5f  busybox   Up About a minute":                      "<id12>  busybox  Up <duration>",
		"created 2026-12-03T14:11:26.123456789Z at /tmp/x/data":          "created <time> at <dir>/data",
		"never 0001-01-01T00:00:00Z, size 4.26MB, on 10.0.0.5":           "never 0001-01-01T00:00:00Z, size <size>, on <ip>",
		"listening on 127.0.0.1:2377, token SWMTKN-1-abc-def9":           "listening on 127.0.0.1:2377, token <join-token>",
		"service name conflicts with an existing object":                 "service name conflicts with an existing object",
		"MacAddress 02:42:ac:11:00:02":                                   "MacAddress <mac>",
		"Running less than a second ago":                                 "Running <duration> ago",
		"fdclluzmuuwr  web.1  busybox":                                   "<swarm-id12>  web.1  busybox",
		"service ezyfeexjlugsgtgiyjimcjwwe, all letters":                 "service <swarm-id>, all letters",
		"ID G6C4:NVMF:E7UB:2KYX:YHXU:DHHA:WEJB:5ORZ:CE3I:UNIZ:CBQS:JMN4": "ID <engine-id>",
		" CPUs:\t\t\t16": " CPUs: <host>",
	} {
		if got := n.Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
	got := n.Output(`[{"ID":"q8vx1o2a8d0sn9yq8nshy1m7x","Version":{"Index":12},"Spec":{"Name":"<b>"}}]`)
	want := "[\n  {\n    \"ID\": \"<swarm-id>\",\n    \"Spec\": {\n      \"Name\": \"<b>\"\n    },\n    \"Version\": {\n      \"Index\": \"<index>\"\n    }\n  }\n]\n"
	if got != want {
		t.Errorf("Output = %q, want %q", got, want)
	}
	// A node's resources are the machine's; a service's, the user's.
	got = n.Output(`{"Description":{"Resources":{"NanoCPUs":2000000000}},"Spec":{"TaskTemplate":{"Resources":{"Limits":{"NanoCPUs":500000000}}}}}`)
	if !strings.Contains(got, `"NanoCPUs": "<host>"`) || !strings.Contains(got, `"NanoCPUs": 500000000`) {
		t.Errorf("Output = %s", got)
	}
}

func TestTranscriptRoundTrip(t *testing.T) {
	tr := Transcript{Scenario: "s", Results: []Result{
		{Step: "docker service ls", Kind: Docker, Code: 0, Out: "ID  NAME\n\n<id12>  web\n"},
		{Step: "docker service inspect nope", Kind: Docker, Code: 1, Out: "[]\n", Err: "Error: no such service: nope\n"},
		{Step: "api GET /services/nope", Kind: API, Code: 404, Out: "{\n  \"message\": \"x\"\n}\n"},
		{Step: "until 1/1 docker service ls", Kind: Until},
	}}
	back, err := ParseTranscript("s", tr.Format())
	if err != nil {
		t.Fatal(err)
	}
	if diffs := Compare(back, tr); len(diffs) != 0 {
		t.Errorf("round trip differs: %v", diffs)
	}
	if back.Results[3].Kind != Until || back.Results[2].Code != 404 || back.Results[1].Err != "Error: no such service: nope" {
		t.Errorf("parsed back: %+v", back.Results)
	}
}

func TestCompare(t *testing.T) {
	want := Transcript{Scenario: "s", Results: []Result{
		{Step: "api GET /x", Kind: API, Code: 200, Out: `{"A":1,"B":{"C":"d"},"L":[1,2]}`},
		{Step: "docker x", Kind: Docker, Code: 1, Err: "Error: no"},
	}}
	got := Transcript{Scenario: "s", Results: []Result{
		{Step: "api GET /x", Kind: API, Code: 200, Out: `{"A":1,"B":{"C":"e","E":true},"L":[1]}`},
		{Step: "docker x", Kind: Docker, Code: 0},
	}}
	var fields []string
	for _, d := range Compare(want, got) {
		fields = append(fields, d.Field)
	}
	if got, want := strings.Join(fields, " "), "body:.B.C body:.B.E body:.L.length exit stderr"; got != want {
		t.Errorf("differences in %s, want %s", got, want)
	}
}

func TestDeliberate(t *testing.T) {
	path := t.TempDir() + "/deliberate.txt"
	if err := os.WriteFile(path, []byte("# why\ns* | api GET /x* | body:.B.* | shoal says more\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := LoadDeliberate(path)
	if err != nil || len(list) != 1 {
		t.Fatalf("LoadDeliberate = %v, %v", list, err)
	}
	if !list[0].Matches(Difference{Scenario: "s1", Step: "api GET /x?y", Field: "body:.B.C"}) {
		t.Error("the entry does not match its difference")
	}
	if list[0].Matches(Difference{Scenario: "s1", Step: "api GET /x", Field: "body:.A"}) {
		t.Error("the entry matches another field")
	}
	if err := os.WriteFile(path, []byte("s | x | y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDeliberate(path); err == nil {
		t.Error("an entry without a reason was accepted")
	}
}

func TestExpandLongestName(t *testing.T) {
	step := Step{Kind: Docker, Args: []string{"exec", "$C2", "$C"}}
	for range 20 { // map order is random: one run could pass by luck
		got := expand(step, map[string]string{"C": "old", "C2": "new"})
		if strings.Join(got.Args, " ") != "exec new old" {
			t.Fatalf("expand = %q", got.Args)
		}
	}
}
