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

// serveMetrics serves handler at /metrics on cfg.MetricsAddr until ctx is done,
// then returns from the returned wait once the server has stopped. On the
// loopback it is plain HTTP, as dockerd's metrics-addr; anywhere else it takes
// the API's mutual TLS (checkOperations made sure the flags are there), since
// shoal never listens on TCP without it.
func serveMetrics(ctx context.Context, cfg daemonConfig, handler http.Handler, log *slog.Logger) (wait func(), err error) {
	if cfg.MetricsAddr == "" {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", cfg.MetricsAddr, err)
	}
	scheme := "http"
	if loopback, _ := loopbackAddr(cfg.MetricsAddr); !loopback {
		tlsCfg, err := serverTLS(cfg)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("metrics on %s: %w", cfg.MetricsAddr, err)
		}
		l, scheme = tls.NewListener(l, tlsCfg), "https"
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", handler)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.With("component", "metrics").Handler(), slog.LevelDebug)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve metrics", "addr", cfg.MetricsAddr, "err", err)
		}
	}()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		<-done
	}()
	log.Info("metrics listening", "url", scheme+"://"+l.Addr().String()+"/metrics")
	return func() { <-stopped }, nil
}
