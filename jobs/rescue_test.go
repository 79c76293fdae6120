package jobs_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/exportd/exportd/datasets"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/jobs/storage"
	"github.com/exportd/exportd/jobs/storage/storagetest"
	"github.com/exportd/exportd/sqlite"
)

// held is a dataset that never ends while the table hold has a row when
// its query starts, and has heldRows rows otherwise.
const heldYAML = `
timezone: UTC
connections:
  main: {url: "sqlite:items.db"}
datasets:
  held:
    sql: |
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
        WHERE i < (SELECT CASE WHEN EXISTS (SELECT 1 FROM hold) THEN 4000000000 ELSE 20000 END))
      SELECT i, 'row ' || i AS s FROM n
    columns: [{name: i, type: int}, {name: s, type: string}]
  heldfat:
    # held with 1 KiB rows: an S3 part fills within seconds.
    sql: |
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
        WHERE i < (SELECT CASE WHEN EXISTS (SELECT 1 FROM hold) THEN 4000000000 ELSE 20000 END))
      SELECT i, hex(zeroblob(512)) AS pad FROM n
    columns: [{name: i, type: int}, {name: pad, type: string}]
`

const heldRows = 20000

// Environment of a node process (TestNodeProcess).
const (
	envNodeQueue   = "EXPORTD_JOBS_TEST_NODE_QUEUE"
	envNodeStorage = "EXPORTD_JOBS_TEST_NODE_STORAGE"
	envNodeDir     = "EXPORTD_JOBS_TEST_NODE_DIR"
	envNodeID      = "EXPORTD_JOBS_TEST_NODE_ID"
)

const testNodeTimeout = 3 * time.Second

func heldManager(t testing.TB, dir, queueURL, storageURL, nodeID string, workers int, opts ...func(*jobs.Config)) (*jobs.Manager, func()) {
	ctx := context.Background()
	cfg, err := datasets.ParseConfig(filepath.Join(dir, "datasets.yaml"), []byte(heldYAML))
	if err != nil {
		t.Fatal(err)
	}
	src, err := sqlite.Open(ctx, filepath.Join(dir, "items.db"), exportd.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := jobs.OpenQueue(ctx, queueURL)
	if err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(ctx, storageURL)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if os.Getenv(envNodeID) == "" && !testing.Verbose() {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	jc := jobs.Config{
		Datasets: cfg, Sources: map[string]exportd.Source{"main": src}, Queue: q, Storage: st,
		Links: mustKeys([]byte("0123456789abcdef0123456789abcdef")), Workers: workers, NodeID: nodeID,
		NodeTimeout: testNodeTimeout, PollInterval: 100 * time.Millisecond, ProgressInterval: 50 * time.Millisecond,
		Logger: log,
	}
	for _, o := range opts {
		o(&jc)
	}
	m, err := jobs.New(jc)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return m, func() {
		c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := m.Stop(c); err != nil {
			t.Errorf("stop: %v", err)
		}
		q.Close()
		st.Close()
		src.Close()
	}
}

// TestNodeProcess is a node of the rescue tests, run as a process of its
// own so that it can be killed with SIGKILL; it does nothing in a normal
// test run.
func TestNodeProcess(t *testing.T) {
	id := os.Getenv(envNodeID)
	if id == "" {
		t.Skip("only run as a node of TestJobsComeBack")
	}
	heldManager(t, os.Getenv(envNodeDir), os.Getenv(envNodeQueue), os.Getenv(envNodeStorage), id, 1)
	select {} // until killed
}

type nodeProc struct {
	cmd *exec.Cmd
	log string
}

func startNodeProc(t *testing.T, dir, queueURL, storageURL, id string) *nodeProc {
	t.Helper()
	p := &nodeProc{log: filepath.Join(t.TempDir(), id+".log")}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestNodeProcess$", "-test.count=1")
	p.cmd.Env = append(os.Environ(), envNodeQueue+"="+queueURL, envNodeStorage+"="+storageURL, envNodeDir+"="+dir, envNodeID+"="+id)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("node %s log:\n%s", id, b)
		}
	})
	return p
}

func (p *nodeProc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

// TestJobsComeBack kills the process of a node running a job (SIGKILL)
// and sees the job succeed: on the same node once it is back (it
// restarted: no waiting for a timeout), or on another node once the dead
// one has been silent for NodeTimeout. What the dead attempt left in the
// storage is gone; the result is whole.
func TestJobsComeBack(t *testing.T) {
	if testing.Short() {
		t.Skip("node processes killed: not in -short")
	}
	f := newFixture(t)
	// hold changes while a query runs.
	f.exec(t, "PRAGMA journal_mode=WAL")
	dir := filepath.Dir(f.path)
	for qname, queue := range queues(t) {
		for _, how := range []string{"same node", "other node"} {
			t.Run(qname+"/"+how, func(t *testing.T) {
				queueURL, storeDir := queue(t), t.TempDir()
				f.exec(t, "CREATE TABLE IF NOT EXISTS hold (x INTEGER)", "DELETE FROM hold", "INSERT INTO hold VALUES (1)")
				// This process only submits and reads jobs (no workers); it
				// opens the queue first (River's tables are made once).
				m, stop := heldManager(t, dir, queueURL, "file://"+storeDir, "submitter", -1)
				defer stop()
				a := startNodeProc(t, dir, queueURL, "file://"+storeDir, "node-a")
				ctx := context.Background()
				owner := "kim-" + randHex(4)
				j, _, err := m.Submit(ctx, jobs.Request{Owner: owner, Dataset: "held", Format: exportd.FormatCSV})
				if err != nil {
					t.Fatal(err)
				}
				j = waitJob(t, m, owner, j.ID, 60*time.Second, func(j *jobs.Job) bool { return j.State == jobs.StateRunning && j.Rows > 0 })
				// The next attempt ends.
				f.exec(t, "DELETE FROM hold")
				var partial []string
				for info, err := range mustStorage(t, storeDir).List(ctx, "results/"+j.ID+"/") {
					if err != nil {
						t.Fatal(err)
					}
					if info.Partial {
						partial = append(partial, info.Key)
					}
				}
				if len(partial) != 1 {
					t.Fatalf("the running attempt's upload: %v", partial)
				}
				a.kill()
				killed := time.Now()
				switch how {
				case "same node":
					startNodeProc(t, dir, queueURL, "file://"+storeDir, "node-a")
				case "other node":
					startNodeProc(t, dir, queueURL, "file://"+storeDir, "node-b")
				}
				done := waitJob(t, m, owner, j.ID, 90*time.Second, func(j *jobs.Job) bool { return j.Final() })
				took := time.Since(killed)
				t.Logf("%s, %s queue: the job succeeded %.1f s after the kill (attempt %d)", how, qname, took.Seconds(), done.Attempt)
				if done.State != jobs.StateSucceeded || done.Rows != heldRows || done.Attempt < 2 {
					t.Fatalf("job ended %s at attempt %d with %d rows: %s", done.State, done.Attempt, done.Rows, done.Error)
				}
				res, err := m.Open(ctx, owner, j.ID)
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(res)
				res.Close()
				if err != nil || strings.Count(string(b), "\n") != heldRows+1 || !strings.HasSuffix(strings.TrimRight(string(b), "\r\n"), fmt.Sprintf("%d,row %d", heldRows, heldRows)) {
					t.Fatalf("result of %d bytes, %d lines (%v)", len(b), strings.Count(string(b), "\n"), err)
				}
				// Only the result is left: the dead attempt's temporary
				// file was discarded.
				var keys []string
				filepath.WalkDir(storeDir, func(p string, d os.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						rel, _ := filepath.Rel(storeDir, p)
						keys = append(keys, filepath.ToSlash(rel))
					}
					return nil
				})
				if want := regexp.MustCompile(`^results/` + j.ID + `/2-[0-9a-f]{32}\.csv$`); len(keys) != 1 || !want.MatchString(keys[0]) {
					t.Errorf("storage holds %v, want only %s", keys, want)
				}
			})
		}
	}
}

// A job that runs for many NodeTimeouts on a live node is never run
// again, while another node leads and watches.
func TestLongJobNotRescued(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several node timeouts: not in -short")
	}
	f := newFixture(t)
	// hold changes while a query runs.
	f.exec(t, "PRAGMA journal_mode=WAL")
	dir := filepath.Dir(f.path)
	for qname, queue := range queues(t) {
		t.Run(qname, func(t *testing.T) {
			queueURL, storeURL := queue(t), "file://"+t.TempDir()
			f.exec(t, "CREATE TABLE IF NOT EXISTS hold (x INTEGER)", "DELETE FROM hold", "INSERT INTO hold VALUES (1)")
			t.Cleanup(func() { f.exec(t, "DELETE FROM hold") })
			a, stopA := heldManager(t, dir, queueURL, storeURL, "node-a", 1)
			defer stopA()
			_, stopB := heldManager(t, dir, queueURL, storeURL, "node-b", 1)
			defer stopB()
			ctx := context.Background()
			owner := "kim-" + randHex(4)
			j, _, err := a.Submit(ctx, jobs.Request{Owner: owner, Dataset: "held", Format: exportd.FormatCSV})
			if err != nil {
				t.Fatal(err)
			}
			waitJob(t, a, owner, j.ID, 60*time.Second, func(j *jobs.Job) bool { return j.State == jobs.StateRunning && j.Rows > 0 })
			end := time.Now().Add(5 * testNodeTimeout)
			for time.Now().Before(end) {
				got, err := a.Get(ctx, owner, j.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.State != jobs.StateRunning || got.Attempt != 1 {
					t.Fatalf("a healthy job is %s at attempt %d: %s", got.State, got.Attempt, got.Error)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if _, err := a.Cancel(ctx, owner, j.ID); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func mustStorage(t *testing.T, dir string) storage.Storage {
	t.Helper()
	st, err := storage.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitJob polls job id until ok, or fails after d.
func waitJob(t *testing.T, m *jobs.Manager, owner, id string, d time.Duration, ok func(*jobs.Job) bool) *jobs.Job {
	t.Helper()
	end := time.Now().Add(d)
	for {
		j, err := m.Get(context.Background(), owner, id)
		if err != nil {
			t.Fatal(err)
		}
		if ok(j) {
			return j
		}
		if j.Final() {
			t.Fatalf("job %s ended %s: %s", id, j.State, j.Error)
		}
		if time.Now().After(end) {
			t.Fatalf("job %s after %v: %s at attempt %d, %d rows, error %q", id, d, j.State, j.Attempt, j.Rows, j.Error)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The S3 server is killed while a job uploads its result: the attempt
// fails, a retry succeeds once the server is back, and nothing was
// downloadable before the whole result; the sweep then removes the
// multipart upload the failed attempt could not abort.
func TestS3DiesDuringJob(t *testing.T) {
	if testing.Short() {
		t.Skip("kills an S3 server: not in -short")
	}
	srv := storagetest.Start(t, "results")
	f := newFixture(t)
	f.exec(t, "PRAGMA journal_mode=WAL", "CREATE TABLE IF NOT EXISTS hold (x INTEGER)", "DELETE FROM hold", "INSERT INTO hold VALUES (1)")
	dir := filepath.Dir(f.path)
	storeURL := srv.URL("results") + "&part_size=5242880"
	m, stop := heldManager(t, dir, "sqlite:"+filepath.Join(t.TempDir(), "jobs.db"), storeURL, "node-a", 1, func(c *jobs.Config) {
		c.MaxAttempts, c.RetryBackoff = 6, 300*time.Millisecond
	})
	defer stop()
	st, err := storage.Open(context.Background(), storeURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	owner := "kim-" + randHex(4)
	j, _, err := m.Submit(ctx, jobs.Request{Owner: owner, Dataset: "heldfat", Format: exportd.FormatCSV})
	if err != nil {
		t.Fatal(err)
	}
	downloadable := func() bool {
		res, err := m.Open(ctx, owner, j.ID)
		if err != nil {
			return false
		}
		res.Close()
		return true
	}
	// The multipart upload has begun: kill the server.
	end := time.Now().Add(2 * time.Minute)
	for len(partials(t, st, "results/"+j.ID+"/")) == 0 {
		if time.Now().After(end) {
			t.Fatal("no multipart upload began")
		}
		if downloadable() {
			t.Fatal("downloadable while the first attempt runs")
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.Kill()
	f.exec(t, "DELETE FROM hold") // the next attempts end
	failed := waitJob(t, m, owner, j.ID, time.Minute, func(j *jobs.Job) bool { return j.Error != "" })
	t.Logf("attempt %d failed: %s", failed.Attempt, failed.Error)
	if downloadable() {
		t.Fatal("downloadable after a failed attempt")
	}
	srv.Restart()
	done := waitJob(t, m, owner, j.ID, 2*time.Minute, func(j *jobs.Job) bool { return j.Final() })
	if done.State != jobs.StateSucceeded || done.Rows != heldRows || done.Attempt < 2 {
		t.Fatalf("job ended %s at attempt %d with %d rows: %s", done.State, done.Attempt, done.Rows, done.Error)
	}
	res, err := m.Open(ctx, owner, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res)
	res.Close()
	if err != nil || int64(len(b)) != done.Size || strings.Count(string(b), "\n") != heldRows+1 {
		t.Fatalf("result of %d bytes (size %d), %d lines (%v)", len(b), done.Size, strings.Count(string(b), "\n"), err)
	}
	if _, err := m.Sweep(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if p := partials(t, st, "results/"); len(p) > 0 {
		t.Errorf("unfinished uploads left after the sweep: %v", p)
	}
	if !downloadable() {
		t.Error("the result is gone after the sweep")
	}
}

func partials(t *testing.T, st storage.Storage, prefix string) []string {
	t.Helper()
	var keys []string
	for info, err := range st.List(context.Background(), prefix) {
		if err != nil {
			return nil // the server may be down
		}
		if info.Partial {
			keys = append(keys, info.Key)
		}
	}
	return keys
}
