// Package systemd is what shoal needs of systemd, without linking to it: the text
// of shoal's service unit, and sd_notify's readiness messages, sent by hand on
// the datagram socket systemd names in $NOTIFY_SOCKET.
package systemd

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// UnitName is the name of shoal's service unit.
const UnitName = "shoal.service"

// Unit is the text of shoal's service unit, for the binary at binary.
func Unit(binary string) string {
	return strings.ReplaceAll(unitTemplate, "@BINARY@", binary)
}

// unitTemplate is shoal.service. Each setting that is not systemd's default says
// why it is there.
const unitTemplate = `[Unit]
Description=shoal: a Docker swarm in one binary
Documentation=https://github.com/shoal-project/shoal
# The swarm's addresses and the registries must be reachable when it starts.
After=network-online.target nss-lookup.target
Wants=network-online.target

[Service]
# shoal tells systemd it is ready (sd_notify READY=1) once its API listens, so
# that units ordered after it find the socket.
Type=notify
ExecStart=@BINARY@ daemon
# SIGHUP reloads log-level, labels, registry-mirrors and insecure-registries
# from /etc/shoal/daemon.json.
ExecReload=/bin/kill -s HUP $MAINPID
# Stop only the daemon: task containers keep running across a restart or an
# upgrade, and the next daemon adopts them (live restore).
KillMode=process
# shoal makes the cgroups of its containers itself.
Delegate=yes
# Containers inherit the daemon's limits; Docker's defaults.
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
# A swarm manager may replay a long Raft log before it is ready.
TimeoutStartSec=0
Restart=always
RestartSec=2
# The node's control plane is the last thing the kernel should pick when memory
# runs out, after the tasks.
OOMScoreAdjust=-500
# Logs go to stderr, which systemd sends to the journal: journalctl -u shoal.

[Install]
WantedBy=multi-user.target
`

// Notify sends state (READY=1, STOPPING=1, RELOADING=1, STATUS=...) to the
// service manager, when the process runs under one: sent reports whether
// $NOTIFY_SOCKET named a socket.
func Notify(state string) (sent bool, err error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	if strings.HasPrefix(path, "@") { // an abstract socket
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("notify systemd: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("notify systemd: %w", err)
	}
	return true, nil
}
