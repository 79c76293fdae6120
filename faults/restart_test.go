package faults

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// dbServer is a private database server a test may stop and start.
type dbServer interface {
	Stop()
	Start()
}

const pgDatasets = `
datasets:
  crawl:
    sql: SELECT n, pg_sleep(0.002)::text AS s FROM generate_series(1, 100000) AS n
    columns: [{name: n, type: int}, {name: s, type: string}]
  small:
    sql: SELECT n FROM generate_series(1, 1000) AS n
    columns: [{name: n, type: int}]
  jobcrawl:
    sql: SELECT n, pg_sleep(0.001)::text AS s FROM generate_series(1, 3000) AS n
    columns: [{name: n, type: int}, {name: s, type: string}]
`

const mariaDatasets = `
datasets:
  crawl:
    sql: SELECT seq AS n, SLEEP(0.002) AS s FROM seq_1_to_100000
    columns: [{name: n, type: int}, {name: s, type: int}]
  small:
    sql: SELECT seq AS n FROM seq_1_to_1000
    columns: [{name: n, type: int}]
  jobcrawl:
    sql: SELECT seq AS n, SLEEP(0.001) AS s FROM seq_1_to_3000
    columns: [{name: n, type: int}, {name: s, type: int}]
`

// PostgreSQL restarted (fast shutdown) under a stream and a job.
func TestPostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private PostgreSQL server")
	}
	pg := startPostgres(t)
	testRestart(t, pg, startRig(t, pg.URL, pgDatasets, ""))
}

// MariaDB restarted (shutdown on SIGTERM) under a stream and a job.
func TestMariaDBRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private MariaDB server")
	}
	m := startMariaDB(t)
	testRestart(t, m, startRig(t, m.URL, mariaDatasets, ""))
}

// testRestart stops db in the middle of a stream: the client's download
// fails (never a complete-looking file), /readyz answers 503 while db is
// down, the first export after db is back succeeds (the pool does not
// hand out a dead connection) and /readyz answers 200; then a job whose
// attempt db's restart fails succeeds on a retry.
func testRestart(t *testing.T, db dbServer, r *rig) {
	if code := r.readyz(t); code != 200 {
		t.Fatalf("/readyz: %d before the fault", code)
	}
	// A download in progress.
	resp, err := http.Get(r.srv.URL + "/v1/datasets/crawl/export.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	lines := 0
	for lines < 200 { // the rows are flowing
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatalf("after %d lines: %v", lines, err)
		}
		lines++
	}
	stopped := time.Now()
	db.Stop()
	t.Logf("database stopped in %v", time.Since(stopped).Round(time.Millisecond))
	n, err := io.Copy(io.Discard, br)
	failedAfter := time.Since(stopped)
	if err == nil {
		t.Fatalf("the download ended cleanly after the database stopped (%d more bytes): a truncated file looks complete", n)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("download error: %v", err)
	}
	t.Logf("the client saw the download fail %v after the stop began (%v)", failedAfter.Round(time.Millisecond), err)

	// While the database is down.
	down := time.Now()
	if code := r.readyz(t); code != 503 {
		t.Fatalf("/readyz: %d while the database is down, want 503", code)
	}
	t.Logf("/readyz answered 503 in %v", time.Since(down).Round(time.Millisecond))
	// A download started while the database is down: its header leaves
	// before the query has a connection, so it starts with 200 and then
	// fails; either way it must not look complete.
	if code, body, err := r.fetch(t, "/v1/datasets/small/export.csv"); code == 200 && err == nil {
		t.Fatalf("an export while the database is down succeeded: %q", body)
	} else {
		t.Logf("an export while the database is down: status %d, %d bytes, %v", code, len(body), err)
	}

	// Back.
	db.Start()
	back := time.Now()
	code, body := r.get(t, "/v1/datasets/small/export.csv")
	if code != 200 || strings.Count(string(body), "\n") != 1001 {
		t.Fatalf("the first export after the restart: %d, %d lines", code, strings.Count(string(body), "\n"))
	}
	t.Logf("first export after the restart: ok in %v", time.Since(back).Round(time.Millisecond))
	if code := r.readyz(t); code != 200 {
		t.Fatalf("/readyz: %d after the database is back", code)
	}
	if v := r.metric(t, `exportd_exports_total{dataset="crawl",format="csv",outcome="error"}`); v != 1 {
		t.Errorf("exportd_exports_total{crawl,csv,error} = %v, want 1", v)
	}
	var logged bool
	for _, l := range r.log.lines("export") {
		if l["dataset"] == "crawl" && l["outcome"] == "error" && l["level"] == "ERROR" {
			logged = true
			t.Logf("logged: export outcome=error error=%q", l["error"])
		}
	}
	if !logged {
		t.Error("no ERROR log line for the failed export")
	}

	// A job running when the database restarts.
	j := r.submit(t, "jobcrawl", "csv")
	waitFor(t, 30*time.Second, "job running with rows", func() bool {
		j = r.job(t, j.ID)
		return j.State == "running" && j.Rows > 0
	})
	db.Stop()
	waitFor(t, 30*time.Second, "the job's attempt failing", func() bool {
		j = r.job(t, j.ID)
		return j.Error != "" || j.State == "failed"
	})
	t.Logf("job attempt %d failed: state %s, %s", j.Attempt, j.State, j.Error)
	if j.State == "failed" || j.State == "succeeded" {
		t.Fatalf("job %s after its attempt failed, want a retry", j.State)
	}
	db.Start()
	back = time.Now()
	waitFor(t, 90*time.Second, "the job succeeding", func() bool {
		j = r.job(t, j.ID)
		if j.State == "failed" || j.State == "cancelled" {
			t.Fatalf("job %s: %s", j.State, j.Error)
		}
		return j.State == "succeeded"
	})
	t.Logf("job succeeded on attempt %d, %v after the database was back", j.Attempt, time.Since(back).Round(time.Millisecond))
	if j.Attempt < 2 || j.Rows != 3000 {
		t.Fatalf("job: attempt %d, %d rows", j.Attempt, j.Rows)
	}
	code, body = r.get(t, "/v1/jobs/"+j.ID+"/download")
	if code != 200 || strings.Count(string(body), "\n") != 3001 || !strings.Contains(string(body), "\n3000,") {
		t.Fatalf("download: %d, %d lines, ends %q", code, strings.Count(string(body), "\n"), body[max(0, len(body)-20):])
	}
}
