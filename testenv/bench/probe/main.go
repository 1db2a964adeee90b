// Command probe is the stopwatch of testenv/bench/run.sh: it runs one command and times how
// long a Docker Engine API (shoal's or dockerd's, on a Unix socket) takes to reach a
// condition after the command started. Polling the API over HTTP from one long-lived
// process, instead of running the docker CLI in a loop, keeps the observer's own CPU
// cost out of the figures on a small machine.
//
//	probe ready    -sock S [-every 5ms] -- DAEMON ARGS...   exec to first good /_ping, then stop it
//	probe running  -sock S -service NAME -replicas N -- CMD  CMD start to N running tasks
//	probe gone     -sock S -service NAME -- CMD              CMD start to no containers of NAME
//
// Each prints one line, "<milliseconds> <detail>", and exits non-zero when the
// condition is not met before -timeout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// apiPrefix pins an API version both engines speak (dockerd 20.10 tops out at 1.41).
const apiPrefix = "/v1.41"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe ready|running|gone [flags] -- command...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "ready":
		err = ready(os.Args[2:])
	case "running":
		err = running(os.Args[2:])
	case "gone":
		err = gone(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

// options are the flags every subcommand shares.
type options struct {
	sock     string
	timeout  time.Duration
	every    time.Duration
	service  string
	replicas int
	command  []string
}

func parse(name string, args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&o.sock, "sock", "", "path of the engine's API socket")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up after this long")
	fs.DurationVar(&o.every, "every", 50*time.Millisecond, "poll interval")
	fs.StringVar(&o.service, "service", "", "service name")
	fs.IntVar(&o.replicas, "replicas", 0, "running tasks to wait for")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.command = fs.Args()
	if o.sock == "" || len(o.command) == 0 {
		return o, errors.New("need -sock and a command after --")
	}
	return o, nil
}

// client talks HTTP to the engine's Unix socket; a short per-request timeout keeps a
// hung daemon from stalling the poll loop.
func client(sock string) *http.Client {
	d := net.Dialer{}
	return &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", sock)
			},
			DisableKeepAlives: true,
		},
	}
}

// getJSON GETs path from the engine and decodes the JSON body into v.
func getJSON(c *http.Client, path string, v any) error {
	resp, err := c.Get("http://engine" + apiPrefix + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// poll calls cond every interval until it reports done or the deadline passes.
func poll(deadline time.Time, every time.Duration, cond func() (bool, error)) error {
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("condition not met in time (last error: %v)", last)
		}
		time.Sleep(every)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

// ready starts the daemon, waits for /_ping to answer OK, prints the elapsed time,
// then stops the daemon with SIGTERM (SIGKILL to its process group after 30 s).
func ready(args []string) error {
	o, err := parse("ready", args)
	if err != nil {
		return err
	}
	c := client(o.sock)
	cmd := exec.Command(o.command[0], o.command[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	err = poll(start.Add(o.timeout), o.every, func() (bool, error) {
		select {
		case err := <-exited:
			exited <- err
			return false, fmt.Errorf("daemon exited: %v", err)
		default:
		}
		resp, err := c.Get("http://engine/_ping")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	took := time.Since(start)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	if err != nil {
		return fmt.Errorf("wait for /_ping: %w", err)
	}
	fmt.Println(ms(took), "pid", cmd.Process.Pid)
	return nil
}

// runCommand runs the command to completion (its output to stderr) and returns the
// time it started and how long it ran.
func runCommand(argv []string) (time.Time, time.Duration, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("run %v: %w", argv, err)
	}
	return start, time.Since(start), err
}

// running times the command (docker service create) until the service reports the
// wanted number of running tasks in /services?status=true.
func running(args []string) error {
	o, err := parse("running", args)
	if err != nil {
		return err
	}
	if o.service == "" || o.replicas <= 0 {
		return errors.New("need -service and -replicas")
	}
	c := client(o.sock)
	start, cli, err := runCommand(o.command)
	if err != nil {
		return err
	}
	filter := url.QueryEscape(fmt.Sprintf(`{"name":{%q:true}}`, o.service))
	var seen uint64
	err = poll(start.Add(o.timeout), o.every, func() (bool, error) {
		var services []struct {
			Spec struct {
				Name string
			}
			ServiceStatus *struct {
				RunningTasks uint64
			}
		}
		if err := getJSON(c, "/services?status=true&filters="+filter, &services); err != nil {
			return false, err
		}
		for _, s := range services {
			if s.Spec.Name == o.service && s.ServiceStatus != nil {
				seen = s.ServiceStatus.RunningTasks
				return seen >= uint64(o.replicas), nil
			}
		}
		return false, fmt.Errorf("service %s not listed with a status", o.service)
	})
	if err != nil {
		return fmt.Errorf("%d of %d tasks running: %w", seen, o.replicas, err)
	}
	fmt.Println(ms(time.Since(start)), "cli", ms(cli))
	return nil
}

// gone times the command (docker service rm) until no container, running or not,
// carries the service's name label.
func gone(args []string) error {
	o, err := parse("gone", args)
	if err != nil {
		return err
	}
	if o.service == "" {
		return errors.New("need -service")
	}
	c := client(o.sock)
	start, cli, err := runCommand(o.command)
	if err != nil {
		return err
	}
	filter := url.QueryEscape(fmt.Sprintf(`{"label":{"com.docker.swarm.service.name=%s":true}}`, o.service))
	left := -1
	err = poll(start.Add(o.timeout), o.every, func() (bool, error) {
		var containers []json.RawMessage
		if err := getJSON(c, "/containers/json?all=1&filters="+filter, &containers); err != nil {
			return false, err
		}
		left = len(containers)
		return left == 0, nil
	})
	if err != nil {
		return fmt.Errorf("%d containers left: %w", left, err)
	}
	fmt.Println(ms(time.Since(start)), "cli", ms(cli))
	return nil
}
