package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"
)

// jobsYAML has a slow dataset on an SQLite file: each row costs a small
// recursive query, so a job runs for seconds.
const jobsYAML = `
timezone: UTC
auth:
  anonymous: {roles: [admin]}
connections:
  data: {url: "sqlite:data.db"}
datasets:
  slow:
    sql: |
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows)
      SELECT i, (WITH RECURSIVE m(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM m WHERE j < 200 + (i % 2))
                 SELECT sum(j) FROM m) AS s, 'row ' || i AS label
        FROM n
    params: [{name: rows, type: int, min: 1, default: 40000}]
    columns: [{name: i, type: int}, {name: s, type: int}, {name: label, type: string}]
`

const jobsSecret = "e2e-jobs-secret-0123456789abcdef"

// jobsDir writes the datasets file (and its SQLite file) into a new
// directory and returns the datasets file's path.
func jobsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS marker (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	cfg := filepath.Join(dir, "datasets.yaml")
	if err := os.WriteFile(cfg, []byte(jobsYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// node is an `exportd serve --jobs` process.
type node struct {
	name string
	URL  string
	Addr string
	args []string
	cmd  *exec.Cmd
	log  string
}

func startNode(t *testing.T, name, cfg string, flags ...string) *node {
	t.Helper()
	addr := freeAddr(t)
	n := &node{name: name, Addr: addr, URL: "http://" + addr, log: filepath.Join(t.TempDir(), name+".log"),
		args: append([]string{"serve", "--config", cfg, "--addr", addr, "--log-format", "json", "--jobs", "--link-secret", jobsSecret}, flags...)}
	n.start(t)
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			b, _ := os.ReadFile(n.log)
			t.Logf("%s log:\n%s", name, tail(string(b), 4000))
		}
	})
	return n
}

func (n *node) start(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(exportdBin(t), n.args...)
	n.cmd.Stdout, n.cmd.Stderr = f, f
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	waitHTTP(t, n.URL+"/healthz")
}

// kill kills the process with SIGKILL: no shutdown of any kind.
func (n *node) kill() {
	if n.cmd != nil && n.cmd.ProcessState == nil {
		n.cmd.Process.Kill()
		n.cmd.Wait()
	}
}

func (n *node) stop() {
	if n.cmd != nil && n.cmd.ProcessState == nil {
		n.cmd.Process.Signal(syscall.SIGTERM)
		n.cmd.Wait()
	}
}

// ran reports whether the node's log says it started job id.
func (n *node) ran(id string) bool {
	b, _ := os.ReadFile(n.log)
	for _, l := range strings.Split(string(b), "\n") {
		var rec struct {
			Msg string
			Job json.Number
		}
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == "job started" && rec.Job.String() == id {
			return true
		}
	}
	return false
}

type e2eJob struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	Rows        int64  `json:"rows"`
	Attempt     int    `json:"attempt"`
	Size        int64  `json:"size"`
	Error       string `json:"error"`
	DownloadURL string `json:"download_url"`
}

func getJSON(t *testing.T, method, url string, body []byte, v any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(v)
	return resp.StatusCode
}

// downloadStatus fetches the owner's download of job id and returns the
// status and body; 0 when the server cannot be reached.
func downloadStatus(t *testing.T, base, id string) (int, []byte) {
	resp, err := http.Get(base + "/v1/jobs/" + id + "/download")
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// directCSV runs the same export with the CLI, straight to a file.
func directCSV(t *testing.T, cfg string, rows int) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "direct.csv")
	cmd := exec.Command(exportdBin(t), "export", "--config", cfg, "--dataset", "slow", "--param", fmt.Sprint("rows=", rows), "-o", out, "-q")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("direct export: %v: %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// watch polls the job through base (and the download, which must never
// succeed before the job has) until it succeeds; kill, if set, is called
// once the job has rows and returns the base to go on with.
func watch(t *testing.T, bases func() []string, id string, deadline time.Duration, onRows func()) e2eJob {
	t.Helper()
	end := time.Now().Add(deadline)
	fired := onRows == nil
	for {
		var j e2eJob
		for _, base := range bases() {
			if code, b := downloadStatus(t, base, id); code != 0 && code != 404 && code != 409 {
				getJSON(t, "GET", base+"/v1/jobs/"+id, nil, &j)
				if code != 200 || j.State != "succeeded" || int64(len(b)) != j.Size {
					t.Fatalf("download answered %d (%d bytes) while the job is %s", code, len(b), j.State)
				}
			}
			if getJSON(t, "GET", base+"/v1/jobs/"+id, nil, &j) == 200 {
				break
			}
		}
		switch j.State {
		case "succeeded":
			return j
		case "failed", "cancelled", "expired":
			t.Fatalf("job %s: %s", j.State, j.Error)
		}
		if !fired && j.State == "running" && j.Rows > 0 {
			fired = true
			onRows()
		}
		if time.Now().After(end) {
			t.Fatalf("job not done after %v: %+v", deadline, j)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A server killed with SIGKILL in the middle of a job, and started again
// with the same (default) flags, runs the job again at once — it need not
// wait for any timeout — and the file is right; no partial result was
// downloadable at any time, and the dead attempt's temporary file is gone.
func TestJobSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 and a job rescue: not in -short")
	}
	t.Parallel()
	cfg := jobsDir(t)
	store := t.TempDir()
	n := startNode(t, "node", cfg, "--jobs-storage", "file://"+store)
	var j e2eJob
	if code := getJSON(t, "POST", n.URL+"/v1/datasets/slow/jobs", []byte(`{"format": "csv", "params": {"rows": 20000}}`), &j); code != 202 {
		t.Fatalf("submit: %d", code)
	}
	var restarted time.Time
	done := watch(t, func() []string { return []string{n.URL} }, j.ID, 3*time.Minute, func() {
		n.kill()
		n.start(t)
		restarted = time.Now()
	})
	took := time.Since(restarted)
	t.Logf("job %s done on attempt %d, %.1f s after the restart", done.ID, done.Attempt, took.Seconds())
	if done.Attempt < 2 || restarted.IsZero() {
		t.Errorf("the job was not interrupted: attempt %d", done.Attempt)
	}
	if took > 60*time.Second {
		t.Errorf("the job took %v after the restart, want at most 60 s", took)
	}
	code, got := downloadStatus(t, n.URL, j.ID)
	if code != 200 || !bytes.Equal(got, directCSV(t, cfg, 20000)) {
		t.Fatalf("download %d: %d bytes, not the direct export's", code, len(got))
	}
	onlyResult(t, store, j.ID, done.Attempt)
}

// onlyResult checks that the result directory holds job id's result of
// attempt and nothing else (no temporary file of a dead attempt).
func onlyResult(t *testing.T, store, id string, attempt int) {
	t.Helper()
	var files []string
	filepath.WalkDir(store, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(store, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if want := regexp.MustCompile(fmt.Sprintf(`^results/%s/%d-[0-9a-f]{32}\.csv$`, id, attempt)); len(files) != 1 || !want.MatchString(files[0]) {
		t.Errorf("result storage holds %v, want only %s", files, want)
	}
}

// Two nodes on one PostgreSQL queue and one result directory, behind
// nginx: the node running a job is killed, the other finishes it, and the
// result downloads through nginx and from each node.
func TestJobsTwoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("two nodes and a job rescue: not in -short")
	}
	t.Parallel()
	pg := pgURL(t)
	schema := "exportd_e2e_jobs_" + randID()
	t.Cleanup(func() {
		if conn, err := pgx.Connect(context.Background(), pg); err == nil {
			conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(context.Background())
		}
	})
	sep := "?"
	if strings.Contains(pg, "?") {
		sep = "&"
	}
	cfg := jobsDir(t)
	// The default timings: the other node takes the job over within two
	// minutes of the kill.
	store := t.TempDir()
	flags := []string{"--jobs-queue", pg + sep + "river_schema=" + schema, "--jobs-storage", "file://" + store, "--jobs-workers", "1"}
	a := startNode(t, "a", cfg, flags...)
	b := startNode(t, "b", cfg, flags...)
	base := startNginx(t, a.Addr+"; server "+b.Addr)

	var j e2eJob
	if code := getJSON(t, "POST", base+"/v1/datasets/slow/jobs", []byte(`{"format": "csv", "params": {"rows": 20000}}`), &j); code != 202 {
		t.Fatalf("submit through nginx: %d", code)
	}
	var victim, survivor *node
	var killed time.Time
	done := watch(t, func() []string { return []string{base} }, j.ID, 3*time.Minute, func() {
		switch {
		case a.ran(j.ID):
			victim, survivor = a, b
		case b.ran(j.ID):
			victim, survivor = b, a
		default:
			t.Fatal("neither node's log shows the job")
		}
		victim.kill()
		killed = time.Now()
	})
	took := time.Since(killed)
	if victim == nil || !survivor.ran(j.ID) || done.Attempt < 2 {
		t.Fatalf("the job was not finished by the other node (attempt %d)", done.Attempt)
	}
	t.Logf("job %s: started on %s, finished on %s %.1f s after the kill", j.ID, victim.name, survivor.name, took.Seconds())
	if took > 2*time.Minute {
		t.Errorf("the other node finished the job %v after the kill, want within 2 min", took)
	}
	onlyResult(t, store, j.ID, done.Attempt)
	want := directCSV(t, cfg, 20000)
	victim.start(t) // back, to show that either node serves the result
	for name, u := range map[string]string{"nginx": base, "a": a.URL, "b": b.URL} {
		if code, got := downloadStatus(t, u, j.ID); code != 200 || !bytes.Equal(got, want) {
			t.Errorf("download through %s: %d, %d bytes (want %d)", name, code, len(got), len(want))
		}
		// The signed link too.
		resp, err := http.Get(u + done.DownloadURL)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("signed link through %s: %v %v", name, err, resp.Status)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
}

func randID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}
