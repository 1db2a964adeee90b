package testenv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// Capture records the frames that cross the lab's switch: what an observer on
// the wire between the nodes sees.
type Capture struct {
	fd   int
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	frames [][]byte
	size   int
	err    error
}

// maxCaptured bounds what a capture keeps: a test sends little, and a runaway
// one must not eat the machine's memory.
const maxCaptured = 64 << 20

// Capture starts recording every frame on the ports of the lab's switch, until
// Stop. (A packet socket in the switch's namespace, bound to no interface,
// sees each frame on the port it enters and the one it leaves.)
func (l *Lab) Capture() (*Capture, error) {
	c := &Capture{fd: -1, stop: make(chan struct{}), done: make(chan struct{})}
	err := inNetNS(l.SwitchNS(), func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("capture socket: %w", err)
		}
		tv := unix.Timeval{Usec: 100_000}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return fmt.Errorf("capture socket timeout: %w", err)
		}
		c.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	go c.read()
	return c, nil
}

func (c *Capture) read() {
	defer close(c.done)
	buf := make([]byte, 65536)
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		c.mu.Lock()
		if err != nil {
			c.err = err
			c.mu.Unlock()
			return
		}
		if c.size+n <= maxCaptured {
			c.frames = append(c.frames, bytes.Clone(buf[:n]))
			c.size += n
		}
		c.mu.Unlock()
	}
}

// Stop ends the capture and returns its frames (Ethernet, as on the wire).
func (c *Capture) Stop() ([][]byte, error) {
	close(c.stop)
	<-c.done
	unix.Close(c.fd)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames, c.err
}

// UDPPorts counts the IPv4 UDP frames of frames by destination port.
func UDPPorts(frames [][]byte) map[uint16]int {
	out := map[uint16]int{}
	for _, f := range frames {
		// Ethernet (14), IPv4 with its header length, UDP.
		if len(f) < 14+20+8 || binary.BigEndian.Uint16(f[12:14]) != unix.ETH_P_IP || f[14+9] != unix.IPPROTO_UDP {
			continue
		}
		ihl := int(f[14]&0x0f) * 4
		if len(f) < 14+ihl+8 {
			continue
		}
		out[binary.BigEndian.Uint16(f[14+ihl+2:])]++
	}
	return out
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
