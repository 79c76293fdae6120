package server

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/datasets"
	"github.com/exportd/exportd/sqlite"
)

// Every way a download request ends its arrival (turns.go): refused,
// HEAD, waiting for a slot with its first bytes out, done. A request that
// stayed counted would hold every running export at each of its turns.
func TestArrivalsEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t(id INTEGER); INSERT INTO t VALUES (1), (2), (3)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	src, err := sqlite.Open(context.Background(), path, exportd.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cfg, err := datasets.ParseConfig("t.yaml", []byte(`
connections:
  main: {url: "sqlite:a.db"}
datasets:
  t:
    sql: SELECT id FROM t WHERE id >= :from
    params: [{name: from, type: int, default: 1}]
    columns: [{name: id, type: int}]
`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Datasets: cfg, Sources: map[string]exportd.Source{"main": src}, Slots: 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	arriving := func() int {
		s.turns.mu.Lock()
		defer s.turns.mu.Unlock()
		return s.turns.arriving
	}
	settled := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); arriving() != 0; {
			if time.Now().After(deadline) {
				t.Fatalf("after %s: %d requests still counted as arriving", what, arriving())
			}
			time.Sleep(time.Millisecond)
		}
	}
	get := func(method, query string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+"/v1/datasets/t/export.csv"+query, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	resp := get("GET", "?from=x")
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a bad parameter answered %d", resp.StatusCode)
	}
	settled("a refused request")
	resp = get("HEAD", "")
	resp.Body.Close()
	settled("a HEAD request")

	// The slot and the headroom are taken: the download waits with its
	// first bytes out (gzip sends them before its first row).
	var release []func()
	for _, key := range []string{"a", "b"} {
		held, err := s.admit.join(key)
		if err != nil {
			t.Fatal(err)
		}
		done, err := held.wait(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		release = append(release, done, held.done)
	}
	releaseAll := sync.OnceFunc(func() {
		for _, f := range release {
			f()
		}
	})
	t.Cleanup(releaseAll) // before ts.Close, which waits for the download
	req, _ := http.NewRequest("GET", ts.URL+"/v1/datasets/t/export.csv", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err = (&http.Transport{}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	settled("the first bytes of a waiting download")
	if w := s.admit.waitingNow(); w != 1 {
		t.Fatalf("%d downloads wait for a slot, want 1", w)
	}
	releaseAll()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp = get("GET", "")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "\ufeffid\n1\n2\n3\n" {
		t.Fatalf("the download gave %q", body)
	}
	settled("a whole download")
}

// A new connection counts as arriving from its accept until its request
// is answered, it closes, or connArrivalMax has passed.
func TestArrivalsConnections(t *testing.T) {
	s, err := New(Config{Datasets: &exportd.Config{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := s.httpServer()
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	arriving := func() int {
		s.turns.mu.Lock()
		defer s.turns.mu.Unlock()
		return s.turns.arriving
	}
	until := func(want int, within time.Duration, what string) time.Duration {
		t.Helper()
		start := time.Now()
		for arriving() != want {
			if time.Since(start) > within {
				t.Fatalf("%s: %d connections arriving after %v, want %d", what, arriving(), within, want)
			}
			time.Sleep(time.Millisecond)
		}
		return time.Since(start)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	until(1, 2*time.Second, "a new connection")
	c.Close()
	until(0, 2*time.Second, "a closed connection")

	c, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	until(1, 2*time.Second, "a new connection")
	if took := until(0, 2*time.Second, "a connection that sends nothing"); took > 10*connArrivalMax {
		t.Errorf("a silent connection counted as arriving for %v", took)
	}

	s.turns.mu.Lock()
	s.turns.connMax = time.Hour // only the answer ends the next one
	s.turns.mu.Unlock()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close() // the connection stays open, idle
	until(0, 10*time.Second, "a connection whose request was answered")
}
