package container

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxLogLine is the longest record; longer lines are split, as Docker does.
const maxLogLine = 16 << 10

var streamNames = [2]string{"stdout", "stderr"}

// tailer turns the raw output files of every container into json-file log
// records. One inotify instance serves all containers.
type tailer struct {
	log    *slog.Logger
	inotif *os.File

	mu   sync.Mutex // guards byWD and every logState
	byWD map[int32]*logStream
}

// logState is the log bookkeeping of one container.
type logState struct {
	dir     string
	id      string
	raw     [2]*logStream
	out     *os.File // the json-file log, O_APPEND
	outSize int64    // size of out after the last commit
	offsets [2]int64 // raw bytes already turned into records
	notify  chan struct{}
	punch   bool // hole punching works on this filesystem
}

type logStream struct {
	st  *logState
	idx int
	f   *os.File // raw file, read-write for hole punching
	wd  int32
}

// jsonLogRecord is one line of Docker's json-file log format.
type jsonLogRecord struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

func newTailer(log *slog.Logger) (*tailer, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify init: %w", err)
	}
	return &tailer{log: log, inotif: os.NewFile(uintptr(fd), "inotify"), byWD: map[int32]*logStream{}}, nil
}

func logPath(dir, id string) string { return filepath.Join(dir, id+"-json.log") }

// add starts tailing c's raw output, first catching up with what was written
// while nobody was tailing.
func (t *tailer) add(c *container) error {
	st := &logState{dir: c.dir, id: filepath.Base(c.dir), notify: make(chan struct{}), punch: true}
	out, err := os.OpenFile(logPath(c.dir, st.id), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	st.out = out
	var committed int64
	st.offsets, committed = readOffsets(c.dir)
	if err := trimUncommitted(out, committed); err != nil {
		out.Close()
		return err
	}
	if fi, err := out.Stat(); err == nil {
		st.outSize = fi.Size()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c.log = st
	for i, name := range streamNames {
		path := filepath.Join(c.dir, name)
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return fmt.Errorf("open %s: %w", name, err)
		}
		wd, err := unix.InotifyAddWatch(int(t.inotif.Fd()), path, unix.IN_MODIFY)
		if err != nil {
			f.Close()
			return fmt.Errorf("watch %s: %w", path, err)
		}
		s := &logStream{st: st, idx: i, f: f, wd: int32(wd)}
		st.raw[i] = s
		t.byWD[s.wd] = s
	}
	t.processLocked(st, false)
	return nil
}

// remove stops tailing c and closes its files.
func (t *tailer) remove(c *container) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := c.log
	if st == nil {
		return
	}
	for _, s := range st.raw {
		if s == nil {
			continue
		}
		_, _ = unix.InotifyRmWatch(int(t.inotif.Fd()), uint32(s.wd))
		delete(t.byWD, s.wd)
		s.f.Close()
	}
	st.out.Close()
	close(st.notify)
	st.notify = nil
	c.log = nil
}

// drain logs everything c wrote, including a last line without newline.
func (t *tailer) drain(c *container) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.log != nil {
		t.processLocked(c.log, true)
	}
}

// notify wakes the followers of c's log.
func (t *tailer) notify(c *container) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := c.log; st != nil && st.notify != nil {
		close(st.notify)
		st.notify = make(chan struct{})
	}
}

// watchLog returns the channel closed at c's next log change (nil if c's log is gone).
func (t *tailer) watchLog(c *container) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.log == nil {
		return nil
	}
	return c.log.notify
}

func (t *tailer) close() error { return t.inotif.Close() }

// run reads inotify events until the tailer is closed.
func (t *tailer) run() {
	buf := make([]byte, 64<<10)
	for {
		n, err := t.inotif.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				t.log.Error("read inotify events", "err", err)
			}
			return
		}
		t.mu.Lock()
		changed := map[*logState]bool{}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if s, ok := t.byWD[ev.Wd]; ok {
				changed[s.st] = true
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		for st := range changed {
			t.processLocked(st, false)
		}
		t.mu.Unlock()
	}
}

// processLocked turns new raw output of st into records.
func (t *tailer) processLocked(st *logState, final bool) {
	for more := true; more; {
		more = false
		var out bytes.Buffer
		advanced := false
		for i, s := range st.raw {
			if s == nil {
				continue
			}
			consumed, full, err := appendRecords(&out, s.f, st.offsets[i], streamNames[i], final)
			if err != nil {
				t.log.Warn("read container output", "id", st.id, "stream", streamNames[i], "err", err)
			}
			if consumed > 0 {
				st.offsets[i] += consumed
				advanced = true
				more = more || full
			}
		}
		if !advanced || !t.commitLocked(st, out.Bytes()) {
			return
		}
	}
}

// commitLocked appends records to the log, then persists the offsets and frees
// the consumed raw bytes.
func (t *tailer) commitLocked(st *logState, records []byte) bool {
	n, err := st.out.Write(records)
	st.outSize += int64(n)
	if err != nil {
		t.log.Error("write container log", "id", st.id, "err", err)
		return false
	}
	if err := writeOffsets(st.dir, st.offsets, st.outSize); err != nil {
		t.log.Error("persist log offsets", "id", st.id, "err", err)
		return false
	}
	for i, s := range st.raw {
		if s != nil && st.punch {
			st.punch = punchHole(s.f, st.offsets[i])
		}
	}
	close(st.notify)
	st.notify = make(chan struct{})
	return true
}

// appendRecords encodes the complete lines of f from off into out and returns
// how many raw bytes they cover, and whether it stopped at the read limit. With
// final, a trailing partial line counts too.
func appendRecords(out *bytes.Buffer, f *os.File, off int64, stream string, final bool) (int64, bool, error) {
	const readLimit = 1 << 20
	data, err := io.ReadAll(io.NewSectionReader(f, off, readLimit))
	if err != nil {
		return 0, false, err
	}
	full := len(data) == readLimit
	final = final && !full
	ts := now()
	var consumed int64
	for len(data) > 0 {
		n := bytes.IndexByte(data, '\n') + 1
		switch {
		case n > 0 && n <= maxLogLine:
		case n == 0 && len(data) < maxLogLine && !final:
			return consumed, full, nil
		case n == 0 && len(data) < maxLogLine:
			n = len(data)
		default:
			n = maxLogLine
		}
		b, err := json.Marshal(jsonLogRecord{Log: string(data[:n]), Stream: stream, Time: ts})
		if err != nil {
			return consumed, full, err
		}
		out.Write(b)
		out.WriteByte('\n')
		data = data[n:]
		consumed += int64(n)
	}
	return consumed, full, nil
}

// punchHole frees the disk blocks of f before off; false if unsupported.
func punchHole(f *os.File, off int64) bool {
	const block = 4096
	end := off &^ (block - 1)
	if end == 0 {
		return true
	}
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, end)
	return !errors.Is(err, unix.EOPNOTSUPP)
}

// readOffsets returns the committed raw offsets of stdout and stderr and the
// json-file log size that goes with them (-1 if unknown). No file means no
// commit yet: nothing in the log counts.
func readOffsets(dir string) ([2]int64, int64) {
	var offs [2]int64
	b, err := os.ReadFile(filepath.Join(dir, "log.offset"))
	if errors.Is(err, os.ErrNotExist) {
		return offs, 0
	}
	if err != nil {
		return offs, -1
	}
	f := strings.Fields(string(b))
	for i := 0; i < 2 && i < len(f); i++ {
		offs[i], _ = strconv.ParseInt(f[i], 10, 64)
	}
	size := int64(-1)
	if len(f) > 2 {
		size, _ = strconv.ParseInt(f[2], 10, 64)
	}
	return offs, size
}

// trimUncommitted drops records appended after the last commit: a crash came
// before their offsets were persisted, so they will be produced again.
func trimUncommitted(out *os.File, committed int64) error {
	fi, err := out.Stat()
	if err != nil || committed < 0 || fi.Size() <= committed {
		return err
	}
	if err := out.Truncate(committed); err != nil {
		return fmt.Errorf("trim uncommitted log records: %w", err)
	}
	return nil
}

// writeOffsets commits the raw offsets and log size by rename; no fsync: it
// only has to survive a daemon crash.
func writeOffsets(dir string, offs [2]int64, logSize int64) error {
	path := filepath.Join(dir, "log.offset")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d %d %d\n", offs[0], offs[1], logSize)), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
