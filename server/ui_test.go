package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/datasets"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/sqlite"
)

const uiYAML = `
timezone: Asia/Seoul
connections:
  main: {url: "sqlite:ui.db"}
datasets:
  people:
    title: 회원 목록
    description: 가입한 회원
    sql: |
      SELECT id, name FROM people
       WHERE id >= :min AND (:name IS NULL OR name LIKE :name) AND (:grade IS NULL OR grade = :grade)
         AND (:active OR NOT :active) AND :since IS NOT NULL AND :at IS NOT NULL
         AND grade IN (:grades)
       ORDER BY id
    params:
      - {name: min, type: int, label: 최소 번호, min: 1, max: 1000, default: 1}
      - {name: name, type: string, label: 이름, max_length: 10, pattern: "^[가-힣a-z%]+$"}
      - {name: grade, type: enum, values: [gold, silver]}
      - {name: grades, type: enum, list: true, values: [gold, silver], default: [gold, silver]}
      - {name: active, type: bool, default: true}
      - {name: since, type: date, label: 가입일, required: true, min: "2020-01-01"}
      - {name: at, type: datetime, default: "2024-01-01 09:30"}
    columns: [{name: id, type: int}, {name: name, type: string}]
    filename: 회원_{since}
  large:
    title: 큰 표
    sql: SELECT id, name FROM people ORDER BY id
    row_limit: 2
  endless:
    sql: |
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000)
      SELECT i FROM n WHERE i > 999999990
    row_limit: 1
`

func newUIServer(t *testing.T) *Server {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "ui.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{
		`CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, grade TEXT)`,
		`INSERT INTO people VALUES (1, '김민준', 'gold'), (2, '이서연', 'silver'), (3, 'kim', 'gold')`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "datasets.yaml")
	if err := os.WriteFile(cfgPath, []byte(uiYAML), 0o644); err != nil {
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
	s, err := New(Config{Datasets: cfg, Sources: map[string]exportd.Source{"main": src},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func do(t *testing.T, s *Server, method, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	return w
}

// checkPage checks what every page must be: UTF-8 HTML in Korean, for
// phones, and nothing inline that a CSP of script-src 'self' would block.
func checkPage(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	body := w.Body.String()
	for _, want := range []string{`<html lang="ko">`, `<meta charset="utf-8">`, `name="viewport"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`),                   // inline script
		regexp.MustCompile(`<script(?:(?:\s[^>]*)?)>$`),                  // a script without src
		regexp.MustCompile(`\son[a-z]+\s*=`),                             // inline event handler
		regexp.MustCompile(`\sstyle\s*=|<style`),                         // inline style
		regexp.MustCompile(`(?i)javascript:|https?://[^"]*\.(?:js|css)`), // CDN or javascript: URL
	} {
		if m := bad.FindString(body); m != "" {
			t.Errorf("page has %q", m)
		}
	}
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(body, -1) {
		if !strings.Contains(m, ` src="/ui/static/`) {
			t.Errorf("script %s is not a local file", m)
		}
	}
	return body
}

func TestUIIndex(t *testing.T) {
	s := newUIServer(t)
	w := do(t, s, "GET", "/")
	if w.Code != http.StatusOK {
		t.Fatalf("GET / = %d", w.Code)
	}
	body := checkPage(t, w)
	for _, want := range []string{"회원 목록", "가입한 회원", `href="/ui/datasets/people"`, `href="/ui/datasets/large"`, "최대 2행"} {
		if !strings.Contains(body, want) {
			t.Errorf("index lacks %q", want)
		}
	}
	if c := w.Result().Cookies(); len(c) != 0 {
		t.Errorf("cookies %v (the pages set none)", c)
	}
	// Unknown routes outside the UI are still JSON 404s.
	if w := do(t, s, "GET", "/nothing"); w.Code != 404 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Errorf("GET /nothing = %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	if w := do(t, s, "GET", "/ui/datasets/nope"); w.Code != 404 {
		t.Errorf("unknown dataset = %d", w.Code)
	}
}

// The form has one input per parameter, typed from its declaration.
func TestUIForm(t *testing.T) {
	s := newUIServer(t)
	w := do(t, s, "GET", "/ui/datasets/people")
	if w.Code != http.StatusOK {
		t.Fatalf("GET form = %d", w.Code)
	}
	body := checkPage(t, w)
	for _, want := range []string{
		`<form class="export" id="export" method="get" action="/ui/datasets/people/download"`,
		`<label for="p-min">최소 번호</label>`,
		`<input type="number" id="p-min" name="min" value="1" min="1" max="1000" step="1" aria-describedby="err-min">`,
		`<input type="text" id="p-name" name="name" value="" maxlength="10" pattern=".*(?:^[가-힣a-z%]&#43;$).*" aria-describedby="err-name">`,
		`<select id="p-grade" name="grade" aria-describedby="err-grade">`,
		`<option value="">(지정 안 함)</option>`,
		`<select id="p-grades" name="grades" multiple size="2" aria-describedby="err-grades">`,
		`<option value="gold" selected>gold</option>`,
		`<input type="checkbox" id="p-active" name="active" value="true" checked`,
		`가입일 <abbr class="req" title="필수">*</abbr>`,
		`<input type="date" id="p-since" name="since" value="" min="2020-01-01" required`,
		`<input type="datetime-local" id="p-at" name="at" value="2024-01-01T09:30" step="60"`,
		`<input type="radio" name="format" value="xlsx" checked>`,
		`id="download">다운로드</button>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("form lacks %s", want)
		}
	}
	// Without Config.Jobs there is no background job to offer (the
	// browser tests cover the form with jobs).
	for _, bad := range []string{`id="background"`, `data-jobs=`, `href="/ui/jobs"`} {
		if strings.Contains(body, bad) {
			t.Errorf("form without jobs has %s", bad)
		}
	}
	// Values in the query string pre-fill the form.
	body = do(t, s, "GET", "/ui/datasets/people?since=2021-02-03&format=csv&grades=gold").Body.String()
	for _, want := range []string{`name="since" value="2021-02-03"`, `value="csv" checked`, `<option value="silver">silver</option>`} {
		if !strings.Contains(body, want) {
			t.Errorf("pre-filled form lacks %s", want)
		}
	}
}

// Without JavaScript: a valid form redirects to the streaming URL, and the
// download there is the export.
func TestUIDownloadRedirects(t *testing.T) {
	s := newUIServer(t)
	w := do(t, s, "GET", "/ui/datasets/people/download?min=1&name=&grade=&grades=gold&since=2020-01-01&at=2024-01-01T09%3A30&format=csv")
	if w.Code != http.StatusSeeOther {
		t.Fatalf("download = %d %s", w.Code, w.Body)
	}
	loc := w.Header().Get("Location")
	want := "/v1/datasets/people/export.csv?active=false&at=2024-01-01T09%3A30&grades=gold&min=1&since=2020-01-01"
	if loc != want {
		t.Fatalf("Location %s\nwant     %s", loc, want)
	}
	w = do(t, s, "GET", loc)
	if w.Code != 200 || w.Body.String() != "\ufeffid,name\n1,김민준\n3,kim\n" {
		t.Fatalf("export = %d %q", w.Code, w.Body)
	}
	if cd := w.Header().Get("Content-Disposition"); !strings.Contains(cd, "filename*=UTF-8''%ED%9A%8C%EC%9B%90_2020-01-01.csv") {
		t.Errorf("Content-Disposition %s", cd)
	}
}

// Bad values show the form again with the message next to each field.
func TestUIDownloadBadParams(t *testing.T) {
	s := newUIServer(t)
	w := do(t, s, "GET", "/ui/datasets/people/download?min=0&name=x%21&since=&grades=gold&format=pdf&extra=1")
	if w.Code != http.StatusBadRequest {
		t.Fatalf("download = %d", w.Code)
	}
	body := checkPage(t, w)
	for _, want := range []string{
		`<div class="field invalid" data-field="min">`,
		`<p class="error" id="err-min">must be at least 1</p>`,
		`<p class="error" id="err-name">does not match the pattern ^[가-힣a-z%]&#43;$</p>`,
		`<p class="error" id="err-since">required</p>`,
		`<p class="error" id="err-format">unknown format &#34;pdf&#34;`,
		`<p class="error" id="err-grade" hidden></p>`,
		`parameter &#34;extra&#34;: unknown parameter`,
		`name="min" value="0"`,                                                 // what was typed stays
		`<input type="checkbox" id="p-active" name="active" value="true" aria`, // unticked stays unticked
	} {
		if !strings.Contains(body, want) {
			t.Errorf("form lacks %s", want)
		}
	}
}

// The script's check answers the API's JSON errors, naming each field.
func TestUICheck(t *testing.T) {
	s := newUIServer(t)
	w := do(t, s, "GET", "/ui/datasets/people/check?min=5000&since=2020-01-01")
	if w.Code != 400 {
		t.Fatalf("check = %d", w.Code)
	}
	var e struct{ Error Error }
	json.Unmarshal(w.Body.Bytes(), &e)
	if e.Error.Code != "bad_parameter" || len(e.Error.Details) != 1 || e.Error.Details[0] != (FieldError{"min", "must be at most 1000"}) {
		t.Errorf("check error %+v", e.Error)
	}
	w = do(t, s, "GET", "/ui/datasets/people/check?since=2020-01-01&active=true&format=xlsx")
	var sub uiSubmission
	if err := json.Unmarshal(w.Body.Bytes(), &sub); err != nil || w.Code != 200 {
		t.Fatalf("check = %d %s", w.Code, w.Body)
	}
	if sub.URL != "/v1/datasets/people/export.xlsx?active=true&since=2020-01-01" || sub.FileName != "회원_2020-01-01.xlsx" || sub.Params["since"][0] != "2020-01-01" {
		t.Errorf("check = %+v", sub)
	}
	// A fresh queue name for the download, which the stream takes.
	first := sub.Queue
	json.Unmarshal(do(t, s, "GET", "/ui/datasets/people/check?since=2020-01-01&active=true&format=xlsx").Body.Bytes(), &sub)
	if len(first) < 20 || sub.Queue == first {
		t.Errorf("queue names %q, %q: want a fresh random one each time", first, sub.Queue)
	}
	if w := do(t, s, "HEAD", sub.URL+"&queue="+sub.Queue); w.Code != 200 {
		t.Errorf("the download with its queue name: %d %s", w.Code, w.Body)
	}
	// The privacy keys are checked and passed on to the stream.
	w = do(t, s, "GET", "/ui/datasets/people/check?since=2020-01-01&columns=id")
	if err := json.Unmarshal(w.Body.Bytes(), &sub); err != nil || w.Code != 200 || sub.URL != "/v1/datasets/people/export.xlsx?active=false&columns=id&since=2020-01-01" {
		t.Errorf("check with columns = %d %s", w.Code, w.Body)
	}
	w = do(t, s, "GET", "/ui/datasets/people/download?since=2020-01-01&columns=nope")
	if body := w.Body.String(); w.Code != 400 || !strings.Contains(body, `parameter &#34;columns&#34;: `) {
		t.Errorf("download with a bad column = %d\n%s", w.Code, body)
	}
	if w := do(t, s, "GET", "/ui/datasets/nope/check"); w.Code != 404 {
		t.Errorf("unknown dataset = %d", w.Code)
	}
}

// An export beyond the row limit offers the background job: SQLite has no
// row estimate, so the check counts the rows (3, limit 2).
func TestUITooLarge(t *testing.T) {
	s := newUIServer(t)
	w := do(t, s, "GET", "/ui/datasets/large/download?format=xlsx")
	if w.Code != http.StatusConflict {
		t.Fatalf("download = %d", w.Code)
	}
	body := checkPage(t, w)
	if !strings.Contains(body, `<div class="notice warn" id="notice" role="alert">이 조건은 바로 내려받기에는 너무 큽니다`) {
		t.Errorf("no row-limit notice in\n%s", body)
	}
	w = do(t, s, "GET", "/ui/datasets/large/check")
	var e struct{ Error Error }
	json.Unmarshal(w.Body.Bytes(), &e)
	if w.Code != 409 || e.Error.Suggest != "job" {
		t.Errorf("check = %d %+v", w.Code, e.Error)
	}
}

// A count that does not finish within its budget lets the download
// proceed, as it would without the check: endless passes its limit (nine
// rows, limit 1), but only after a billion steps.
func TestUIRowCountBudget(t *testing.T) {
	s := newUIServer(t)
	defer func(b time.Duration) { uiCountBudget = b }(uiCountBudget)
	uiCountBudget = 200 * time.Millisecond
	w := do(t, s, "GET", "/ui/datasets/endless/check?format=csv")
	var sub uiSubmission
	if err := json.Unmarshal(w.Body.Bytes(), &sub); err != nil || w.Code != 200 || sub.URL != "/v1/datasets/endless/export.csv" {
		t.Errorf("check = %d %s", w.Code, w.Body)
	}
	if w := do(t, s, "GET", "/ui/datasets/endless/download?format=csv"); w.Code != http.StatusSeeOther {
		t.Errorf("download = %d", w.Code)
	}
}

func TestUIJobsPageAndAssets(t *testing.T) {
	s := newUIServer(t)
	w := do(t, s, "GET", "/ui/jobs")
	if body := checkPage(t, w); w.Code != 200 || !strings.Contains(body, `data-api="/v1/jobs" data-titles="{&#34;large&#34;:&#34;큰 표&#34;,&#34;people&#34;:&#34;회원 목록&#34;}"`) {
		t.Errorf("jobs page = %d", w.Code)
	}
	for _, f := range []string{"app.js", "style.css"} {
		w := do(t, s, "GET", "/ui/static/"+f+"?v="+uiAssetVersion)
		if w.Code != 200 || !strings.Contains(w.Header().Get("Cache-Control"), "immutable") || w.Body.Len() < 1000 {
			t.Errorf("%s = %d %q (%d bytes)", f, w.Code, w.Header().Get("Cache-Control"), w.Body.Len())
		}
	}
	if w := do(t, s, "GET", "/ui/static/app.js"); w.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("unversioned asset: Cache-Control %q", w.Header().Get("Cache-Control"))
	}
}

func TestLocalInputAndDigits(t *testing.T) {
	for in, want := range map[string]string{
		"2024-01-01 09:30": "2024-01-01T09:30", "2024-01-01T09:30:15": "2024-01-01T09:30:15",
		"2024-01-01T00:30:00Z": "2024-01-01T09:30", "": "", "junk": "junk",
	} {
		if got := localInput(in, mustLoc(t, "Asia/Seoul")); got != want {
			t.Errorf("localInput(%q) = %q, want %q", in, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 2000000: "2,000,000", -12345: "-12,345"} {
		if got := groupDigits(n); got != want {
			t.Errorf("groupDigits(%d) = %q", n, got)
		}
	}
}

func mustLoc(t *testing.T, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
