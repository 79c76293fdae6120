package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/datasets"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/connect"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/jobs/storage"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

// logBuffer collects a server's JSON log lines, safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the logged records whose msg is msg.
func (l *logBuffer) lines(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// rig is an exportd server (in this process) on one database connection,
// "db", with background jobs queued in SQLite.
type rig struct {
	srv  *servertest.Server
	src  exportd.Source
	log  *logBuffer
	jobs *jobs.Manager
}

// startRig loads the datasets in yaml (its connection "db" at dbURL),
// opens the source and starts a server with jobs (retries after 0.2 s,
// 3.2 s, 16 s…, up to 5 attempts) queued at queueURL (empty: an SQLite
// file). Everything stops when the test ends.
func startRig(t *testing.T, dbURL, yaml, queueURL string) *rig {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "datasets.yaml")
	yaml = "timezone: UTC\nconnections:\n  db: {url: \"" + dbURL + "\"}\n" + yaml
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := datasets.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src, err := connect.Open(ctx, dbURL, exportd.SourceOptions{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() }) // after the server and the jobs (cleanups run last first)
	lb := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(lb, nil))
	if queueURL == "" {
		queueURL = "sqlite:" + filepath.Join(dir, "jobs.db")
	}
	q, err := jobs.OpenQueue(ctx, queueURL)
	if err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(ctx, "file://"+filepath.Join(dir, "results"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := jobs.New(jobs.Config{Datasets: cfg, Sources: map[string]exportd.Source{"db": src}, Queue: q, Storage: st,
		Links: mustKeys([]byte("faults-test-link-secret-0123456789")), PollInterval: 50 * time.Millisecond,
		RetryBackoff: 200 * time.Millisecond, MaxAttempts: 5, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Stop(context.Background())
		q.Close()
		st.Close()
	})
	sc := server.Config{Datasets: cfg, Sources: map[string]exportd.Source{"db": src}, Logger: log, Jobs: m, ShutdownGrace: 5 * time.Second}
	srv := servertest.Start(t, sc)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("exportd log:\n%s", tail(lb.String(), 6000))
		}
	})
	return &rig{srv: srv, src: src, log: lb, jobs: m}
}

// get fetches path from the server and returns the status and the body.
func (r *rig) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	code, b, err := r.fetch(t, path)
	if err != nil {
		t.Fatalf("GET %s: %v after %d bytes", path, err, len(b))
	}
	return code, b
}

// fetch is get that returns an error reading the body (a failed download).
func (r *rig) fetch(t *testing.T, path string) (int, []byte, error) {
	t.Helper()
	resp, err := http.Get(r.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// readyz returns /readyz's status.
func (r *rig) readyz(t *testing.T) int {
	t.Helper()
	code, _ := r.get(t, "/readyz")
	return code
}

// metric returns the value of the metric line that starts with prefix
// (name and labels), 0 when there is none.
func (r *rig) metric(t *testing.T, prefix string) float64 {
	t.Helper()
	_, b := r.get(t, "/metrics")
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, prefix+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

// job fetches a background job.
func (r *rig) job(t *testing.T, id string) jobs.Job {
	t.Helper()
	code, b := r.get(t, "/v1/jobs/"+id)
	var j jobs.Job
	if code != 200 || json.Unmarshal(b, &j) != nil {
		t.Fatalf("GET /v1/jobs/%s: %d %s", id, code, b)
	}
	return j
}

// submit starts a background job of dataset in format.
func (r *rig) submit(t *testing.T, dataset, format string) jobs.Job {
	t.Helper()
	resp, err := http.Post(r.srv.URL+"/v1/datasets/"+dataset+"/jobs", "application/json", strings.NewReader(`{"format": "`+format+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var j jobs.Job
	if resp.StatusCode != 202 || json.Unmarshal(b, &j) != nil {
		t.Fatalf("submit: %d %s", resp.StatusCode, b)
	}
	return j
}

// waitFor polls cond every 50 ms until it holds or d has passed, and
// returns how long it took.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// mustKeys returns link keys of keys, or panics.
func mustKeys(keys ...[]byte) *auth.Keys {
	k, err := auth.NewKeys(keys...)
	if err != nil {
		panic(err)
	}
	return k
}
