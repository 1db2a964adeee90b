// Package container runs the containers of one node under runc's libcontainer:
// create, start, stop, kill, wait, remove, inspect, list, logs, exec, health
// checks, events and live restore.
//
// There is no resident helper process per container. Each container's init is a
// child of the daemon while the daemon lives; when the daemon dies the container
// keeps running, and a new [Manager] on the same directories re-adopts it (its pid
// and start time must match the persisted ones) and watches it with a pidfd. The
// exit code of a re-adopted container is unknowable (it is no longer our child),
// so it is reported as 255 with an explaining error.
//
// # Layout on disk
//
//	<Root>/<id>/config.json      the container record, replaced atomically (temp + rename)
//	<Root>/<id>/stdout, stderr   raw output: the container's own O_APPEND files
//	<Root>/<id>/<id>-json.log    Docker json-file log records
//	<Root>/<id>/log.offset       raw bytes of each stream already logged, and the log size then
//	<Root>/<id>/hostname, hosts, resolv.conf   bind-mounted into the container
//	<Root>/<id>/upper, work, rootfs            overlay upper/work dirs and mount point
//	<StateRoot>/<id>/            libcontainer state
//
// # Logs
//
// Containers write straight to files, so their output neither blocks nor
// SIGPIPEs them while the daemon is down. One inotify instance watches the raw
// files of every container; on a change the manager reads the new complete lines
// (lines over 16 KiB are split), appends them as timestamped json-file records,
// then commits by persisting the consumed offsets together with the log's size
// in log.offset, and finally punches the consumed bytes out of the raw file
// (FALLOC_FL_PUNCH_HOLE) so disk use stays bounded. After a restart tailing
// resumes from the committed offsets, and records appended after the last commit
// are truncated away first, so a daemon crash neither loses nor repeats a line.
// Output written while the daemon was down is stamped with the time it is read.
//
// # Seccomp
//
// Every container runs under Docker's default seccomp profile, generated for its
// capabilities (an added CAP_SYS_ADMIN opens mount, unshare, ...), unless
// HostConfig.SecurityOpt says "seccomp=unconfined" or gives a JSON profile, or the
// container is privileged. Exec'd processes inherit the container's filter. The
// default filter covers the node's own architecture, plus the 32-bit one of an
// image built for it (386 on amd64, arm on arm64): each architecture costs its
// build time at every start. Filtering needs a binary built with the "seccomp"
// tag, cgo and libseccomp ([SeccompEnabled]); without it containers run
// unfiltered.
//
// # Terminals
//
// An exec may have a terminal ([Console]): libcontainer's init creates it in the
// container and passes its master side back. The container's main process has
// none (Config.Tty: Create returns InvalidParameter), since the daemon would
// have to hold its master side across restarts.
//
// # Debugging and housekeeping
//
// Top lists a container's processes with the host's ps (those of its cgroup);
// Stats samples its cgroup, the host's CPU time and its interfaces. Pause and
// Unpause freeze and thaw its cgroup; the paused state is read from the freezer
// when needed, so it survives a daemon restart. Prune removes stopped containers.
//
// # Not supported yet
//
// AppArmor profiles and SELinux labels (accepted in SecurityOpt, without effect),
// user namespaces, the OOM-killer switch and block-IO limits.
package container
