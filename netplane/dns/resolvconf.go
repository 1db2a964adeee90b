package dns

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
)

// Address is where the server listens inside every sandbox, as Docker's does.
const Address = "127.0.0.11"

// resolvConfHeader opens every resolv.conf the server writes, so that whoever reads
// the file inside a container knows where it came from.
const resolvConfHeader = "# Written by shoal: the embedded DNS server answers service and task names\n" +
	"# and forwards every other query to the node's resolvers.\n"

// ResolvConf is a task container's /etc/resolv.conf made from the node's: the
// embedded server as the only nameserver, and the node's search, domain and options
// lines as they are. The node's nameservers are left out; the server forwards to
// them.
func ResolvConf(host []byte) []byte {
	var b bytes.Buffer
	b.WriteString(resolvConfHeader)
	b.WriteString("nameserver " + Address + "\n")
	sc := bufio.NewScanner(bytes.NewReader(host))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch keyword(line) {
		case "search", "domain", "options":
			b.WriteString(line + "\n")
		}
	}
	return b.Bytes()
}

// parseUpstreams reads the nameserver lines of a resolv.conf, port 53 each, in the order
// written. Lines that do not hold an IP address are skipped.
func parseUpstreams(conf []byte) []netip.AddrPort {
	var ups []netip.AddrPort
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(fields[1])
		if err != nil {
			continue
		}
		ups = append(ups, netip.AddrPortFrom(a.Unmap(), 53))
	}
	return ups
}

// keyword is the first word of a resolv.conf line; comments have none.
func keyword(line string) string {
	if line == "" || line[0] == '#' || line[0] == ';' {
		return ""
	}
	word, _, _ := strings.Cut(line, " ")
	word, _, _ = strings.Cut(word, "\t")
	return word
}
