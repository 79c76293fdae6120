package server_test

// The UI's row-limit check and its background jobs, on real sources: on
// SQLite a direct download past the row limit is refused before it starts
// with the job offered (the check counts the rows: SQLite has no
// estimate); on PostgreSQL the planner's estimate decides when it can; the
// password-protected download of a job's result is posted as the page's
// script posts it, a form body with the CSRF token of the page's cookie.

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exportd/exportd/datasets"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/connect"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/sourcetest"
)

const uiJobsYAML = `
connections:
  main: {url: "sqlite:items.db"}
datasets:
  capped:
    title: 제한된 목록
    sql: SELECT id, name FROM items WHERE id <= :upto ORDER BY id
    params: [{name: upto, type: int, min: 1, default: 100000}]
    columns: [{name: id, type: int}, {name: name, type: string}]
    row_limit: 1000
  sealed:
    sql: SELECT id, name FROM items WHERE id <= 3 ORDER BY id
    columns: [{name: id, type: int}, {name: name, type: string}]
    encryption: optional
`

// newUIJobsServer serves uiJobsYAML over 1,500 items (ids 1…1500) with
// background jobs; ac, when not nil, is its access control.
func newUIJobsServer(t *testing.T, ac *auth.Config) string {
	t.Helper()
	dir := t.TempDir()
	cfg, src := itemsSource(t, dir, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500) INSERT INTO items SELECT i, '이름' || i FROM n`, uiJobsYAML)
	m := startJobs(t, dir, cfg, src, nil)
	srv := (&fixture{cfg: cfg, src: src}).start(t, func(c *server.Config) {
		c.Jobs = m
		if ac != nil {
			c.Auth = auth.New(*ac)
		}
	})
	return srv.URL
}

// On SQLite (no row estimate) the UI's check counts the rows: the row
// limit itself downloads, one row more is refused before anything starts,
// with the background job offered, and that job delivers every row. The
// API's stream does not count: it runs, and stops at the limit.
func TestUIRowLimitOffersJob(t *testing.T) {
	base := newUIJobsServer(t, nil)
	c := client(t)
	noRedirect := &http.Client{Transport: c.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// 1,000 rows: the limit itself is a direct download.
	resp, body := do(t, c, "GET", base+"/ui/datasets/capped/check?upto=1000&format=csv", nil)
	var sub struct{ URL string }
	if err := json.Unmarshal(body, &sub); err != nil || resp.StatusCode != 200 || sub.URL != "/v1/datasets/capped/export.csv?upto=1000" {
		t.Fatalf("check of 1,000 rows: %s %s", resp.Status, body)
	}
	if resp, _ := do(t, noRedirect, "GET", base+"/ui/datasets/capped/download?upto=1000&format=csv", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("download of 1,000 rows: %s", resp.Status)
	}

	// 1,001 rows: the script's check answers 409 suggesting the job…
	resp, body = do(t, c, "GET", base+"/ui/datasets/capped/check?upto=1001&format=csv", nil)
	if e := decodeError(t, body); resp.StatusCode != http.StatusConflict || e.Error.Code != "row_limit" || e.Error.Suggest != "job" ||
		!strings.Contains(e.Error.Message, "more than 1000 rows") {
		t.Errorf("check of 1,001 rows: %s %s", resp.Status, body)
	}
	// …and the form's submission without JavaScript shows the form again
	// with the notice, the values kept and the background button there.
	resp, body = do(t, noRedirect, "GET", base+"/ui/datasets/capped/download?upto=1001&format=csv", nil)
	page := string(body)
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("download of 1,001 rows: %s", resp.Status)
	}
	for _, want := range []string{
		`<div class="notice warn" id="notice" role="alert">이 조건은 바로 내려받기에는 너무 큽니다: 백그라운드에서 준비하세요.`,
		`data-jobs="/v1/datasets/capped/jobs"`,
		`<button type="button" id="background" hidden>백그라운드에서 준비</button>`,
		`name="upto" value="1001"`,
		`<input type="radio" name="format" value="csv" checked>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}

	// The stream is not counted: it runs, and stops at the limit.
	streamStopsAtLimit(t, c, base+"/v1/datasets/capped/export.csv?upto=1001")

	// The job the page offers, with the form's values, has every row.
	resp, body = do(t, c, "POST", base+"/v1/datasets/capped/jobs", map[string]any{"format": "csv", "params": map[string]any{"upto": []string{"1001"}}})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("job: %s %s", resp.Status, body)
	}
	var j jobs.Job
	json.Unmarshal(body, &j)
	j = waitJob(t, c, base, j.ID, nil)
	resp, body = do(t, c, "GET", base+"/v1/jobs/"+j.ID+"/download", nil)
	rows := readTable(t, exportd.FormatCSV, body)
	if resp.StatusCode != 200 || len(rows) != 1002 || rows[1001][0] != "1001" || rows[1001][1] != "이름1001" {
		t.Errorf("job's file: %s, %d rows", resp.Status, len(rows))
	}
}

// The password-protected download of a job's result as the page's script
// makes it: a form body, from a principal the browser proves by itself
// (the anonymous one), sent by the browser from the server's own page
// (Sec-Fetch-Site: same-origin). The same request from another site is
// refused for CSRF.
func TestUIPasswordDownloadCSRF(t *testing.T) {
	base := newUIJobsServer(t, &auth.Config{Anonymous: &auth.Principal{Roles: []string{"admin"}}})
	browser := client(t)
	resp, body := do(t, browser, "GET", base+"/ui/datasets/sealed", nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`data-encryption="optional"`)) {
		t.Fatalf("form: %s", resp.Status)
	}
	sameOrigin := []string{"Sec-Fetch-Site", "same-origin", "Origin", base}

	// The job, posted as the script posts it.
	resp, body = do(t, browser, "POST", base+"/v1/datasets/sealed/jobs", map[string]any{"format": "xlsx", "params": map[string]any{}}, sameOrigin...)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("job: %s %s", resp.Status, body)
	}
	var j jobs.Job
	json.Unmarshal(body, &j)
	j = waitJob(t, browser, base, j.ID, nil)
	dl := base + "/v1/jobs/" + j.ID + "/download"
	password := url.Values{"password": {"correct horse 42"}}

	wantCSRF := func(name string, resp *http.Response, body []byte) {
		t.Helper()
		if e := decodeError(t, body); resp.StatusCode != http.StatusForbidden || e.Error.Code != "csrf" {
			t.Errorf("%s: %s %s, want 403 csrf", name, resp.Status, body)
		}
	}
	// From another site: a cross-site form, another origin.
	resp, body = do(t, browser, "POST", dl, password, "Sec-Fetch-Site", "cross-site")
	wantCSRF("cross-site", resp, body)
	resp, body = do(t, browser, "POST", dl, password, "Origin", "https://evil.example")
	wantCSRF("another origin", resp, body)

	// The script's request (and a form's): the encrypted workbook, with
	// its length.
	for _, tc := range []struct {
		name   string
		header []string
	}{
		{"the page's script", sameOrigin},
		{"a client that is no browser", nil},
	} {
		resp, body = do(t, browser, "POST", dl, password, tc.header...)
		if resp.StatusCode != 200 || resp.ContentLength != int64(len(body)) || !bytes.HasPrefix(body, []byte{0xd0, 0xcf, 0x11, 0xe0}) {
			t.Errorf("%s: %s, %d bytes (Content-Length %d), starts %x", tc.name, resp.Status, len(body), resp.ContentLength, body[:min(8, len(body))])
		}
		if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") {
			t.Errorf("%s: Content-Disposition %q", tc.name, cd)
		}
	}
}

// On PostgreSQL the planner's estimate decides when it is clearly on one
// side of the limit (beyond twice the limit: refused without a count), and
// the rows are counted when it is near: the limit itself downloads, one
// row more is refused.
func TestUIRowLimitPostgres(t *testing.T) {
	u := sourcetest.IntegrationURL(t, "EXPORTD_POSTGRES_URL")
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	table := sourcetest.UniqueName("ui_rows")
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS " + table) })
	for _, s := range []string{
		`CREATE TABLE ` + table + ` (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`,
		`INSERT INTO ` + table + ` SELECT i, 'name ' || i FROM generate_series(1, 300) AS i`,
		`ANALYZE ` + table,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "datasets.yaml")
	yaml := fmt.Sprintf(`
connections:
  main: {url: %q}
datasets:
  near:
    sql: SELECT id, name FROM %[2]s WHERE id <= :upto ORDER BY id
    params: [{name: upto, type: int}]
    row_limit: 200
  far:
    sql: SELECT id, name FROM %[2]s WHERE id <= :upto ORDER BY id
    params: [{name: upto, type: int}]
    row_limit: 10
`, u, table)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := datasets.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	src, err := connect.Open(t.Context(), u, exportd.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	if _, ok := src.(exportd.Estimator); !ok {
		t.Fatal("the PostgreSQL source is no longer an Estimator")
	}
	srv := (&fixture{cfg: cfg, src: src}).start(t, nil)
	c := client(t)
	for _, tc := range []struct {
		path    string
		status  int
		message string // in the 409's message: which check refused
	}{
		{"/ui/datasets/near/check?upto=150", 200, ""},
		{"/ui/datasets/near/check?upto=200", 200, ""},
		{"/ui/datasets/near/check?upto=201", 409, "more than 200 rows"},    // counted
		{"/ui/datasets/far/check?upto=300", 409, "rows are expected"},      // estimated
		{"/ui/datasets/far/check?upto=10", 200, ""},                        // counted: 10
		{"/ui/datasets/far/check?upto=11", 409, "more than 10 rows"},       // counted: 11
		{"/ui/datasets/near/download?upto=201", 409, "너무 큽니다: 조건을 좁혀 주세요"}, // no jobs here
	} {
		resp, body := do(t, c, "GET", srv.URL+tc.path, nil)
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.message) {
			t.Errorf("%s: %s %s, want %d %q", tc.path, resp.Status, body, tc.status, tc.message)
		}
	}
	// The stream asks the planner only: far beyond the limit is refused
	// before it starts; near it, it starts and aborts at the limit.
	if resp, body := do(t, c, "GET", srv.URL+"/v1/datasets/far/export.csv?upto=300", nil); resp.StatusCode != 409 || !strings.Contains(string(body), "rows are expected") {
		t.Errorf("stream far beyond: %s %s", resp.Status, body)
	}
	streamStopsAtLimit(t, c, srv.URL+"/v1/datasets/near/export.csv?upto=201")
}

// streamStopsAtLimit checks that the stream at u was not refused before
// its query ran but stopped at the row limit: aborted once started, or,
// when the rows came before anything was sent, answered with the row
// limit's error (which of the two depends on the speed of the rows).
func streamStopsAtLimit(t *testing.T, c *http.Client, u string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case resp.StatusCode == 200 && err != nil: // aborted mid-stream
	case resp.StatusCode == 409 && strings.Contains(string(got), exportd.ErrRowLimit.Error()) && !strings.Contains(string(got), "expected"):
	default:
		t.Errorf("stream past the limit: %s, %d bytes, read error %v: %.200s (want it stopped at the limit, not refused before)", resp.Status, len(got), err, got)
	}
}
