package container

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The node's own name files, which a container on the host network is given.
const (
	hostResolvConf = "/etc/resolv.conf"
	hostHosts      = "/etc/hosts"
)

// writeHostFiles writes hostname, hosts and resolv.conf into dir; they are
// bind-mounted into the container at start.
func writeHostFiles(dir string, rec record) error {
	files := map[string][]byte{
		"hostname":    []byte(rec.Config.Hostname + "\n"),
		"hosts":       hostsFile(rec),
		"resolv.conf": resolvConf(rec),
	}
	for name, data := range files {
		if err := writeFileAtomic(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// hostsFile is a container's /etc/hosts: on the host network the node's own
// (the container shares its addresses), otherwise localhost and the
// container's addresses under its hostname; extra hosts are added to both.
func hostsFile(rec record) []byte {
	var b bytes.Buffer
	if rec.HostConfig.NetworkMode.IsHost() {
		if data, err := os.ReadFile(hostHosts); err == nil {
			b.Write(data)
			if len(data) > 0 && data[len(data)-1] != '\n' {
				b.WriteByte('\n')
			}
		}
		writeExtraHosts(&b, rec.HostConfig.ExtraHosts)
		return b.Bytes()
	}
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	writeExtraHosts(&b, rec.HostConfig.ExtraHosts)
	if rec.IPAddress != "" {
		fmt.Fprintf(&b, "%s\t%s\n", rec.IPAddress, rec.Config.Hostname)
	}
	for _, n := range rec.Networks {
		fmt.Fprintf(&b, "%s\t%s\n", n.Address.Addr(), rec.Config.Hostname)
	}
	return b.Bytes()
}

// writeExtraHosts adds `--host` entries ("name:ip" or "name=ip") to a hosts file.
func writeExtraHosts(b *bytes.Buffer, extra []string) {
	for _, eh := range extra {
		host, ip, ok := strings.Cut(eh, ":")
		if i := strings.IndexByte(eh, '='); i >= 0 {
			host, ip, ok = eh[:i], eh[i+1:], true
		}
		if ok {
			fmt.Fprintf(b, "%s\t%s\n", strings.Trim(ip, "[]"), host)
		}
	}
}

// embeddedDNS is the address of the swarm's DNS server inside a task's network
// namespace (netplane/dns).
const embeddedDNS = "127.0.0.11"

func isNdots(option string) bool { return strings.HasPrefix(option, "ndots:") }

// resolvConf is the configured DNS settings, or the host's resolv.conf without
// loopback nameservers (they would be the container's own loopback). On the
// host network the loopback is the node's: the host's file is kept as it is.
func resolvConf(rec record) []byte {
	hc := rec.HostConfig
	onHost := hc.NetworkMode.IsHost()
	if onHost && len(hc.DNS) == 0 && len(hc.DNSSearch) == 0 && len(hc.DNSOptions) == 0 {
		if data, err := os.ReadFile(hostResolvConf); err == nil {
			return data
		}
	}
	var servers, search, options []string
	if data, err := os.ReadFile(hostResolvConf); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 || strings.HasPrefix(f[0], "#") {
				continue
			}
			switch f[0] {
			case "nameserver":
				if a, err := netip.ParseAddr(f[1]); err == nil && (onHost || !a.IsLoopback()) {
					servers = append(servers, f[1])
				}
			case "search":
				search = f[1:]
			case "options":
				options = append(options, f[1:]...)
			}
		}
	}
	if len(hc.DNS) > 0 {
		servers = servers[:0]
		for _, a := range hc.DNS {
			servers = append(servers, a.String())
		}
	}
	if len(servers) == 0 {
		servers = []string{"8.8.8.8", "8.8.4.4"}
	}
	if len(hc.DNSSearch) > 0 {
		search = hc.DNSSearch
	}
	if len(hc.DNSOptions) > 0 {
		options = hc.DNSOptions
	}
	if len(servers) == 1 && servers[0] == embeddedDNS && !slices.ContainsFunc(options, isNdots) {
		// As libnetwork writes it for its resolver: a name is tried as it is
		// first, so the embedded server answers service names without a search.
		options = append(options, "ndots:0")
	}
	var b bytes.Buffer
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.Bytes()
}
