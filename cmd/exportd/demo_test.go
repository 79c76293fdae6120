package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/exportd/exportd/sourcetest"
)

// `exportd export --db URL --query SQL` on PostgreSQL and MariaDB: the
// query's rows as CSV (types rendered per the values table) and as JSON
// Lines, and a one-line error with exit code 1 for a query the database
// refuses.
func TestExportDBURLs(t *testing.T) {
	for _, tc := range []struct{ name, env, query string }{
		{"postgres", "EXPORTD_POSTGRES_URL", `SELECT i AS id, '이름' || i AS name, i * 1.5 AS price, i % 2 = 0 AS even,
			CAST('2024-03-09 14:05:06' AS timestamp) AS at, CAST(NULL AS text) AS nothing
			FROM generate_series(1, 3) AS i ORDER BY i`},
		{"mysql", "EXPORTD_MYSQL_URL", `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3)
			SELECT i AS id, CONCAT('이름', i) AS name, i * 1.5 AS price, i % 2 = 0 AS even,
			CAST('2024-03-09 14:05:06' AS DATETIME) AS at, CAST(NULL AS CHAR) AS nothing FROM n ORDER BY i`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := sourcetest.IntegrationURL(t, tc.env)
			dir := t.TempDir()
			out, stderr, code := run(t, dir, "export", "--db", url, "--query", tc.query, "--format", "csv", "-o", "-")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			records, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "\ufeff"))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			got := make([]string, len(records))
			for i, r := range records {
				got[i] = strings.Join(r, "|")
			}
			// MySQL has no boolean type: i % 2 = 0 is an integer there.
			even := map[bool]string{true: "true", false: "false"}
			if tc.name == "mysql" {
				even = map[bool]string{true: "1", false: "0"}
			}
			want := []string{"id|name|price|even|at|nothing"}
			for i := 1; i <= 3; i++ {
				want = append(want, strings.Join([]string{strconv.Itoa(i), "이름" + strconv.Itoa(i),
					strconv.FormatFloat(float64(i)*1.5, 'f', 1, 64), even[i%2 == 0], "2024-03-09 14:05:06", ""}, "|"))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("CSV:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}

			// JSON Lines into a file: one object per row, numbers as numbers.
			_, stderr, code = run(t, dir, "export", "--db", url, "--query", tc.query, "--format", "jsonl", "-o", "rows.jsonl")
			if code != 0 {
				t.Fatalf("jsonl: exit %d: %s", code, stderr)
			}
			data, err := os.ReadFile(filepath.Join(dir, "rows.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			if len(lines) != 3 {
				t.Fatalf("%d JSON lines: %s", len(lines), data)
			}
			var row map[string]any
			if err := json.Unmarshal([]byte(lines[1]), &row); err != nil {
				t.Fatal(err)
			}
			if row["id"] != 2.0 || row["name"] != "이름2" || row["nothing"] != nil {
				t.Errorf("JSON line 2: %v", row)
			}

			_, stderr, code = run(t, dir, "export", "--db", url, "--query", "SELECT * FROM no_such_table_here", "-o", "x.csv")
			if code != 1 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "no_such_table_here") {
				t.Errorf("bad query: exit %d, stderr %q; want exit 1 and one line naming the table", code, stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "x.csv")); !os.IsNotExist(err) {
				t.Errorf("a failed export left x.csv behind (%v)", err)
			}
		})
	}
}

// `exportd demo` prepares the data and serves it: the UI, the datasets,
// a streamed download, a personal dataset with its purpose, and a
// background job; SIGTERM stops it with exit code 0.
func TestDemoServes(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var log bytes.Buffer
	cmd := exec.Command(exportdBin, "demo", "--dir", filepath.Join(dir, "demo"), "--rows", "3000", "--addr", addr)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("demo output:\n%s", log.String())
		}
	})
	base := "http://" + addr
	for deadline := time.Now().Add(2 * time.Minute); ; {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo did not serve: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	get := func(path string) (int, http.Header, []byte) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return resp.StatusCode, resp.Header, body
	}

	if code, _, body := get("/"); code != 200 || !strings.Contains(string(body), "member_scores") {
		t.Errorf("UI: %d %.200s", code, body)
	}
	code, _, body := get("/v1/datasets")
	if code != 200 || !strings.Contains(string(body), `"accounts"`) || !strings.Contains(string(body), `"member_scores"`) {
		t.Errorf("datasets: %d %.300s", code, body)
	}
	code, h, body := get("/v1/datasets/accounts/export.csv")
	if code != 200 || !strings.Contains(h.Get("Content-Disposition"), "attachment") {
		t.Fatalf("accounts.csv: %d %v", code, h)
	}
	accounts := body
	records, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\ufeff")))).ReadAll()
	if err != nil || len(records) != 3001 {
		t.Fatalf("accounts.csv: %d records, %v", len(records), err)
	}
	// The personal dataset needs its purpose, then streams all 4,300 members.
	if code, _, body := get("/v1/datasets/member_scores/export.csv"); code != 400 || !strings.Contains(string(body), `"purpose`) {
		t.Errorf("member_scores without a purpose: %d %s", code, body)
	}
	code, _, body = get("/v1/datasets/member_scores/export.csv?purpose=score_review&purpose_text=CLI+test+of+the+demo+server")
	if code != 200 || bytes.Count(body, []byte("\n")) < 4301 {
		t.Errorf("member_scores: %d, %d lines", code, bytes.Count(body, []byte("\n")))
	}

	// A background job runs to completion and its file equals the stream.
	resp, err := http.Post(base+"/v1/datasets/accounts/jobs", "application/json", strings.NewReader(`{"format":"csv"}`))
	if err != nil {
		t.Fatal(err)
	}
	var job struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	if resp.StatusCode != 202 || job.ID == "" {
		t.Fatalf("submit: %d %+v", resp.StatusCode, job)
	}
	for deadline := time.Now().Add(2 * time.Minute); job.State != "succeeded"; time.Sleep(100 * time.Millisecond) {
		_, _, b := get("/v1/jobs/" + job.ID)
		if err := json.Unmarshal(b, &job); err != nil {
			t.Fatalf("job: %v: %s", err, b)
		}
		if job.State == "failed" || time.Now().After(deadline) {
			t.Fatalf("job: %s", b)
		}
	}
	if code, _, file := get("/v1/jobs/" + job.ID + "/download"); code != 200 || !bytes.Equal(file, accounts) {
		t.Errorf("job download: %d, %d bytes", code, len(file))
	}

	cmd.Process.Signal(syscall.SIGTERM)
	stopped = true
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("demo after SIGTERM: %v", err)
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-exited
		t.Error("demo did not stop within a minute of SIGTERM")
		return
	}
	// A demo's messages are calm: nothing at warning or error level (it
	// once opened with a WARN about a random job link key). The process
	// has exited: its output is complete.
	for line := range strings.Lines(log.String()) {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Errorf("demo log: %s", line)
		}
	}
}
