package overlay

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-project/shoal/netplane/namespace"

	"github.com/vishvananda/netns"
)

// server answers every TCP connection with "<name> sees <client address>",
// then "<name>" for every line it reads, so a client learns who answered,
// which source arrived, and whether a held connection still works.
type server struct {
	name string
	ln   net.Listener

	mu    sync.Mutex
	conns []net.Conn
	seen  []string // client addresses, in order
}

func serve(t testing.TB, ns netns.NsHandle, addr, name string) *server {
	t.Helper()
	s := &server{name: name}
	if err := namespace.Run(ns, func() (err error) { s.ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, name, err)
	}
	done := make(chan struct{})
	go s.acceptLoop(done)
	t.Cleanup(func() {
		s.ln.Close()
		<-done
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
	return s
}

func (s *server) acceptLoop(done chan struct{}) {
	defer close(done)
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed by cleanup
		}
		remote, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.seen = append(s.seen, remote)
		s.mu.Unlock()
		go func() {
			fmt.Fprintf(c, "%s sees %s\n", s.name, remote)
			r := bufio.NewReader(c)
			for {
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
				fmt.Fprintf(c, "%s\n", s.name)
			}
		}()
	}
}

// saw tells whether a client from addr ever connected.
func (s *server) saw(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.seen {
		if a == addr {
			return true
		}
	}
	return false
}

// dial connects from inside ns; the socket stays in ns whichever thread
// uses it afterwards.
func dial(ns netns.NsHandle, d net.Dialer, addr string) (net.Conn, error) {
	var c net.Conn
	err := namespace.Run(ns, func() (err error) { c, err = d.Dial("tcp4", addr); return err })
	return c, err
}

// ask connects to addr from ns and returns the greeting.
func ask(ns netns.NsHandle, addr string) (string, error) {
	c, err := dial(ns, net.Dialer{Timeout: time.Second}, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return readLine(c)
}

func readLine(c net.Conn) (string, error) {
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// held is a connection kept open across changes to prove they spare it.
type held struct {
	c        net.Conn
	greeting string
}

func hold(t testing.TB, ns netns.NsHandle, addr string) *held {
	t.Helper()
	var h *held
	eventually(t, "hold a connection to "+addr, func() error {
		c, err := dial(ns, net.Dialer{Timeout: time.Second}, addr)
		if err != nil {
			return err
		}
		g, err := readLine(c)
		if err != nil {
			c.Close()
			return err
		}
		h = &held{c: c, greeting: g}
		return nil
	})
	t.Cleanup(func() { h.c.Close() })
	return h
}

// ping sends a line on the held connection and returns the answer.
func (h *held) ping() (string, error) {
	if _, err := fmt.Fprintln(h.c, "ping"); err != nil {
		return "", err
	}
	return readLine(h.c)
}

// eventually polls check until it succeeds or ten seconds pass.
func eventually(t testing.TB, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// expectReply asks addr from ns until the greeting is want.
func expectReply(t testing.TB, ns netns.NsHandle, addr, want string) {
	t.Helper()
	eventually(t, "connect to "+addr, func() error {
		got, err := ask(ns, addr)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("greeting %q, want %q", got, want)
		}
		return nil
	})
}

// expectNoConnection asserts that a connection from ns to addr fails.
func expectNoConnection(t testing.TB, ns netns.NsHandle, addr string) {
	t.Helper()
	if got, err := ask(ns, addr); err == nil {
		t.Errorf("connected to %s: %q, want no connection", addr, got)
	}
}

// netstat reads one TcpExt counter of ns's kernel, such as
// IPReversePathFilter (packets its reverse path filter dropped).
func netstat(t testing.TB, ns netns.NsHandle, name string) int {
	t.Helper()
	var data []byte
	// /proc/self/net shows the main thread's namespace; thread-self, ours.
	if err := namespace.Run(ns, func() (err error) { data, err = os.ReadFile("/proc/thread-self/net/netstat"); return err }); err != nil {
		t.Fatalf("read netstat: %v", err)
	}
	lines := strings.Split(string(data), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		keys, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j, k := range keys {
			if k == name && j < len(values) {
				n, err := strconv.Atoi(values[j])
				if err != nil {
					t.Fatalf("netstat %s: %v", name, err)
				}
				return n
			}
		}
	}
	t.Fatalf("netstat has no %s", name)
	return 0
}
