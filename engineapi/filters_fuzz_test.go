package engineapi

import (
	"errors"
	"testing"
)

// FuzzParseFilters feeds arbitrary filter parameters to the parser: it must answer
// with filters or a 400, never panic.
func FuzzParseFilters(f *testing.F) {
	for _, seed := range []string{``, `{}`, `{"name":{"web":true}}`, `{"name":["web"]}`, `{"label":{"a=b":true,"c":false}}`, `[`, `{"x":1}`, `null`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := parseFilters(raw)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != 400 {
				t.Fatalf("parseFilters(%q) error %v is not a 400", raw, err)
			}
			return
		}
		for k := range got {
			_ = got.match(k, "x")
			_ = got.matchPrefix(k, "x")
			_ = got.matchLabels(k, map[string]string{"a": "b"})
		}
	})
}
