package container

import (
	"regexp"
	"strings"
)

// LogAttributes are the attributes a log driver's options ask to tag each log
// line of a container with, by dockerd's rules (`--log-opt labels=a,b`,
// `labels-regex=`, `env=A,B`, `env-regex=`): the named or matching container
// labels and environment variables, with their values. `logs --details`
// prints them. A regular expression that does not compile matches nothing.
func LogAttributes(opts, labels map[string]string, env []string) map[string]string {
	out := map[string]string{}
	for _, l := range splitList(opts["labels"]) {
		if v, ok := labels[l]; ok {
			out[l] = v
		}
	}
	if re := compileOpt(opts["labels-regex"]); re != nil {
		for k, v := range labels {
			if re.MatchString(k) {
				out[k] = v
			}
		}
	}
	vars := map[string]string{}
	for _, e := range env {
		if k, v, ok := strings.Cut(e, "="); ok {
			vars[k] = v
		}
	}
	for _, name := range splitList(opts["env"]) {
		if v, ok := vars[name]; ok {
			out[name] = v
		}
	}
	if re := compileOpt(opts["env-regex"]); re != nil {
		for k, v := range vars {
			if re.MatchString(k) {
				out[k] = v
			}
		}
	}
	return out
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func compileOpt(expr string) *regexp.Regexp {
	if expr == "" {
		return nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil
	}
	return re
}
