package server

import (
	"archive/zip"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/datasets"
	"github.com/exportd/exportd/sqlite"
)

const sheetsYAML = `
connections:
  main: {url: "sqlite:s.db"}
privacy:
  purposes: {review: 검토}
  audit: {key_file: audit.key}
datasets:
  people:
    personal: true
    sheets:
      - name: 명단
        sql: SELECT name, branch FROM r
        columns: [{name: name, header: 이름, personal: true}, {name: branch, header: 지점}]
      - name: 점수
        sql: SELECT score FROM r
        columns: [{name: score, header: 점수, type: int}]
    access:
      admin: {all: full}
  report:
    title: 성적 보고서
    params: [{name: min, type: int, default: 0}]
    sheets:
      - name: 회원별 평균
        sql: SELECT name, avg(score) AS avg FROM r WHERE score >= :min GROUP BY name ORDER BY name
        columns: [{name: name, header: 회원}, {name: avg, header: 평균, type: float, total: average}]
      - name: 지점별 합계
        sql: SELECT branch, sum(score) AS total FROM r GROUP BY branch ORDER BY branch
        columns: [{name: branch, header: 지점}, {name: total, header: 합계, type: int, total: sum}]
`

func newSheetsServer(t *testing.T) *Server {
	t.Helper()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE r (name TEXT, branch TEXT, score INTEGER)`,
		`INSERT INTO r VALUES ('김민준', '강남', 80), ('김민준', '강남', 90), ('이서연', '부산', 70)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "datasets.yaml")
	os.WriteFile(path, []byte(sheetsYAML), 0o644)
	os.WriteFile(filepath.Join(dir, "audit.key"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	cfg, err := datasets.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	src, err := sqlite.Open(context.Background(), filepath.Join(dir, "s.db"), exportd.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	keys, err := audit.LoadKeys(cfg.Privacy.AuditKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.Open(t.Context(), "sqlite:"+filepath.Join(dir, "audit.db"), audit.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	s, err := New(Config{Datasets: cfg, Sources: map[string]exportd.Source{"main": src}, Audit: trail,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The stream of a dataset of several sheets: one workbook; a ZIP of one
// CSV per sheet (not gzip-encoded); one sheet alone as a plain CSV; an
// unknown sheet a 400 naming the field; its description lists the sheets.
func TestSheetsStream(t *testing.T) {
	s := newSheetsServer(t)
	w := do(t, s, "GET", "/v1/datasets/report/export.xlsx")
	if w.Code != 200 || w.Header().Get("Content-Type") != exportd.FormatXLSX.ContentType() {
		t.Fatalf("xlsx: %d %s %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	x, err := excelize.OpenReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if got := strings.Join(x.GetSheetList(), "|"); got != "회원별 평균|지점별 합계" {
		t.Errorf("sheets %s", got)
	}
	if v, _ := x.GetCellValue("지점별 합계", "B4"); v != "240" {
		t.Errorf("total %q", v)
	}

	w = do(t, s, "GET", "/v1/datasets/report/export.csv?min=75", "Accept-Encoding", "gzip")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/zip" || w.Header().Get("Content-Encoding") != "" ||
		!strings.Contains(w.Header().Get("Content-Disposition"), `filename="report.zip"`) {
		t.Fatalf("csv: %d %v", w.Code, w.Header())
	}
	zr, err := zip.NewReader(bytes.NewReader(w.Body.Bytes()), int64(w.Body.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		got = append(got, f.Name+"="+strings.TrimPrefix(string(b), "\ufeff"))
	}
	if want := "회원별 평균.csv=회원,평균\n김민준,85\n|지점별 합계.csv=지점,합계\n강남,170\n부산,70\n"; strings.Join(got, "|") != want {
		t.Errorf("entries %q", got)
	}

	w = do(t, s, "GET", "/v1/datasets/report/export.csv?sheet="+url.QueryEscape("지점별 합계"))
	if w.Code != 200 || w.Body.String() != "\ufeff지점,합계\n강남,170\n부산,70\n" || w.Header().Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Errorf("one sheet: %d %q %s", w.Code, w.Body, w.Header().Get("Content-Type"))
	}

	w = do(t, s, "GET", "/v1/datasets/report/export.csv?sheet=nope")
	var e struct {
		Error struct{ Code, Field, Message string }
	}
	json.Unmarshal(w.Body.Bytes(), &e)
	if w.Code != http.StatusBadRequest || e.Error.Field != "sheet" || !strings.Contains(e.Error.Message, `unknown sheet "nope"`) {
		t.Errorf("unknown sheet: %d %s", w.Code, w.Body)
	}

	w = do(t, s, "GET", "/v1/datasets/report")
	var info datasetInfo
	json.Unmarshal(w.Body.Bytes(), &info)
	if len(info.Sheets) != 2 || info.Sheets[1].Name != "지점별 합계" || info.Sheets[1].Columns[1].Total != exportd.TotalSum {
		t.Errorf("description %s", w.Body)
	}
}

// The UI lists the sheets, offers them in the form, and refuses a form
// with none ticked next to the field.
func TestSheetsUI(t *testing.T) {
	s := newSheetsServer(t)
	body := checkPage(t, do(t, s, "GET", "/"))
	if !strings.Contains(body, "시트 2개: 회원별 평균, 지점별 합계") {
		t.Errorf("index lacks the sheets:\n%s", body)
	}
	body = checkPage(t, do(t, s, "GET", "/ui/datasets/report"))
	for _, want := range []string{`<input type="checkbox" name="sheet" value="회원별 평균" checked>`, `<input type="checkbox" name="sheet" value="지점별 합계" checked>`} {
		if !strings.Contains(body, want) {
			t.Errorf("form lacks %s", want)
		}
	}
	w := do(t, s, "GET", "/ui/datasets/report/download?format=csv&sheet=&sheet="+url.QueryEscape("지점별 합계"))
	if w.Code != http.StatusSeeOther || !strings.Contains(w.Header().Get("Location"), "sheet=%EC%A7%80") {
		t.Fatalf("download = %d %s", w.Code, w.Header().Get("Location"))
	}
	// A personal dataset's columns, per sheet: those the roles may see
	// (here none of the personal ones: no roles).
	body = checkPage(t, do(t, s, "GET", "/ui/datasets/people"))
	for _, want := range []string{`value="명단.branch" checked> 명단 · 지점`, `value="점수.score" checked> 점수 · 점수`} {
		if !strings.Contains(body, want) {
			t.Errorf("form lacks %s", want)
		}
	}
	if strings.Contains(body, `value="명단.name"`) {
		t.Error("the form offers a personal column the roles may not see")
	}
	w = do(t, s, "GET", "/ui/datasets/report/download?format=csv&sheet=")
	body = checkPage(t, w)
	if w.Code != http.StatusBadRequest || !strings.Contains(body, `<p class="error" id="err-sheet">no sheet chosen</p>`) {
		t.Errorf("no sheet: %d\n%s", w.Code, body)
	}
}
