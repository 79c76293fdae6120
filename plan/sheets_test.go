package plan_test

import (
	"archive/zip"
	"bytes"
	"database/sql"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/datasets"
	"github.com/exportd/exportd/mask"
	"github.com/exportd/exportd/plan"
	"github.com/exportd/exportd/sqlite"
)

const sheetsYAML = `
connections:
  main: {url: "sqlite:people.db"}
  other: {url: "sqlite:other.db"}
privacy:
  purposes: {member_support: 회원 문의 응대}
  purpose_min_length: 10
  audit: {key_file: audit.key}
datasets:
  report:
    connection: main
    personal: true
    params: [{name: branch, type: string, default: 부산}]
    total_label: 합계
    sheets:
      - name: 명단
        sql: SELECT id, name, branch FROM people WHERE branch = :branch ORDER BY id
        columns:
          - {name: id, type: int}
          - {name: name, personal: true, mask: name}
          - {name: branch}
      - name: 지점별
        sql: SELECT branch, count(*) AS n FROM people GROUP BY branch ORDER BY branch
        columns:
          - {name: branch}
          - {name: n, type: int, total: sum}
    access:
      admin: {all: full}
      support: {all: masked}
  two:
    connection: main
    sheets:
      - {name: a, sql: SELECT count(*) AS n FROM people, columns: [{name: n, type: int}]}
      - {name: b, connection: other, sql: SELECT x FROM t, columns: [{name: x, type: int}]}
  plain:
    connection: main
    sql: SELECT id FROM people
    columns: [{name: id, type: int}]
`

func sheetsFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "people.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, branch TEXT)`,
		`INSERT INTO people VALUES (1, '김민준', '부산'), (2, '이서윤', '부산'), (3, '박지호', '부산'), (4, '최하은', '서울')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	other, err := sql.Open("sqlite", filepath.Join(dir, "other.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec(`CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	other.Close()
	os.WriteFile(filepath.Join(dir, "audit.key"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	cfg, err := datasets.ParseConfig(filepath.Join(dir, "datasets.yaml"), []byte(sheetsYAML))
	if err != nil {
		t.Fatal(err)
	}
	src, err := sqlite.Open(t.Context(), filepath.Join(dir, "people.db"), exportd.SourceOptions{})
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
	return &fixture{cfg: cfg, src: src, trail: trail}
}

// A sheet on another connection reads from that connection's source
// (Options.Sources); without it, the export fails before any byte.
func TestSheetsOtherConnection(t *testing.T) {
	f := sheetsFixture(t)
	p, err := plan.New(f.cfg, "two", plan.Request{Format: exportd.FormatCSV})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := p.Run(t.Context(), plan.Options{Source: f.src, Output: &buf}); err == nil || !strings.Contains(err.Error(), `no source for connection "other"`) || buf.Len() != 0 {
		t.Fatalf("without the other source: %v, %d bytes", err, buf.Len())
	}
	other, err := sqlite.Open(t.Context(), strings.TrimPrefix(f.cfg.Connections["other"].URL, "sqlite:"), exportd.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := p.Run(t.Context(), plan.Options{Source: f.src, Sources: map[string]exportd.Source{"other": other}, Output: &buf}); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := zr.File[1].Open()
	b, _ := io.ReadAll(rc)
	rc.Close()
	if zr.File[1].Name != "b.csv" || string(b) != "\ufeffx\n42\n" {
		t.Errorf("%s: %q", zr.File[1].Name, b)
	}
}

var support = plan.Principal{Name: "kim", Roles: []string{"support"}}

// Every sheet is masked by the role, totalled, and listed with its rows
// in the audit record.
func TestSheetsRun(t *testing.T) {
	f := sheetsFixture(t)
	p, err := plan.New(f.cfg, "report", plan.Request{Principal: support, Purpose: purpose})
	if err != nil {
		t.Fatal(err)
	}
	if p.FileName != "report.xlsx" || p.Zip() || len(p.Sheets) != 2 {
		t.Fatalf("file %q, zip %v, sheets %d", p.FileName, p.Zip(), len(p.Sheets))
	}
	var buf bytes.Buffer
	res, err := p.Run(t.Context(), plan.Options{Source: f.src, Output: &buf, Audit: f.trail})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 5 {
		t.Errorf("rows %d", res.Rows)
	}
	x, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	want := map[string]string{
		"명단":  "[[id name branch] [1 김*준 부산] [2 이*윤 부산] [3 박*호 부산]]",
		"지점별": "[[branch n] [부산 3] [서울 1] [합계 4]]",
	}
	for s, w := range want {
		rows, _ := x.GetRows(s)
		if got := fmtRows(rows); got != w {
			t.Errorf("%s: %s, want %s", s, got, w)
		}
	}
	recs := f.records(t)
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	wantCols := []string{"명단.id", "명단.name", "명단.branch", "지점별.branch", "지점별.n"}
	if !slices.Equal(recs[0].Columns, wantCols) || !slices.Equal(recs[0].Sheets, []audit.Sheet{{Name: "명단"}, {Name: "지점별"}}) {
		t.Errorf("record of intent: columns %q, sheets %v", recs[0].Columns, recs[0].Sheets)
	}
	if !slices.Equal(recs[1].Sheets, []audit.Sheet{{Name: "명단", Rows: 3}, {Name: "지점별", Rows: 2}}) || recs[1].Rows != 5 {
		t.Errorf("outcome: sheets %v, rows %d", recs[1].Sheets, recs[1].Rows)
	}
}

func fmtRows(rows [][]string) string {
	var b strings.Builder
	b.WriteString("[")
	for i, r := range rows {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString("[" + strings.Join(r, " ") + "]")
	}
	b.WriteString("]")
	return b.String()
}

// sheet= and columns= choose sheets and their columns; CSV of several
// sheets is a ZIP, of one a plain file named after it.
func TestSheetsChoice(t *testing.T) {
	f := sheetsFixture(t)
	p, err := plan.New(f.cfg, "report", plan.Request{Format: exportd.FormatCSV, Principal: support, Purpose: purpose,
		Columns: []string{"명단.id", "n"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.FileName != "report.zip" || !p.Zip() || p.ContentType() != "application/zip" {
		t.Errorf("file %q, content type %q", p.FileName, p.ContentType())
	}
	var buf bytes.Buffer
	if _, err := p.Run(t.Context(), plan.Options{Source: f.src, Output: &buf, Audit: f.trail}); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, zf := range zr.File {
		rc, _ := zf.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		got = append(got, zf.Name+":"+strings.TrimPrefix(string(b), "\xEF\xBB\xBF"))
	}
	if w := []string{"명단.csv:id\n1\n2\n3\n", "지점별.csv:n\n3\n1\n"}; !slices.Equal(got, w) {
		t.Errorf("entries %q, want %q", got, w)
	}

	p, err = plan.New(f.cfg, "report", plan.Request{Format: exportd.FormatCSV, Principal: support, Purpose: purpose, Sheets: []string{"지점별"}})
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if _, err := p.Run(t.Context(), plan.Options{Source: f.src, Output: &buf, Audit: f.trail}); err != nil {
		t.Fatal(err)
	}
	if p.FileName != "report-지점별.csv" || p.Zip() || buf.String() != "\xEF\xBB\xBFbranch,n\n부산,3\n서울,1\n" {
		t.Errorf("one sheet: %q %q", p.FileName, buf.String())
	}
}

// A choice that names no sheet, an ambiguous or unknown column, or sheet=
// on a dataset of one query: errors naming the field.
func TestSheetsChoiceErrors(t *testing.T) {
	f := sheetsFixture(t)
	for _, tc := range []struct {
		name, dataset string
		req           plan.Request
		check         func(error) bool
	}{
		{"unknown sheet", "report", plan.Request{Sheets: []string{"nope"}}, paramErr("sheet", `unknown sheet "nope" of report (want one of 명단, 지점별)`)},
		{"ambiguous column", "report", plan.Request{Columns: []string{"branch"}}, paramErr("columns", `"branch" is a column of several sheets: name one as 명단.branch or 지점별.branch`)},
		{"unknown column", "report", plan.Request{Columns: []string{"명단.nope"}}, func(err error) bool {
			var ce *mask.ColumnError
			return errors.As(err, &ce) && errors.Is(err, mask.ErrUnknownColumn) && ce.Column == "명단.nope"
		}},
		{"a sheet without a chosen column", "report", plan.Request{Columns: []string{"명단.id"}}, paramErr("columns", "no column of sheet 지점별 chosen (choose one, or leave the sheet out with sheet=)")},
		{"column of a sheet not chosen", "report", plan.Request{Sheets: []string{"지점별"}, Columns: []string{"명단.id"}}, func(err error) bool { return errors.Is(err, mask.ErrUnknownColumn) }},
		{"sheet of a dataset of one query", "plain", plan.Request{Sheets: []string{"x"}}, paramErr("sheet", "plain is one sheet; sheet= chooses among the sheets of a dataset that declares several")},
	} {
		tc.req.Principal, tc.req.Purpose = support, purpose
		_, err := plan.New(f.cfg, tc.dataset, tc.req)
		if err == nil || !tc.check(err) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func paramErr(param, reason string) func(error) bool {
	return func(err error) bool {
		var pe *exportd.ParamError
		return errors.As(err, &pe) && pe.Param == param && pe.Reason == reason
	}
}
