package engineapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/moby/moby/api/types/events"
)

// Media types of the events stream. Before API 1.52 Docker labelled the stream
// application/json although it is one JSON object per line.
const (
	mediaJSON         = "application/json"
	mediaJSONLines    = "application/jsonl"
	mediaNDJSON       = "application/x-ndjson"
	mediaJSONSequence = "application/json-seq"
)

// streamEvents answers GET /events: the recorded events in the since/until window,
// then (unless until is past) every new matching event as it happens, one JSON object
// per line, flushed one by one.
func (s *Server) streamEvents(c *gin.Context) {
	q := c.Request.URL.Query()
	now := time.Now()
	since, err := parseEventTime(q.Get("since"), now)
	if err != nil {
		writeError(c, badRequest(fmt.Sprintf("invalid value for 'since': %v", err)))
		return
	}
	until, err := parseEventTime(q.Get("until"), now)
	if err != nil {
		writeError(c, badRequest(fmt.Sprintf("invalid value for 'until': %v", err)))
		return
	}
	if !until.IsZero() && until.Before(since) {
		writeError(c, badRequest(fmt.Sprintf("`since` time (%s) cannot be after `until` time (%s)", q.Get("since"), q.Get("until"))))
		return
	}
	f, err := parseFilters(q.Get("filters"))
	if err != nil {
		writeError(c, err)
		return
	}
	match := eventFilter(f).include
	legacy := versionLess(requestVersion(c), "1.52")

	past, live, cancel := s.events.subscribe(since, until, match)
	defer cancel()

	contentType := eventContentType(c.GetHeader("Accept"), legacy)
	c.Header("Content-Type", contentType)
	c.Status(http.StatusOK)
	c.Writer.WriteHeaderNow()
	c.Writer.Flush()

	enc := eventEncoder{w: c.Writer, seq: contentType == mediaJSONSequence, legacy: legacy}
	for _, ev := range past {
		if err := enc.encode(ev); err != nil {
			return
		}
	}
	c.Writer.Flush()
	if !until.IsZero() && !until.After(now) {
		return
	}
	var deadline <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(until.Sub(now))
		defer t.Stop()
		deadline = t.C
	}
	ctx := c.Request.Context()
	for {
		select {
		case ev, ok := <-live:
			if !ok {
				return
			}
			if err := enc.encode(ev); err != nil {
				return
			}
			c.Writer.Flush()
		case <-deadline:
			return
		case <-ctx.Done():
			return
		}
	}
}

// eventContentType picks the stream's media type from the client's Accept header.
func eventContentType(accept string, legacy bool) string {
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		switch mt = strings.TrimSpace(mt); mt {
		case mediaJSONLines, mediaNDJSON, mediaJSONSequence:
			return mt
		}
	}
	if legacy {
		return mediaJSON
	}
	return mediaJSONLines
}

// eventEncoder writes events in the stream format the client asked for.
type eventEncoder struct {
	w      io.Writer
	seq    bool // RFC 7464 record separators
	legacy bool // the status/id/from fields clients before API 1.52 read
}

// legacyContainerEvent is a container or image event with the fields Docker kept for
// old clients (docker CLI before 25 fails without them).
type legacyContainerEvent struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
	events.Message
}

func (e eventEncoder) encode(ev events.Message) error {
	var v any = ev
	if e.legacy && (ev.Type == events.ContainerEventType || ev.Type == events.ImageEventType) {
		l := legacyContainerEvent{Status: string(ev.Action), ID: ev.Actor.ID, Message: ev}
		if ev.Type == events.ContainerEventType {
			l.From = ev.Actor.Attributes["image"]
		}
		v = l
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	if e.seq {
		data = append([]byte{0x1e}, data...)
	}
	data = append(data, '\n')
	if _, err := e.w.Write(data); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	return nil
}

// parseEventTime reads a since/until value: Unix seconds with optional fraction (what
// the docker CLI sends), a Go duration before now, or an RFC 3339 time. "" is zero.
func parseEventTime(value string, now time.Time) (time.Time, error) {
	if value == "" {
		return time.Time{}, nil
	}
	if t, err := parseUnixTime(value); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(value); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, value, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid timestamp %q: not Unix seconds, a duration or an RFC 3339 time", value)
}

// parseUnixTime parses "seconds[.nanoseconds]"; a short fraction is right-padded.
func parseUnixTime(value string) (time.Time, error) {
	secs, frac, hasFrac := strings.Cut(value, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid seconds %q: %w", secs, err)
	}
	var nsec int64
	if hasFrac && frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		for _, r := range frac {
			if r < '0' || r > '9' {
				return time.Time{}, fmt.Errorf("invalid nanoseconds %q", frac)
			}
		}
		nsec, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	return time.Unix(sec, nsec), nil
}

// eventFilter applies Docker's events filters: type, scope and event/action match
// exactly; object filters (container, service, node, ...) match the actor's ID or
// name by prefix and exclude events of other types; label matches attributes.
type eventFilter filters

func (f eventFilter) include(ev events.Message) bool {
	ff := filters(f)
	if !f.matchAction(ev.Action) || !ff.match("type", string(ev.Type)) || !ff.match("scope", ev.Scope) {
		return false
	}
	// Filters named after an object type match that object's ID or name.
	objectTypes := [...]events.Type{
		events.ContainerEventType, events.ServiceEventType, events.NodeEventType,
		events.NetworkEventType, events.SecretEventType, events.ConfigEventType,
		events.VolumeEventType, events.PluginEventType, events.DaemonEventType,
	}
	for _, t := range objectTypes {
		if !f.fuzzy(string(t), ev.Actor.ID) && !f.fuzzy(string(t), ev.Actor.Attributes["name"]) {
			return false
		}
	}
	return f.fuzzy("id", ev.Actor.ID) && f.matchImage(ev) && ff.matchLabels("label", ev.Actor.Attributes)
}

// matchAction checks event= (and its alias action=); health_status, exec_create and
// exec_start also match their "name: detail" forms.
func (f eventFilter) matchAction(action events.Action) bool {
	wants := append(append([]string(nil), f["event"]...), f["action"]...)
	if len(wants) == 0 {
		return true
	}
	a := string(action)
	for _, w := range wants {
		if a == w {
			return true
		}
		switch w {
		case "health_status", "exec_create", "exec_start":
			if strings.HasPrefix(a, w) {
				return true
			}
		}
	}
	return false
}

// fuzzy is true when key is not given, or one of its values equals or prefixes value.
func (f eventFilter) fuzzy(key, value string) bool {
	wants, ok := f[key]
	if !ok || len(wants) == 0 {
		return true
	}
	for _, w := range wants {
		if value == w || strings.HasPrefix(value, w) {
			return true
		}
	}
	return false
}

// matchImage checks image= against an image event's ID and name, or a container
// event's image, with or without its tag.
func (f eventFilter) matchImage(ev events.Message) bool {
	wants := f["image"]
	if len(wants) == 0 {
		return true
	}
	nameAttr := "image"
	if ev.Type == events.ImageEventType {
		nameAttr = "name"
	}
	name := ev.Actor.Attributes[nameAttr]
	for _, w := range wants {
		for _, have := range []string{ev.Actor.ID, name, stripImageTag(ev.Actor.ID), stripImageTag(name)} {
			if have != "" && have == w {
				return true
			}
		}
	}
	return false
}

// stripImageTag turns "docker.io/library/busybox:latest" into "busybox".
func stripImageTag(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	ref = strings.TrimPrefix(ref, "docker.io/")
	return strings.TrimPrefix(ref, "library/")
}
