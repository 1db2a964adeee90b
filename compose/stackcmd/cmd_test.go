package stackcmd

import (
	"slices"
	"strings"
	"testing"
)

func TestStackFlags(t *testing.T) {
	tests := []struct {
		args    string
		want    Options
		wantErr string
	}{
		{"deploy -c a.yaml -c b.yaml --prune --dry-run shop",
			Options{Sub: "deploy", files: []string{"a.yaml", "b.yaml"}, name: "shop", prune: true, dryRun: true}, ""},
		{"config --format json -c a.yaml", Options{Sub: "config", files: []string{"a.yaml"}, format: "json"}, ""},
		{"rm shop", Options{Sub: "rm", name: "shop"}, ""},
		{"deploy -c a.yaml", Options{}, "NAME is required"},
		{"rm a b", Options{}, "unexpected arguments: b"},
		{"config --format toml", Options{}, "invalid --format"},
		{"frobnicate", Options{}, "unknown stack command"},
		{"deploy --resolve-image sometimes -c a.yaml shop", Options{}, "invalid --resolve-image"},
		{"ls", Options{Sub: "ls"}, ""},
		{"ls shop", Options{}, "unexpected arguments: shop"},
		{"services -q shop", Options{Sub: "services", name: "shop"}, ""},
		{"ps --no-trunc shop", Options{Sub: "ps", name: "shop"}, ""},
		{"ps", Options{}, "NAME is required"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			o, err := Parse(strings.Fields(tt.args))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parse = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			o.waitTimeout = 0
			if o.Sub != tt.want.Sub || o.name != tt.want.name || !slices.Equal(o.files, tt.want.files) ||
				o.prune != tt.want.prune || o.dryRun != tt.want.dryRun || o.format != tt.want.format {
				t.Errorf("parse = %+v, want %+v", o, tt.want)
			}
		})
	}
}
