package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/utils"
	"golang.org/x/sys/unix"
)

// Console is the terminal of an exec that asked for one (docker exec -t). The
// caller creates it with the client's size and keeps it to resize the terminal
// while the process runs (POST /exec/{id}/resize).
type Console struct {
	mu     sync.Mutex
	master *os.File // the pseudo-terminal's master side, once the process has one
	size   unix.Winsize
}

// NewConsole returns a console of the given size (zero: the kernel's default).
func NewConsole(height, width uint16) *Console {
	return &Console{size: unix.Winsize{Row: height, Col: width}}
}

// Resize sets the terminal's size; before the process starts, it sets the size the
// terminal starts with.
func (c *Console) Resize(height, width uint16) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.size = unix.Winsize{Row: height, Col: width}
	if c.master == nil {
		return nil
	}
	if err := setWinsize(c.master, c.size); err != nil {
		return fmt.Errorf("resize terminal: %w", err)
	}
	return nil
}

// setWinsize sets a terminal's size without File.Fd, which would make the file
// blocking and stop its read deadlines.
func setWinsize(f *os.File, size unix.Winsize) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ioctlErr error
	err = rc.Control(func(fd uintptr) { ioctlErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &size) })
	return errors.Join(err, ioctlErr)
}

// attach takes the terminal's master side and gives it the console's size.
func (c *Console) attach(master *os.File) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.master = master
	if c.size.Row != 0 || c.size.Col != 0 {
		_ = setWinsize(master, c.size)
	}
}

// wire gives proc a terminal of the console's size: libcontainer's init creates it
// and sends its master side over the returned socket pair's parent end. The
// caller closes both ends once the process runs.
func (c *Console) wire(proc *libcontainer.Process) (parent, child *os.File, err error) {
	parent, child, err = utils.NewSockPair("console")
	if err != nil {
		return nil, nil, fmt.Errorf("create console socket: %w", err)
	}
	proc.ConsoleSocket = child
	c.mu.Lock()
	proc.ConsoleHeight, proc.ConsoleWidth = c.size.Row, c.size.Col
	c.mu.Unlock()
	return parent, child, nil
}

// detach forgets the master side (the process ended).
func (c *Console) detach() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.master = nil
}

// consoleDrain bounds how long the output left in a terminal is read after its
// process ended: a background process still holding the terminal must not keep
// the exec open.
const consoleDrain = 200 * time.Millisecond

// terminal is a running exec's side of its console: output copied to stdout,
// stdin copied to the terminal.
type terminal struct {
	master *os.File
	copied chan struct{} // closed when the output copy ends
}

// startTerminal receives the terminal's master side from libcontainer's init on
// socket and starts copying between it and the exec's streams.
func startTerminal(socket *os.File, stdin io.Reader, stdout io.Writer) (*terminal, error) {
	master, err := receiveFD(socket)
	if err != nil {
		return nil, fmt.Errorf("receive the exec's terminal: %w", err)
	}
	t := &terminal{master: master, copied: make(chan struct{})}
	go func() {
		defer close(t.copied)
		_, _ = io.Copy(stdout, master)
	}()
	if stdin != nil {
		go func() { _, _ = io.Copy(master, stdin) }()
	}
	return t, nil
}

// finish reads what the process left in the terminal, for a bounded time, and
// closes it.
func (t *terminal) finish() {
	_ = t.master.SetReadDeadline(time.Now().Add(consoleDrain))
	<-t.copied
	_ = t.master.Close()
}

// receiveFD reads one file descriptor passed over a unix socket and returns it
// as a non-blocking file, so that reads honour deadlines and Close.
func receiveFD(socket *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(socket.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("recvmsg: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("no file descriptor received")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, errors.New("no file descriptor received")
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("set the terminal non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "/dev/ptmx"), nil
}
