package daemonconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// options is a small stand-in for the daemon's flags: a repeated one with a plural
// key, a string, a bool and the flag that names the file.
type options struct {
	hosts, pools []string
	dataRoot     string
	verify       bool
	configFile   string
}

func flagSet(o *options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.StringSliceVarP(&o.hosts, "host", "H", nil, "")
	fs.StringArrayVar(&o.pools, "default-address-pool", nil, "")
	fs.StringVar(&o.dataRoot, "data-root", "/var/lib/shoal", "")
	fs.BoolVar(&o.verify, "tlsverify", false, "")
	fs.StringVar(&o.configFile, "config-file", "", "")
	return fs
}

var aliases = map[string]string{"hosts": "host", "default-address-pools": "default-address-pool"}

func TestMerge(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		file string
		want options
		err  string // "" = merged
	}{
		{name: "file only", file: `{"hosts": ["unix:///a.sock", "unix:///b.sock"], "data-root": "/srv/shoal", "tlsverify": true}`,
			want: options{hosts: []string{"unix:///a.sock", "unix:///b.sock"}, dataRoot: "/srv/shoal", verify: true}},
		{name: "flags and file on different keys", args: []string{"-H", "unix:///a.sock"}, file: `{"data-root": "/srv/shoal"}`,
			want: options{hosts: []string{"unix:///a.sock"}, dataRoot: "/srv/shoal"}},
		{name: "empty file", args: []string{"--data-root", "/x"}, file: ``, want: options{dataRoot: "/x"}},
		{name: "empty object", file: `{}`, want: options{dataRoot: "/var/lib/shoal"}},
		{name: "a single value for a list", file: `{"hosts": "unix:///a.sock"}`,
			want: options{hosts: []string{"unix:///a.sock"}, dataRoot: "/var/lib/shoal"}},
		{name: "objects become key=value", file: `{"default-address-pools": [{"base": "10.10.0.0/16", "size": 24}]}`,
			want: options{pools: []string{"base=10.10.0.0/16,size=24"}, dataRoot: "/var/lib/shoal"}},
		{name: "conflict on a list", args: []string{"-H", "unix:///run/shoal.sock"}, file: `{"hosts": ["tcp://127.0.0.1:2376"]}`,
			err: "the following directives are specified both as a flag and in the configuration file: hosts: (from flag: [unix:///run/shoal.sock], from file: [tcp://127.0.0.1:2376])"},
		{name: "two conflicts", args: []string{"--data-root", "/x", "--tlsverify"}, file: `{"tlsverify": false, "data-root": "/y"}`,
			err: "data-root: (from flag: /x, from file: /y), tlsverify: (from flag: true, from file: false)"},
		{name: "unknown keys", file: `{"debug": true, "storage-driver": "overlay2", "data-root": "/y"}`,
			err: "the following directives don't match any configuration option: debug, storage-driver"},
		{name: "the flag's own name is not a key for a plural", file: `{"host": ["unix:///a.sock"]}`,
			err: "don't match any configuration option: host"},
		{name: "the config file names no config file", file: `{"config-file": "/etc/other.json"}`,
			err: "don't match any configuration option: config-file"},
		{name: "a list for a single value", file: `{"data-root": ["/a", "/b"]}`, err: "data-root: want a single value, not a list"},
		{name: "a bad bool", file: `{"tlsverify": "maybe"}`, err: "tlsverify: "},
		{name: "null", file: `{"data-root": null}`, err: "data-root: null is not a value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got options
			fs := flagSet(&got)
			if err := fs.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			f, err := Parse("/etc/shoal/daemon.json", []byte(c.file))
			if err != nil {
				t.Fatal(err)
			}
			err = Merge(f, Keys(fs, aliases, "config-file"))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "unable to configure the daemon with file /etc/shoal/daemon.json: ") {
					t.Fatalf("err %v, want one naming the file and %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.hosts, " ") != strings.Join(c.want.hosts, " ") || strings.Join(got.pools, " ") != strings.Join(c.want.pools, " ") ||
				got.dataRoot != c.want.dataRoot || got.verify != c.want.verify {
				t.Fatalf("merged %+v, want %+v", got, c.want)
			}
		})
	}
}

// A key set from the file counts as given, so that the caller can tell a value
// from the file from a default.
func TestMergeMarksFlagsChanged(t *testing.T) {
	var o options
	fs := flagSet(&o)
	f, err := Parse("daemon.json", []byte(`{"data-root": "/srv"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := Merge(f, Keys(fs, aliases)); err != nil {
		t.Fatal(err)
	}
	if !fs.Changed("data-root") || fs.Changed("tlsverify") {
		t.Fatalf("changed: data-root %v, tlsverify %v", fs.Changed("data-root"), fs.Changed("tlsverify"))
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ name, text, want string }{
		{"missing comma", "{\n  \"data-root\": \"/x\"\n  \"hosts\": []\n}", "configuration file /etc/shoal/daemon.json: line 3, column 3: invalid character '\"' after object key:value pair"},
		{"not an object", `["data-root"]`, "configuration file /etc/shoal/daemon.json: want a JSON object"},
		{"truncated", `{"data-root": "/x"`, "configuration file /etc/shoal/daemon.json: "},
		{"a key twice", `{"data-root": "/x", "data-root": "/y"}`, `"data-root" is given twice`},
		{"two objects", `{} {}`, "line 1, column 4: invalid character '{' after top-level value"},
		{"a bad value", `{"labels": [}`, "line 1, column 13: invalid character '}' looking for beginning of value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("/etc/shoal/daemon.json", []byte(c.text))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "daemon.json")
	if f, err := Load(missing, false); f != nil || err != nil {
		t.Fatalf("a missing default file: %v, %v; want nothing", f, err)
	}
	if _, err := Load(missing, true); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("a missing file that was named: %v, want an error naming it", err)
	}
	if err := os.WriteFile(missing, []byte(`{"data-root": "/srv"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(missing, true)
	if err != nil || string(f.Values["data-root"]) != `"/srv"` || f.Path != missing {
		t.Fatalf("Load: %+v, %v", f, err)
	}
}
