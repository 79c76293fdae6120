// Package servertest starts a real exportd server on a loopback port for
// tests, and stops it when the test ends.
//
//	srv := servertest.Start(t, server.Config{Datasets: cfg, Sources: sources})
//	resp, err := http.Get(srv.URL + "/v1/datasets")
package servertest

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/server"
)

// Server is a running exportd server.
type Server struct {
	*server.Server
	// URL is the server's base URL, e.g. http://127.0.0.1:41234.
	URL string
	// Addr is the address it listens on, e.g. 127.0.0.1:41234.
	Addr string

	stop    context.CancelFunc
	done    chan error
	release sync.Once // what server.Open opened, after the shutdown
	opened  bool
}

// Start starts a server made from cfg on 127.0.0.1 at a free port (cfg.Addr
// is ignored). It is shut down, with the configured grace period, when the
// test and its subtests end; an error from the server fails the test.
func Start(t testing.TB, cfg server.Config) *Server {
	t.Helper()
	s, err := server.New(cfg)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	return serve(t, s, false)
}

// Open starts the server that [server.Open] makes of the datasets file cfg
// and opts, like Start; when it is shut down, what Open opened (the token
// store, the audit trail, the jobs) is released too.
func Open(t testing.TB, cfg *exportd.Config, opts server.Options) *Server {
	t.Helper()
	s, err := server.Open(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	return serve(t, s, true)
}

func serve(t testing.TB, s *server.Server, opened bool) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{Server: s, URL: "http://" + ln.Addr().String(), Addr: ln.Addr().String(), stop: cancel, done: make(chan error, 1), opened: opened}
	go func() { srv.done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("servertest: %v", err)
		}
	})
	return srv
}

// Close shuts the server down and waits for it, at most a minute, then
// releases what server.Open opened; it is safe to call more than once.
func (s *Server) Close() error {
	s.stop()
	select {
	case err, ok := <-s.done:
		if ok {
			close(s.done)
		}
		if s.opened {
			s.release.Do(s.Server.Close)
		}
		return err
	case <-time.After(time.Minute):
		return errors.New("server did not stop within a minute")
	}
}
