package engineapi

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/moby/moby/api/types/container"

	ctr "github.com/shoal-project/shoal/runtime/container"
)

// errTasksOnly answers the container endpoints shoal does not offer: containers
// exist only as swarm tasks, made and removed by the orchestrator.
var errTasksOnly = &apiError{status: http.StatusNotImplemented,
	msg: "shoal runs containers only as swarm tasks: use docker service create"}

// registerContainerRoutes serves the read and debug side of /containers (list,
// inspect, logs, stop, kill, exec) and refuses creating containers by hand.
func (s *Server) registerContainerRoutes(r gin.IRouter) {
	r.GET("/containers/json", s.listContainers)
	r.GET("/containers/:id/json", s.inspectContainer)
	r.GET("/containers/:id/logs", s.containerLogs)
	r.GET("/containers/:id/top", s.containerTop)
	r.GET("/containers/:id/stats", s.containerStats)
	r.POST("/containers/:id/stop", s.stopContainer)
	r.POST("/containers/:id/kill", s.killContainer)
	r.POST("/containers/:id/exec", s.createExec)
	s.registerArchiveRoutes(r)
	tasksOnly := func(c *gin.Context) { writeError(c, errTasksOnly) }
	r.POST("/containers/create", tasksOnly)
	r.POST("/containers/:id/start", tasksOnly)
	r.POST("/containers/:id/restart", tasksOnly)
	r.DELETE("/containers/:id", tasksOnly)
	r.POST("/exec/:id/start", s.startExec)
	r.POST("/exec/:id/resize", s.resizeExec)
	r.GET("/exec/:id/json", s.inspectExec)
}

// containerStates are the values of the "status" filter.
var containerStates = []string{"created", "restarting", "running", "removing", "paused", "exited", "dead"}

// containerHealths are the values of the "health" filter.
var containerHealths = []string{"starting", "healthy", "unhealthy", "none"}

func (s *Server) listContainers(c *gin.Context) {
	ctx := c.Request.Context()
	f, err := parseFilters(c.Query("filters"))
	if err != nil {
		writeError(c, err)
		return
	}
	q, err := s.newContainerQuery(ctx, f)
	if err != nil {
		writeError(c, err)
		return
	}
	limit := 0
	if v := c.Query("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil {
			writeError(c, badRequest(fmt.Sprintf("invalid limit %q", v)))
			return
		}
	}
	all := queryFlag(c, "all") || limit > 0 || f.has("status")
	list, err := s.cfg.Containers.List(ctx, true)
	if err != nil {
		writeError(c, err)
		return
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].Created > list[j].Created })
	out := make([]container.Summary, 0, len(list))
	for _, ct := range list {
		if !all && ct.State != container.StateRunning && ct.State != container.StatePaused {
			continue
		}
		if !q.matches(ct) {
			continue
		}
		out = append(out, ct)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	respondJSON(c, http.StatusOK, out)
}

// containerQuery is a parsed `docker ps` filter.
type containerQuery struct {
	f        filters
	exited   []int
	isTask   *bool
	ancestor map[string]bool // image IDs; nil when not filtering
	before   *container.Summary
	since    *container.Summary
}

// newContainerQuery validates f and resolves the values that name other objects.
func (s *Server) newContainerQuery(ctx context.Context, f filters) (containerQuery, error) {
	q := containerQuery{f: f}
	if err := f.validate("ancestor", "before", "exited", "health", "id", "is-task", "label",
		"name", "network", "since", "status"); err != nil {
		return q, err
	}
	for _, v := range f["exited"] {
		code, err := strconv.Atoi(v)
		if err != nil {
			return q, badRequest(fmt.Sprintf("invalid filter 'exited=%s'", v))
		}
		q.exited = append(q.exited, code)
	}
	for _, v := range f["status"] {
		if !contains(containerStates, v) {
			return q, badRequest("Unrecognised filter value for status: " + v)
		}
	}
	for _, v := range f["health"] {
		if !contains(containerHealths, v) {
			return q, badRequest("Unrecognised filter value for health: " + v)
		}
	}
	if vs := f["is-task"]; len(vs) > 0 {
		if len(vs) != 1 || (vs[0] != "true" && vs[0] != "false") {
			return q, badRequest(fmt.Sprintf("Invalid filter 'is-task=%s'", strings.Join(vs, ",")))
		}
		want := vs[0] == "true"
		q.isTask = &want
	}
	if f.has("ancestor") {
		q.ancestor = map[string]bool{}
		for _, v := range f["ancestor"] {
			if s.cfg.Images == nil {
				break
			}
			if im, err := s.cfg.Images.Get(ctx, v); err == nil {
				q.ancestor[im.ID] = true
			}
		}
	}
	for _, pos := range []struct {
		key string
		dst **container.Summary
	}{{"before", &q.before}, {"since", &q.since}} {
		for _, v := range f[pos.key] {
			ins, err := s.cfg.Containers.Inspect(ctx, v)
			if err != nil {
				return q, err
			}
			created, _ := time.Parse(time.RFC3339Nano, ins.Created)
			*pos.dst = &container.Summary{ID: ins.ID, Created: created.Unix()}
		}
	}
	return q, nil
}

// matches reports whether ct passes every filter of q, with dockerd's semantics: id
// and name are regular expressions (a plain string matches as a substring), labels
// "key" or "key=value", is-task selects swarm task containers.
func (q containerQuery) matches(ct container.Summary) bool {
	if !matchPattern(q.f["id"], ct.ID) || !matchAnyName(q.f["name"], ct.Names) {
		return false
	}
	if !q.f.matchLabels("label", ct.Labels) || !q.f.match("status", string(ct.State)) {
		return false
	}
	if q.isTask != nil && *q.isTask != (ct.Labels["com.docker.swarm.task.id"] != "") {
		return false
	}
	if q.ancestor != nil && !q.ancestor[ct.ImageID] && !q.f.match("ancestor", ct.Image) {
		return false
	}
	if q.before != nil && (ct.ID == q.before.ID || ct.Created > q.before.Created) {
		return false
	}
	if q.since != nil && (ct.ID == q.since.ID || ct.Created < q.since.Created) {
		return false
	}
	if len(q.exited) > 0 {
		code, ok := exitCodeOf(ct)
		if !ok || !containsInt(q.exited, code) {
			return false
		}
	}
	if q.f.has("health") && !q.f.match("health", healthOf(ct)) {
		return false
	}
	return !q.f.has("network") || inNetwork(q.f["network"], ct)
}

// matchPattern is moby's filter Match: no patterns, an exact value, or a regular
// expression found in s.
func matchPattern(patterns []string, s string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if p == s {
			return true
		}
		if re, err := regexp.Compile(p); err == nil && re.MatchString(s) {
			return true
		}
	}
	return false
}

func matchAnyName(patterns []string, names []string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, n := range names {
		if matchPattern(patterns, n) {
			return true
		}
	}
	return false
}

// exitCodeOf reads the exit code of an exited container from its status text,
// "Exited (137) 2 seconds ago".
func exitCodeOf(ct container.Summary) (int, bool) {
	if ct.State != container.StateExited {
		return 0, false
	}
	_, rest, ok := strings.Cut(ct.Status, "(")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, ")")
	if !ok {
		return 0, false
	}
	code, err := strconv.Atoi(num)
	return code, err == nil
}

func healthOf(ct container.Summary) string {
	if ct.Health == nil || ct.Health.Status == "" {
		return "none"
	}
	return string(ct.Health.Status)
}

func inNetwork(want []string, ct container.Summary) bool {
	if ct.NetworkSettings == nil {
		return false
	}
	for _, w := range want {
		if _, ok := ct.NetworkSettings.Networks[w]; ok {
			return true
		}
		for _, n := range ct.NetworkSettings.Networks {
			if n != nil && n.NetworkID != "" && strings.HasPrefix(n.NetworkID, w) {
				return true
			}
		}
	}
	return false
}

func contains(set []string, v string) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

func containsInt(set []int, v int) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

func (s *Server) inspectContainer(c *gin.Context) {
	ins, err := s.cfg.Containers.Inspect(c.Request.Context(), c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	if queryFlag(c, "size") {
		if rw, rootFs, err := s.cfg.Containers.Size(c.Request.Context(), ins.ID); err == nil {
			ins.SizeRw, ins.SizeRootFs = &rw, &rootFs
		}
	}
	respondJSON(c, http.StatusOK, ctr.WithLegacyNetworkFields(ins))
}

func (s *Server) containerLogs(c *gin.Context) {
	q, err := parseLogQuery(c)
	if err != nil {
		writeError(c, err)
		return
	}
	ctx := c.Request.Context()
	ins, err := s.cfg.Containers.Inspect(ctx, c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	entries, err := s.cfg.Containers.Logs(ctx, ins.ID, q.containerOptions())
	if err != nil {
		writeError(c, err)
		return
	}
	out := newLogStream(c, q, ins.Config != nil && ins.Config.Tty)
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-entries:
			if !ok {
				return
			}
			// A container has no swarm context: details=1 prints an empty
			// attribute list, as dockerd does without log-opt labels.
			if err := out.write(e.Stream, e.Time, "", e.Line); err != nil {
				return
			}
		}
	}
}

func (s *Server) stopContainer(c *gin.Context) {
	var timeout *time.Duration
	if v := c.Query("t"); v != "" {
		secs, err := strconv.Atoi(v)
		if err != nil {
			writeError(c, badRequest(fmt.Sprintf("invalid value for t: %q", v)))
			return
		}
		d := time.Duration(secs) * time.Second
		timeout = &d
	}
	if err := s.cfg.Containers.Stop(c.Request.Context(), c.Param("id"), timeout); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) killContainer(c *gin.Context) {
	sig := syscall.SIGKILL
	if v := c.Query("signal"); v != "" {
		var ok bool
		if sig, ok = parseSignal(v); !ok {
			writeError(c, badRequest("Invalid signal: "+v))
			return
		}
	}
	if err := s.cfg.Containers.Kill(c.Request.Context(), c.Param("id"), sig); err != nil {
		if statusOf(err) == http.StatusNotFound {
			// dockerd names the operation before the lookup's text.
			err = notFoundError(fmt.Sprintf("Cannot kill container: %s: %v", c.Param("id"), err))
		}
		writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// signalNumbers are the signals `docker kill --signal` may name.
var signalNumbers = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "BUS": syscall.SIGBUS, "CHLD": syscall.SIGCHLD,
	"CONT": syscall.SIGCONT, "FPE": syscall.SIGFPE, "HUP": syscall.SIGHUP, "ILL": syscall.SIGILL,
	"INT": syscall.SIGINT, "IO": syscall.SIGIO, "IOT": syscall.SIGIOT, "KILL": syscall.SIGKILL,
	"PIPE": syscall.SIGPIPE, "PROF": syscall.SIGPROF, "PWR": syscall.SIGPWR, "QUIT": syscall.SIGQUIT,
	"SEGV": syscall.SIGSEGV, "STKFLT": syscall.SIGSTKFLT, "STOP": syscall.SIGSTOP, "SYS": syscall.SIGSYS,
	"TERM": syscall.SIGTERM, "TRAP": syscall.SIGTRAP, "TSTP": syscall.SIGTSTP, "TTIN": syscall.SIGTTIN,
	"TTOU": syscall.SIGTTOU, "URG": syscall.SIGURG, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2,
	"VTALRM": syscall.SIGVTALRM, "WINCH": syscall.SIGWINCH, "XCPU": syscall.SIGXCPU, "XFSZ": syscall.SIGXFSZ,
}

// parseSignal reads a signal as docker does: a number, or a name with or without
// the SIG prefix, in any case.
func parseSignal(v string) (syscall.Signal, bool) {
	if n, err := strconv.Atoi(v); err == nil {
		return syscall.Signal(n), n > 0 && n < 65
	}
	sig, ok := signalNumbers[strings.TrimPrefix(strings.ToUpper(v), "SIG")]
	return sig, ok
}
