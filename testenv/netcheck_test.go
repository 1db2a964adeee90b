package testenv_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// echoServer listens on the node's lab address and echoes what it reads; it
// returns the address to dial.
func echoServer(t *testing.T, n *testenv.Node) string {
	t.Helper()
	l, err := n.Listen("tcp", net.JoinHostPort(n.Addr(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

// reachTCP connects from the node to an echo server and has a line echoed.
func reachTCP(from *testenv.Node, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := from.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	return echo(c, "ping")
}

// silentTCP checks that a connection from the node to addr times out: no answer,
// not even a refusal.
func silentTCP(from *testenv.Node, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := from.DialContext(ctx, "tcp", addr)
	switch {
	case err == nil:
		c.Close()
		return errors.New("connected")
	case !isTimeout(err):
		return fmt.Errorf("want a timeout, got %w", err)
	}
	return nil
}

// reachUDP sends a datagram from one node to a socket on the other and reports
// whether it arrived within a second.
func reachUDP(t *testing.T, from, to *testenv.Node) error {
	t.Helper()
	pc, err := to.ListenPacket("udp", net.JoinHostPort(to.Addr(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := from.DialContext(context.Background(), "udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	token := fmt.Sprintf("%s->%s %d", from.Name, to.Name, time.Now().UnixNano())
	if _, err := c.Write([]byte(token)); err != nil {
		return err
	}
	_ = pc.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 128)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		if string(buf[:n]) == token {
			return nil
		}
	}
}

// echo writes a line on c and checks that the same line comes back.
func echo(c net.Conn, line string) error {
	if _, err := fmt.Fprintln(c, line); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		return fmt.Errorf("echoed %q, want %q", got, line)
	}
	return nil
}

func readFull(c net.Conn, buf []byte) (int, error) { return io.ReadFull(c, buf) }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
