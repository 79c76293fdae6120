package server_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exportd/exportd/datasets"

	"github.com/xuri/excelize/v2"
	"go.uber.org/goleak"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
	"github.com/exportd/exportd/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const datasetsYAML = `
timezone: Asia/Seoul
connections:
  main: {url: "sqlite:items.db"}
datasets:
  items:
    title: 품목
    sql: |
      SELECT id, name, price FROM items
       WHERE id >= :min AND (:name IS NULL OR name = :name) AND :on IS NOT NULL
       ORDER BY id
    params:
      - {name: min, type: int, min: 0, default: 0}
      - {name: name, type: string}
      - {name: on, type: date, default: "2024-01-01"}
    columns:
      - {name: id, type: int}
      - {name: name, type: string}
      - {name: price, type: float}
    filename: 회원목록_{on}
    key: id
  limited:
    sql: SELECT id, name FROM items ORDER BY id
    columns: [{name: id, type: int}, {name: name, type: string}]
    row_limit: 1000
  broken:
    sql: |
      SELECT id, CASE WHEN id = 1500 THEN abs(-9223372036854775807 - 1) ELSE id END AS v
        FROM items ORDER BY id
    columns: [{name: id, type: int}, {name: v, type: int}]
  undeclared:
    sql: SELECT id, name FROM items ORDER BY id
`

// fixture is a SQLite database of n items (ids 10, 20, …) and its
// datasets config.
type fixture struct {
	cfg *exportd.Config
	src exportd.Source
	db  *sql.DB // a writable connection, for inserts during a test
}

func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "items.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, s := range []string{
		`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL)`,
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %d - 1)
			INSERT INTO items SELECT (i + 1) * 10, '이름' || i, i * 1.5 FROM n`, n),
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "datasets.yaml")
	if err := os.WriteFile(cfgPath, []byte(datasetsYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := datasets.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	src, err := sqlite.Open(context.Background(), path, exportd.SourceOptions{Location: cfg.Location})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return &fixture{cfg: cfg, src: src, db: db}
}

// start starts a server on f's data; edit adjusts the config.
func (f *fixture) start(t *testing.T, edit func(*server.Config)) *servertest.Server {
	cfg := server.Config{
		Datasets: f.cfg,
		Sources:  map[string]exportd.Source{"main": f.src},
		Logger:   slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
	if edit != nil {
		edit(&cfg)
	}
	return servertest.Start(t, cfg)
}

// client returns an HTTP client whose idle connections are closed at the
// end of the test (for goleak).
func client(t *testing.T) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func get(t *testing.T, c *http.Client, u string, header ...string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// wantCSV is the CSV of items rows [from, to) (0-based).
func wantCSV(from, to int) string {
	var b strings.Builder
	b.WriteString("\ufeffid,name,price\n")
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%d,이름%d,%s\n", (i+1)*10, i, strconv.FormatFloat(float64(i)*1.5, 'f', -1, 64))
	}
	return b.String()
}

func TestExportXLSX(t *testing.T) {
	f := newFixture(t, 300)
	srv := f.start(t, nil)
	resp, body, err := get(t, client(t), srv.URL+"/v1/datasets/items/export.xlsx?on=2024-03-01")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, err %v: %s", resp.StatusCode, err, body)
	}
	for k, v := range map[string]string{
		"Content-Type":           exportd.FormatXLSX.ContentType(),
		"Content-Disposition":    `attachment; filename="2024-03-01.xlsx"; filename*=UTF-8''%ED%9A%8C%EC%9B%90%EB%AA%A9%EB%A1%9D_2024-03-01.xlsx`,
		"X-Accel-Buffering":      "no",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	x, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	rows, err := x.GetRows("items")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 301 {
		t.Fatalf("%d sheet rows, want 301", len(rows))
	}
	if got := strings.Join(rows[0], ","); got != "id,name,price" {
		t.Errorf("header %q", got)
	}
	for i, r := range rows[1:] {
		want := []string{strconv.Itoa((i + 1) * 10), "이름" + strconv.Itoa(i), strconv.FormatFloat(float64(i)*1.5, 'f', -1, 64)}
		if strings.Join(r, "|") != strings.Join(want, "|") {
			t.Fatalf("row %d = %q, want %q", i, r, want)
		}
	}
}

func TestExportCSVAndParams(t *testing.T) {
	f := newFixture(t, 50)
	srv := f.start(t, nil)
	c := client(t)
	for _, tc := range []struct{ query, want string }{
		{"", wantCSV(0, 50)},
		{"?min=255", wantCSV(25, 50)},
		{"?name=%EC%9D%B4%EB%A6%847", wantCSV(7, 8)},
		// Injection attempts are bound as plain values: no rows match, nothing breaks.
		{"?name=" + urlEscape(`' OR '1'='1`), wantCSV(0, 0)},
		{"?name=" + urlEscape(`x'); DROP TABLE items; --`), wantCSV(0, 0)},
	} {
		resp, body, err := get(t, c, srv.URL+"/v1/datasets/items/export.csv"+tc.query)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: status %d, err %v: %s", tc.query, resp.StatusCode, err, body)
		}
		if string(body) != tc.want {
			t.Errorf("%s: got\n%q\nwant\n%q", tc.query, body, tc.want)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
	}
	var n int
	if err := f.db.QueryRow(`SELECT count(*) FROM items`).Scan(&n); err != nil || n != 50 {
		t.Fatalf("items after injection attempts: %d, %v", n, err)
	}
}

func urlEscape(s string) string { return url.QueryEscape(s) }

// apiError decodes an error body.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
		Details []struct {
			Field string `json:"field"`
		} `json:"details"`
		Suggest string `json:"suggest"`
	} `json:"error"`
}

func decodeError(t *testing.T, body []byte) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("not a JSON error: %v: %q", err, body)
	}
	return e
}

func TestBadInput(t *testing.T) {
	f := newFixture(t, 10)
	srv := f.start(t, nil)
	c := client(t)
	for _, tc := range []struct {
		path        string
		status      int
		code, field string
	}{
		{"/v1/datasets/nope/export.xlsx", 404, "unknown_dataset", "name"},
		{"/v1/datasets/nope", 404, "unknown_dataset", "name"},
		{"/v1/datasets/items/export.pdf", 400, "unknown_format", "format"},
		{"/v1/datasets/items/export.XLSX", 400, "unknown_format", "format"},
		{"/v1/datasets/items/report.csv", 404, "not_found", "file"},
		{"/v1/datasets/items/export.csv?min=abc", 400, "bad_parameter", "min"},
		{"/v1/datasets/items/export.csv?min=-1", 400, "bad_parameter", "min"},
		{"/v1/datasets/items/export.csv?on=2024-13-01", 400, "bad_parameter", "on"},
		{"/v1/datasets/items/export.csv?min=1&min=2", 400, "bad_parameter", "min"},
		{"/v1/datasets/items/export.csv?nope=1", 400, "bad_parameter", "nope"},
		{"/v1/datasets/items/export.csv?format=xlsx", 400, "bad_parameter", "format"},
		{"/v1/datasets/items/export.csv?min=%ZZ", 400, "bad_query", ""},
		{"/v1/datasets/items/export.csv?part=1", 400, "bad_parameter", "part_rows"},
		{"/v1/datasets/items/export.csv?part=0&part_rows=5", 400, "bad_parameter", "part"},
		{"/v1/datasets/items/export.csv?part=1&part_rows=0", 400, "bad_parameter", "part_rows"},
		{"/v1/datasets/limited/export.csv?part=1&part_rows=5", 400, "bad_parameter", "part"},
		{"/v1/datasets/items/export.csv?part=9&part_rows=5", 404, "no_such_part", "part"},
		{"/v1/datasets/items/export.csv?part=2&part_rows=5&part_from=abc", 400, "bad_parameter", "part_from"},
		{"/v1/datasets/items/export.csv?name=" + strings.Repeat("x", 9000), 414, "query_too_long", ""},
		{"/v2/nothing", 404, "not_found", ""},
	} {
		resp, body, err := get(t, c, srv.URL+tc.path)
		if err != nil {
			t.Fatal(err)
		}
		e := decodeError(t, body)
		if resp.StatusCode != tc.status || e.Error.Code != tc.code || e.Error.Field != tc.field {
			t.Errorf("%.80s: %d %s field %q, want %d %s field %q (%s)", tc.path, resp.StatusCode, e.Error.Code, e.Error.Field, tc.status, tc.code, tc.field, e.Error.Message)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%.80s: Content-Type %q", tc.path, ct)
		}
		if resp.Header.Get("Content-Disposition") != "" {
			t.Errorf("%.80s: an error carries Content-Disposition", tc.path)
		}
	}
	// Several bad parameters: each is named.
	_, body, _ := get(t, c, srv.URL+"/v1/datasets/items/export.csv?min=x&on=y")
	e := decodeError(t, body)
	if len(e.Error.Details) != 2 || e.Error.Details[0].Field != "min" || e.Error.Details[1].Field != "on" {
		t.Errorf("details %+v", e.Error.Details)
	}
}

func TestDatasetsAndHealth(t *testing.T) {
	f := newFixture(t, 10)
	srv := f.start(t, nil)
	c := client(t)
	resp, body, _ := get(t, c, srv.URL+"/v1/datasets")
	var list struct {
		Datasets []struct {
			Name    string
			Key     string
			Params  []exportd.Param
			Columns []exportd.Column
			Exports map[string]string
		}
	}
	if err := json.Unmarshal(body, &list); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v %s", resp.StatusCode, err, body)
	}
	if len(list.Datasets) != 4 || list.Datasets[0].Name != "items" || list.Datasets[0].Key != "id" ||
		len(list.Datasets[0].Params) != 3 || len(list.Datasets[0].Columns) != 3 ||
		list.Datasets[0].Exports["csv"] != "/v1/datasets/items/export.csv" {
		t.Errorf("datasets: %s", body)
	}
	resp, body, _ = get(t, c, srv.URL+"/v1/datasets/items")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"title": "품목"`) {
		t.Errorf("dataset: %d %s", resp.StatusCode, body)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, body, _ := get(t, c, srv.URL+p)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"ok"`) {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
	f.src.Close() // the database is gone: not ready
	resp, body, _ = get(t, c, srv.URL+"/readyz")
	if resp.StatusCode != 503 || !strings.Contains(string(body), `"main"`) {
		t.Errorf("readyz after close: %d %s", resp.StatusCode, body)
	}
}

// A database error after the response has started aborts the connection:
// the client's download fails instead of ending like a complete file.
func TestErrorMidStreamAborts(t *testing.T) {
	f := newFixture(t, 3000)
	var logs syncBuffer
	srv := f.start(t, func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	c := client(t)
	for _, tc := range []struct{ dataset, outcome string }{
		{"broken", "error"},
		{"limited", "row_limit"},
	} {
		for _, format := range []string{"csv", "xlsx", "jsonl"} {
			for _, gz := range []string{"", "gzip"} {
				resp, body, err := get(t, c, srv.URL+"/v1/datasets/"+tc.dataset+"/export."+format, "Accept-Encoding", gz)
				if resp.StatusCode != 200 || err == nil {
					t.Errorf("%s.%s %s: status %d, read error %v after %d bytes; want 200 and a failed read", tc.dataset, format, gz, resp.StatusCode, err, len(body))
				}
			}
		}
	}
	// One log line per export, carrying the error; no other line names it.
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var exports int
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "export" {
			exports++
			if m["error"] == nil || m["rows"] == nil || m["bytes"] == nil || m["duration"] == nil {
				t.Errorf("export line without its fields: %s", l)
			}
		} else if strings.Contains(l, "integer overflow") || strings.Contains(l, "row limit") {
			t.Errorf("error logged twice: %s", l)
		}
	}
	if exports != 12 {
		t.Errorf("%d export log lines, want 12:\n%s", exports, logs.String())
	}
	m := scrape(t, c, srv.URL)
	if got := m[`exportd_exports_total{dataset="broken",format="csv",outcome="error"}`]; got != 2 {
		t.Errorf("broken csv errors: %v", got)
	}
	if got := m[`exportd_exports_total{dataset="limited",format="xlsx",outcome="row_limit"}`]; got != 2 {
		t.Errorf("limited xlsx row_limit: %v", got)
	}
}

// An export that fails before anything was sent gets a JSON error.
func TestErrorBeforeStart(t *testing.T) {
	f := newFixture(t, 10)
	srv := f.start(t, func(c *server.Config) {
		c.Sources["main"] = failingSource{f.src}
	})
	resp, body, _ := get(t, client(t), srv.URL+"/v1/datasets/undeclared/export.csv")
	if e := decodeError(t, body); resp.StatusCode != 500 || e.Error.Code != "internal" || resp.Header.Get("Content-Disposition") != "" {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
}

type failingSource struct{ exportd.Source }

func (failingSource) Query(context.Context, exportd.Query) (exportd.Rows, error) {
	return nil, fmt.Errorf("no such table: nothing")
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, 100)
	srv := f.start(t, nil)
	c := client(t)
	for range 2 {
		get(t, c, srv.URL+"/v1/datasets/items/export.csv")
	}
	get(t, c, srv.URL+"/v1/datasets/items/export.xlsx")
	m := scrape(t, c, srv.URL)
	for k, want := range map[string]float64{
		`exportd_exports_total{dataset="items",format="csv",outcome="ok"}`:       2,
		`exportd_exports_total{dataset="items",format="xlsx",outcome="ok"}`:      1,
		`exportd_export_rows_total{dataset="items",format="csv"}`:                200,
		`exportd_export_duration_seconds_count{dataset="items",format="csv"}`:    2,
		`exportd_export_first_byte_seconds_count{dataset="items",format="xlsx"}`: 1,
		`exportd_active_streams`:       0,
		`exportd_http10_streams_total`: 0,
	} {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	if got := m[`exportd_export_bytes_total{dataset="items",format="csv"}`]; got != float64(2*len(wantCSV(0, 100))) {
		t.Errorf("csv bytes %v, want %d", got, 2*len(wantCSV(0, 100)))
	}
}

// A stream served over HTTP/1.0 is counted (an abort would look complete).
func TestHTTP10Counted(t *testing.T) {
	f := newFixture(t, 10)
	srv := f.start(t, nil)
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /v1/datasets/items/export.csv HTTP/1.0\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	conn.Close()
	if resp.StatusCode != 200 || string(body) != wantCSV(0, 10) {
		t.Errorf("%d %q", resp.StatusCode, body)
	}
	if got := scrape(t, client(t), srv.URL)["exportd_http10_streams_total"]; got != 1 {
		t.Errorf("http10 streams %v", got)
	}
}

// scrape returns the server's metrics, sample name with labels → value.
func scrape(t *testing.T, c *http.Client, base string) map[string]float64 {
	t.Helper()
	_, body, err := get(t, c, base+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(body), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err == nil {
			out[l[:i]] = v
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// gateSource holds back every query's first row until the gate is
// opened (or the query's context ends): a database that is silent for as
// long as a test needs, without timing.
type gateSource struct {
	exportd.Source
	gate    chan struct{}
	started chan struct{} // receives once per query
}

func newGate(src exportd.Source) *gateSource {
	return &gateSource{Source: src, gate: make(chan struct{}), started: make(chan struct{}, 100)}
}

func (g *gateSource) open() { close(g.gate) }

func (g *gateSource) Query(ctx context.Context, q exportd.Query) (exportd.Rows, error) {
	rows, err := g.Source.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	g.started <- struct{}{}
	return &gateRows{Rows: rows, ctx: ctx, gate: g.gate}, nil
}

type gateRows struct {
	exportd.Rows
	ctx    context.Context
	gate   chan struct{}
	passed bool
}

func (r *gateRows) Next(dst []exportd.Value) bool {
	if !r.passed {
		select {
		case <-r.gate:
		case <-r.ctx.Done():
			return false
		}
		r.passed = true
	}
	return r.Rows.Next(dst)
}

func (r *gateRows) Err() error {
	if err := r.ctx.Err(); err != nil && !r.passed {
		return err
	}
	return r.Rows.Err()
}

var syncMarker = []byte{0, 0, 0xff, 0xff}

// While the database is silent, keep-alive flushes send empty deflate
// blocks (XLSX natively, CSV/JSONL gzip-encoded), and the file's content
// is unchanged by them.
func TestKeepAlive(t *testing.T) {
	f := newFixture(t, 200)
	plainSrv := f.start(t, nil)
	c := client(t)
	for _, tc := range []struct{ format, encoding string }{
		{"xlsx", ""},
		{"csv", "gzip"},
		{"jsonl", "gzip"},
		{"tsv", "gzip, deflate, br"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			g := newGate(f.src)
			srv := f.start(t, func(c *server.Config) {
				c.Sources = map[string]exportd.Source{"main": g}
				c.KeepAlive = 5 * time.Millisecond
			})
			req, _ := http.NewRequest("GET", srv.URL+"/v1/datasets/items/export."+tc.format, nil)
			if tc.encoding != "" {
				req.Header.Set("Accept-Encoding", tc.encoding)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if tc.encoding != "" && resp.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
			}
			// Read while the database is silent until three more empty
			// deflate blocks have arrived after the first flush.
			var raw []byte
			buf := make([]byte, 64)
			for bytes.Count(raw, syncMarker) < 4 {
				n, err := resp.Body.Read(buf)
				raw = append(raw, buf[:n]...)
				if err != nil {
					t.Fatalf("read before the first row: %v", err)
				}
			}
			g.open()
			rest, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			raw = append(raw, rest...)

			// The same export without keep-alives (and without gzip).
			_, plain, err := get(t, c, plainSrv.URL+"/v1/datasets/items/export."+tc.format)
			if err != nil {
				t.Fatal(err)
			}
			if tc.format == "xlsx" {
				if got, want := sheetRows(t, raw), sheetRows(t, plain); got != want {
					t.Errorf("workbook with keep-alives differs:\n%.300s\nwant\n%.300s", got, want)
				}
				return
			}
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain) {
				t.Errorf("gzip content with keep-alives differs: %d bytes, want %d", len(got), len(plain))
			}
		})
	}
}

// sheetRows returns the first sheet's cells as text.
func sheetRows(t *testing.T, b []byte) string {
	t.Helper()
	x, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	rows, err := x.GetRows(x.GetSheetList()[0])
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(rows)
}

// A client that leaves mid-download cancels the export at once; the
// server's goroutines end (goleak checks the whole package at exit).
func TestClientLeaves(t *testing.T) {
	f := newFixture(t, 100)
	g := newGate(f.src)
	srv := f.start(t, func(c *server.Config) { c.Sources = map[string]exportd.Source{"main": g} })
	c := client(t)
	for _, format := range []string{"xlsx", "csv"} {
		resp, err := c.Get(srv.URL + "/v1/datasets/items/export." + format)
		if err != nil {
			t.Fatal(err)
		}
		<-g.started
		resp.Body.Close() // leave while the query is silent
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := scrape(t, c, srv.URL)
		if m[`exportd_cancelled_streams_total{dataset="items",format="xlsx"}`] == 1 &&
			m[`exportd_cancelled_streams_total{dataset="items",format="csv"}`] == 1 && m["exportd_active_streams"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("streams not cancelled: %v", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Parts are key ranges: together they are the whole export, and a client
// that follows Exportd-Part-Next links is not disturbed by inserts.
func TestParts(t *testing.T) {
	f := newFixture(t, 25) // ids 10..250
	srv := f.start(t, nil)
	c := client(t)
	var all string
	for k := 1; k <= 3; k++ {
		resp, body, err := get(t, c, fmt.Sprintf("%s/v1/datasets/items/export.csv?part=%d&part_rows=10", srv.URL, k))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("part %d: %d %v %s", k, resp.StatusCode, err, body)
		}
		want := wantCSV((k-1)*10, min(k*10, 25))
		if string(body) != want {
			t.Errorf("part %d:\n%s\nwant\n%s", k, body, want)
		}
		if last := resp.Header.Get("Exportd-Part-Last"); last != strconv.FormatBool(k == 3) {
			t.Errorf("part %d: Exportd-Part-Last %q", k, last)
		}
		if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, fmt.Sprintf("_part%d.csv", k)) {
			t.Errorf("part %d: %s", k, cd)
		}
		all += strings.TrimPrefix(string(body), "\ufeffid,name,price\n")
	}
	if "\ufeffid,name,price\n"+all != wantCSV(0, 25) {
		t.Errorf("parts together differ from the whole export")
	}

	// Follow the links while rows are inserted.
	resp, part1, _ := get(t, c, srv.URL+"/v1/datasets/items/export.csv?part=1&part_rows=10")
	next := resp.Header.Get("Exportd-Part-Next")
	if resp.Header.Get("Exportd-Part-Key-Before") != "110" || !strings.Contains(next, "part_from=110") {
		t.Fatalf("part 1 headers: %v", resp.Header)
	}
	if _, err := f.db.Exec(`INSERT INTO items VALUES (55, 'inserted', 0), (2000, 'appended', 0)`); err != nil {
		t.Fatal(err)
	}
	_, part2, _ := get(t, c, srv.URL+next)
	if string(part2) != wantCSV(10, 20) {
		t.Errorf("part 2 after an insert into part 1's range:\n%s\nwant\n%s", part2, wantCSV(10, 20))
	}
	if string(part1) != wantCSV(0, 10) {
		t.Errorf("part 1: %s", part1)
	}
	// Counted afresh (no part_from), part 2 starts one key earlier.
	_, fresh, _ := get(t, c, srv.URL+"/v1/datasets/items/export.csv?part=2&part_rows=10")
	if !strings.HasPrefix(strings.TrimPrefix(string(fresh), "\ufeffid,name,price\n"), "100,") {
		t.Errorf("fresh part 2: %s", fresh)
	}
	// The appended row lands in the last part.
	resp, part3, _ := get(t, c, srv.URL+"/v1/datasets/items/export.csv?part=3&part_rows=10&part_from=210")
	if !strings.HasSuffix(string(part3), "2000,appended,0\n") || resp.Header.Get("Exportd-Part-Last") != "true" {
		t.Errorf("part 3: %s", part3)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }
