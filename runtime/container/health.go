package container

import (
	"bytes"
	"context"
	"sync"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
)

// Docker's health check defaults and limits.
const (
	defaultHealthInterval = 30 * time.Second
	defaultHealthTimeout  = 30 * time.Second
	defaultHealthRetries  = 3
	healthLogEntries      = 5
	healthOutputLimit     = 4096
)

func healthEnabled(h *ctypes.HealthConfig) bool {
	return h != nil && len(h.Test) > 0 && h.Test[0] != "NONE"
}

// startHealth runs the container's health check every interval until the run
// ends or the manager closes. One timer per container.
func (m *Manager) startHealth(c *container, run *running) {
	m.mu.Lock()
	hc := c.rec.Config.Healthcheck
	m.mu.Unlock()
	if !healthEnabled(hc) {
		return
	}
	interval := durationOr(hc.Interval, defaultHealthInterval)
	ctx := m.ctx
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTimer(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-run.done:
				return
			case <-t.C:
			}
			m.probe(ctx, c, hc)
			t.Reset(interval)
		}
	}()
}

// probe runs one health check and records its result.
func (m *Manager) probe(ctx context.Context, c *container, hc *ctypes.HealthConfig) {
	var cmd []string
	switch hc.Test[0] {
	case "CMD":
		cmd = hc.Test[1:]
	case "CMD-SHELL":
		cmd = append([]string{"/bin/sh", "-c"}, hc.Test[1:]...)
	default:
		cmd = hc.Test
	}
	timeout := durationOr(hc.Timeout, defaultHealthTimeout)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := &limitedBuffer{max: healthOutputLimit}
	res := &ctypes.HealthcheckResult{Start: now()}
	code, err := m.Exec(pctx, c.rec.ID, ExecConfig{Cmd: cmd}, nil, out, out)
	res.End = now()
	res.ExitCode = code
	res.Output = out.String()
	if err != nil {
		if ctx.Err() != nil {
			return // the manager is closing or the run ended
		}
		res.ExitCode = -1
		if pctx.Err() != nil {
			res.Output = "Health check exceeded timeout (" + timeout.String() + ")"
		} else {
			res.Output = err.Error()
		}
	}
	m.recordHealth(c, hc, res)
}

func (m *Manager) recordHealth(c *container, hc *ctypes.HealthConfig, res *ctypes.HealthcheckResult) {
	retries := hc.Retries
	if retries <= 0 {
		retries = defaultHealthRetries
	}
	m.mu.Lock()
	h := c.rec.State.Health
	if h == nil || c.run == nil {
		m.mu.Unlock()
		return
	}
	old := h.Status
	h.Log = append(h.Log, res)
	if len(h.Log) > healthLogEntries {
		h.Log = h.Log[len(h.Log)-healthLogEntries:]
	}
	inStartPeriod := res.Start.Sub(c.rec.State.StartedAt) < hc.StartPeriod
	if res.ExitCode == 0 {
		h.Status = ctypes.Healthy
		h.FailingStreak = 0
	} else if !inStartPeriod || h.Status != ctypes.Starting {
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = ctypes.Unhealthy
		}
	}
	status := h.Status
	if err := m.persistLocked(c); err != nil {
		m.log.Warn("persist health", "id", c.rec.ID, "err", err)
	}
	m.mu.Unlock()
	if status != old && status != ctypes.Starting {
		m.emit(c, "health_status: "+string(status), 0)
	}
}

func durationOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
