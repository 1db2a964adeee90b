package engineapi

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gin-gonic/gin"
)

// filters is the parsed `filters` query parameter: a map of filter names to the values
// asked for. Docker clients send either {"name":{"web":true}} or the legacy
// {"name":["web"]}.
type filters map[string][]string

// parseFilters decodes the filters query parameter; "" is no filters.
func parseFilters(raw string) (filters, error) {
	f := filters{}
	if raw == "" {
		return f, nil
	}
	var modern map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &modern); err == nil {
		for k, set := range modern {
			for v, on := range set {
				if on {
					f[k] = append(f[k], v)
				}
			}
		}
		return f, nil
	}
	var legacy map[string][]string
	if err := json.Unmarshal([]byte(raw), &legacy); err != nil {
		// moby 28's words for filters that are not JSON: it names nothing.
		return nil, badRequest("invalid filter")
	}
	for k, vs := range legacy {
		f[k] = append(f[k], vs...)
	}
	return f, nil
}

// validate refuses filter names not in allowed, as Docker does.
func (f filters) validate(allowed ...string) error {
	for k := range f {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			return badRequest(fmt.Sprintf("invalid filter '%s'", k))
		}
	}
	return nil
}

// has reports whether key was given.
func (f filters) has(key string) bool { return len(f[key]) > 0 }

// match reports whether value equals one of the values of key, or key was not given.
func (f filters) match(key, value string) bool {
	vs, ok := f[key]
	if !ok || len(vs) == 0 {
		return true
	}
	for _, v := range vs {
		if v == value {
			return true
		}
	}
	return false
}

// matchPrefix is match where a filter value may be a prefix of value (IDs).
func (f filters) matchPrefix(key, value string) bool {
	vs, ok := f[key]
	if !ok || len(vs) == 0 {
		return true
	}
	for _, v := range vs {
		if strings.HasPrefix(value, v) {
			return true
		}
	}
	return false
}

// matchLabels evaluates the "label" filter ("key" or "key=value", all must hold)
// against labels.
func (f filters) matchLabels(key string, labels map[string]string) bool {
	for _, want := range f[key] {
		k, v, withValue := strings.Cut(want, "=")
		got, ok := labels[k]
		if !ok || (withValue && got != v) {
			return false
		}
	}
	return true
}

// queryFilters parses the request's filters query and refuses a filter outside
// allowed; on error it has answered the request and ok is false.
func queryFilters(c *gin.Context, allowed ...string) (f filters, ok bool) {
	f, err := parseFilters(c.Query("filters"))
	if err == nil {
		err = f.validate(allowed...)
	}
	if err != nil {
		writeError(c, err)
		return nil, false
	}
	return f, true
}
