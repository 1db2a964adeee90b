package main

import (
	"slices"
	"strings"
	"testing"
)

func TestStackFlags(t *testing.T) {
	tests := []struct {
		args    string
		want    stackOptions
		wantErr string
	}{
		{"deploy -c a.yaml -c b.yaml --prune --dry-run shop",
			stackOptions{sub: "deploy", files: []string{"a.yaml", "b.yaml"}, name: "shop", prune: true, dryRun: true}, ""},
		{"config --format json -c a.yaml", stackOptions{sub: "config", files: []string{"a.yaml"}, format: "json"}, ""},
		{"rm shop", stackOptions{sub: "rm", name: "shop"}, ""},
		{"deploy -c a.yaml", stackOptions{}, "NAME is required"},
		{"rm a b", stackOptions{}, "unexpected arguments: b"},
		{"config --format toml", stackOptions{}, "invalid --format"},
		{"frobnicate", stackOptions{}, "unknown stack command"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			o, err := parseStackFlags(strings.Fields(tt.args))
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
			if o.sub != tt.want.sub || o.name != tt.want.name || !slices.Equal(o.files, tt.want.files) ||
				o.prune != tt.want.prune || o.dryRun != tt.want.dryRun || o.format != tt.want.format {
				t.Errorf("parse = %+v, want %+v", o, tt.want)
			}
		})
	}
}
