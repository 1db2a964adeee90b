package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/shoal-project/shoal/engineapi/systemd"
)

// Where `shoal install` puts things, under its --root.
const (
	installedBinary = "/usr/local/bin/shoal"
	installedUnit   = "/etc/systemd/system/" + systemd.UnitName
)

// notify tells systemd, when it runs the daemon, of a change of state; the
// daemon runs as well without it.
func notify(log *slog.Logger, state string) {
	if _, err := systemd.Notify(state); err != nil {
		log.Warn("tell systemd", "state", state, "err", err)
	}
}

// installOptions are the flags of `shoal install` and `shoal uninstall`.
type installOptions struct {
	root string // prefix of every path written: "/" on a real install, a directory in tests
	now  bool   // enable and start (install) or stop and disable (uninstall) the unit
}

func parseInstallFlags(command string, args []string) (installOptions, error) {
	var o installOptions
	fs := pflag.NewFlagSet("shoal "+command, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.root, "root", "/", "install under this directory instead of / (for packaging and tests; systemctl is then not run)")
	what := "enable and start shoal.service"
	if command == "uninstall" {
		what = "stop and disable shoal.service first (its task containers keep running)"
	}
	fs.BoolVar(&o.now, "now", false, what)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Printf("Usage: shoal %s [OPTIONS]\n\nOptions:\n%s", command, fs.FlagUsages())
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return o, nil
}

// runInstall copies this binary to /usr/local/bin/shoal and writes shoal.service;
// on the real root it has systemd read the unit, and with --now starts it.
func runInstall(o installOptions, out io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary: %w", err)
	}
	binary := filepath.Join(o.root, installedBinary)
	if err := copyExecutable(self, binary); err != nil {
		return err
	}
	fmt.Fprintf(out, "installed %s\n", binary)
	unit := filepath.Join(o.root, installedUnit)
	if err := writeFileAtomic(unit, []byte(systemd.Unit(installedBinary)), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s\n", unit)
	if o.root != "/" {
		return nil
	}
	if err := systemctl(out, "daemon-reload"); err != nil {
		return err
	}
	if o.now {
		return systemctl(out, "enable", "--now", systemd.UnitName)
	}
	fmt.Fprintf(out, "start it with: systemctl enable --now shoal\nits log: journalctl -u shoal\n")
	return nil
}

// runUninstall removes what runInstall wrote; the data and exec roots, the
// bridge and the nftables table stay, as the README says how to remove them.
func runUninstall(o installOptions, out io.Writer) error {
	if o.root == "/" && o.now {
		if err := systemctl(out, "disable", "--now", systemd.UnitName); err != nil {
			return err
		}
	}
	for _, path := range []string{installedUnit, installedBinary} {
		full := filepath.Join(o.root, path)
		if err := os.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("uninstall: %w", err)
		}
		fmt.Fprintf(out, "removed %s\n", full)
	}
	if o.root == "/" {
		return systemctl(out, "daemon-reload")
	}
	return nil
}

// copyExecutable copies the binary at src to dst, mode 0755, replacing dst in
// one rename so that a running copy is never overwritten in place. Installing the
// installed binary over itself leaves it as it is.
func copyExecutable(src, dst string) error {
	if a, err := os.Stat(src); err == nil {
		if b, err := os.Stat(dst); err == nil && os.SameFile(a, b) {
			return nil
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	defer in.Close()
	data, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("install: read %s: %w", src, err)
	}
	return writeFileAtomic(dst, data, 0o755)
}

// writeFileAtomic writes data to path through a temporary file beside it.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing is there
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("install: write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("install: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("install: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return nil
}

// systemctl runs systemctl with args, its output to out.
func systemctl(out io.Writer, args ...string) error {
	cmd := exec.Command("systemctl", args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("systemctl %v: %w", args, err)
	}
	return nil
}
