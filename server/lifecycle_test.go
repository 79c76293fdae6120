package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/datasets"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

// exportLines returns the "export" log lines of logs, decoded.
func exportLines(t *testing.T, logs *syncBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "export" {
			out = append(out, m)
		}
	}
	return out
}

// waitExportLine waits until an "export" log line with the given outcome
// is written, and fails the test after a generous deadline.
func waitExportLine(t *testing.T, logs *syncBuffer, outcome string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, m := range exportLines(t, logs) {
			if m["outcome"] == outcome {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no export line with outcome %q:\n%s", outcome, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Shutdown lets a running stream finish within the grace period: the
// client gets the whole file, and Serve returns nil.
func TestShutdownLetsStreamsFinish(t *testing.T) {
	f := newFixture(t, 500)
	g := newGate(f.src)
	srv := f.start(t, func(c *server.Config) {
		c.Sources = map[string]exportd.Source{"main": g}
		c.ShutdownGrace = time.Minute
	})
	c := client(t)
	resp, err := c.Get(srv.URL + "/v1/datasets/items/export.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-g.started
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	// New connections are refused once the server drains.
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", srv.Addr, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-closed:
		t.Fatalf("Serve returned (%v) while a stream was running", err)
	default:
	}
	g.open()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != wantCSV(0, 500) {
		t.Fatalf("stream during shutdown: %v, %d bytes", err, len(body))
	}
	if err := <-closed; err != nil {
		t.Fatalf("graceful shutdown: %v", err)
	}
}

// A stream still running when the grace period is over is cancelled: its
// client sees a failed download, never a complete-looking file.
func TestShutdownGraceOver(t *testing.T) {
	f := newFixture(t, 500)
	g := newGate(f.src) // never opened: the query stays silent
	var logs syncBuffer
	srv := f.start(t, func(c *server.Config) {
		c.Sources = map[string]exportd.Source{"main": g}
		c.ShutdownGrace = 200 * time.Millisecond
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	c := client(t)
	resp, err := c.Get(srv.URL + "/v1/datasets/items/export.xlsx")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-g.started
	if err := srv.Close(); err == nil {
		t.Error("Serve returned nil after cancelling a stream; want the shutdown error")
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("the cancelled stream's download ended like a complete file")
	}
	waitExportLine(t, &logs, "shutdown")
}

// A dataset's max_duration ends an export that runs past it; the
// server-wide MaxDuration applies to datasets without one.
func TestMaxDuration(t *testing.T) {
	f := newFixture(t, 100)
	g := newGate(f.src) // never opened
	for _, tc := range []struct {
		name     string
		dataset  time.Duration
		server   time.Duration
		wantStop bool
	}{
		{"dataset", 200 * time.Millisecond, 0, true},
		{"server", 0, 200 * time.Millisecond, true},
		{"dataset wins", time.Hour, 200 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := f.cfg.Lookup("items")
			if err != nil {
				t.Fatal(err)
			}
			d.MaxDuration = tc.dataset
			t.Cleanup(func() { d.MaxDuration = 0 })
			var logs syncBuffer
			srv := f.start(t, func(c *server.Config) {
				c.Sources = map[string]exportd.Source{"main": g}
				c.MaxDuration = tc.server
				c.ShutdownGrace = 100 * time.Millisecond
				c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
			})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/datasets/items/export.xlsx", nil)
			resp, err := client(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			_, err = io.ReadAll(resp.Body)
			if !tc.wantStop {
				// Still running when the client gives up after 3 s.
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("read: %v; want the client's own deadline", err)
				}
				return
			}
			if err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("read: %v; want the server to abort the download", err)
			}
			m := waitExportLine(t, &logs, "timeout")
			if !strings.Contains(m["error"].(string), "maximum duration") {
				t.Errorf("error %q", m["error"])
			}
		})
	}
}

// A client that stops reading fails the stream after the rolling write
// deadline, although the whole response has no time bound.
func TestWriteDeadline(t *testing.T) {
	f := newFixture(t, 10)
	dir := t.TempDir()
	// Rows of 2,000 characters: far more than the socket buffers hold.
	yaml := `
connections:
  main: {url: "sqlite:items.db"}
datasets:
  wide:
    sql: |
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
      SELECT i, printf('%.2000c', 'x') AS filler FROM n
    columns: [{name: i, type: int}, {name: filler, type: string}]
`
	path := filepath.Join(dir, "datasets.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := datasets.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	srv := servertest.Start(t, server.Config{
		Datasets:      cfg,
		Sources:       map[string]exportd.Source{"main": f.src},
		WriteTimeout:  300 * time.Millisecond,
		ShutdownGrace: 100 * time.Millisecond,
		Logger:        slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /v1/datasets/wide/export.csv HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	// Read nothing more: the server's writes block, then time out.
	m := waitExportLine(t, &logs, "stalled")
	if rows := m["rows"].(float64); rows >= 200000 {
		t.Fatalf("the export finished (%v rows) although the client read nothing", rows)
	}
	if e := m["error"].(string); !strings.Contains(e, "timeout") && !strings.Contains(e, "deadline") {
		t.Errorf("error %q: not a write deadline", e)
	}
}

// ReadHeaderTimeout closes a connection whose request headers do not
// arrive; IdleTimeout closes a kept-alive connection left idle.
func TestConnectionTimeouts(t *testing.T) {
	f := newFixture(t, 10)
	srv := f.start(t, func(c *server.Config) {
		c.ReadHeaderTimeout = 200 * time.Millisecond
		c.IdleTimeout = 200 * time.Millisecond
	})
	closedWithin := func(conn net.Conn, r *bufio.Reader) bool {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.ReadAll(r)
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
	// Headers that never end.
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
	if !closedWithin(conn, bufio.NewReader(conn)) {
		t.Error("a request whose headers never end was not closed by ReadHeaderTimeout")
	}
	// A kept-alive connection after one request.
	idle, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	r := bufio.NewReader(idle)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !closedWithin(idle, r) {
		t.Error("an idle kept-alive connection was not closed by IdleTimeout")
	}
}
