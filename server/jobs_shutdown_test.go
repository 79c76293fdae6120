package server_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/datasets"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
	"github.com/exportd/exportd/sqlite"
)

const shutdownYAML = `
connections:
  main: {url: "sqlite:wide.db"}
datasets:
  wide:
    sql: SELECT id, s FROM wide ORDER BY id
    columns: [{name: id, type: int}, {name: s, type: string}]
`

// wideRows rows of 1000 characters: a result of about 10 MB, more than
// the socket buffers hold, so that its download is still being sent when
// the server shuts down.
const wideRows = 10000

// When the server shuts down, a job's event stream ends at once (the
// browser asks again, reaching another node) instead of holding the
// shutdown for the whole grace period, while a job's file download in
// progress is sent to its end and Serve then returns nil.
func TestShutdownEndsJobEvents(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "wide.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		`CREATE TABLE wide (id INTEGER PRIMARY KEY, s TEXT NOT NULL)`,
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
			INSERT INTO wide SELECT i, hex(zeroblob(500)) FROM n`, wideRows),
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	cfg, err := datasets.ParseConfig(filepath.Join(dir, "datasets.yaml"), []byte(shutdownYAML))
	if err != nil {
		t.Fatal(err)
	}
	src, err := sqlite.Open(context.Background(), filepath.Join(dir, "wide.db"), exportd.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	sources := map[string]exportd.Source{"main": src}
	m := startJobs(t, dir, cfg, src, nil)
	// Longer than the test waits for anything: a stream that lasted
	// until the grace period is over fails it.
	const grace = 50 * time.Second
	srv := servertest.Start(t, server.Config{Datasets: cfg, Sources: sources, Jobs: m, Logger: discardLogger(), ShutdownGrace: grace})
	c := client(t)

	// A finished job, to download.
	resp, body := do(t, c, "POST", srv.URL+"/v1/datasets/wide/jobs", map[string]any{"format": "csv"})
	var done jobs.Job
	if err := json.Unmarshal(body, &done); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %s", resp.StatusCode, body)
	}
	for deadline := time.Now().Add(60 * time.Second); done.State != jobs.StateSucceeded; {
		if done.Final() || time.Now().After(deadline) {
			t.Fatalf("job %s: %s %s", done.ID, done.State, done.Error)
		}
		time.Sleep(50 * time.Millisecond)
		_, body = do(t, c, "GET", srv.URL+"/v1/jobs/"+done.ID, nil)
		json.Unmarshal(body, &done)
	}
	// A job that waits (this node no longer works jobs) and its events.
	if err := m.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, body = do(t, c, "POST", srv.URL+"/v1/datasets/wide/jobs", map[string]any{"format": "tsv"})
	var waiting jobs.Job
	if err := json.Unmarshal(body, &waiting); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %s", resp.StatusCode, body)
	}
	events, err := c.Get(srv.URL + "/v1/jobs/" + waiting.ID + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer events.Body.Close()
	lines := bufio.NewScanner(events.Body)
	if !lines.Scan() || lines.Text() != "event: progress" {
		t.Fatalf("first event line %q, %v", lines.Text(), lines.Err())
	}

	// The download, read slowly through a small receive buffer: the server
	// is still sending it when the shutdown begins.
	slow := &http.Transport{DisableCompression: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			conn.(*net.TCPConn).SetReadBuffer(16 << 10)
		}
		return conn, err
	}}
	t.Cleanup(slow.CloseIdleConnections)
	dl, err := (&http.Client{Transport: slow}).Get(srv.URL + done.DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Body.Close()
	sum := sha256.New()
	n, err := io.CopyN(sum, dl.Body, 64<<10)
	if dl.StatusCode != 200 || err != nil {
		t.Fatalf("download: %d, %d bytes, %v", dl.StatusCode, n, err)
	}

	began := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	ended := make(chan error, 1)
	var rest []string
	go func() {
		for lines.Scan() {
			rest = append(rest, lines.Text())
		}
		ended <- lines.Err()
	}()
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("the event stream ended with %v, want a clean end", err)
		}
		if strings.Contains(strings.Join(rest, "\n"), "event: done") {
			t.Errorf("the event stream said done for a waiting job: %q", rest)
		}
		t.Logf("the event stream ended %v after the shutdown began", time.Since(began).Round(time.Millisecond))
	case <-time.After(grace / 2):
		t.Fatal("the event stream is still open long after the shutdown began")
	}
	select {
	case err := <-closed:
		t.Fatalf("Serve returned (%v) while a download was being sent", err)
	default:
	}
	m2, err := io.Copy(sum, dl.Body)
	if err != nil || n+m2 != done.Size || hex.EncodeToString(sum.Sum(nil)) != done.SHA256 {
		t.Fatalf("download during the shutdown: %d of %d bytes, %v", n+m2, done.Size, err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(grace / 2):
		t.Fatal("Serve did not return after the download ended")
	}
}
