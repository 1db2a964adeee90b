package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// serveSide serves handler at addr (the metrics or the dashboard: what names it
// in logs) until ctx is done, and returns a wait for the server to stop. On the
// loopback it is plain HTTP, as dockerd's metrics-addr; anywhere else it takes
// the API's mutual TLS (checkOperations made sure the flags are there), since
// shoal never listens on TCP without it. An empty addr serves nothing.
func serveSide(ctx context.Context, cfg daemonConfig, what, addr, path string, handler http.Handler, log *slog.Logger) (wait func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for %s on %s: %w", what, addr, err)
	}
	scheme := "http"
	if loopback, _ := loopbackAddr(what+"-addr", addr); !loopback {
		tlsCfg, err := serverTLS(cfg)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("%s on %s: %w", what, addr, err)
		}
		l, scheme = tls.NewListener(l, tlsCfg), "https"
	}
	// Requests live within ctx, so that the dashboard's event streams end when
	// the daemon stops rather than hold Shutdown up.
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    slog.NewLogLogger(log.With("component", what).Handler(), slog.LevelDebug)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve "+what, "addr", addr, "err", err)
		}
	}()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(shutdown) != nil {
			srv.Close()
		}
		<-done
	}()
	log.Info(what+" listening", "url", scheme+"://"+l.Addr().String()+path)
	return func() { <-stopped }, nil
}

// metricsHandler serves the registry's handler at /metrics only.
func metricsHandler(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	return mux
}
