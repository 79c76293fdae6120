package exportd_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"go.uber.org/goleak"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/format"
)

const sheetsDB = `CREATE TABLE r (member TEXT, branch TEXT, score INTEGER);
INSERT INTO r VALUES ('김민준', '강남', 80), ('김민준', '강남', 90), ('이서연', '부산', 70), ('박지호', '부산', 100);`

// sheetsExport is an export of three sheets of the same table: per
// member, every row, per branch with totals.
func sheetsExport(src exportd.Source, f exportd.Format, out io.Writer, third string) *exportd.Export {
	names := []string{"회원별 평균", "시험 결과", "지점별 합계"}
	nw := format.BookWriters(f, names, format.Options{TotalLabel: "합계"})
	return &exportd.Export{Output: out, Source: src, Sheets: []exportd.ExportSheet{
		{Name: names[0], Query: exportd.Query{SQL: `SELECT member, avg(score) AS avg FROM r GROUP BY member ORDER BY member`},
			Columns: []exportd.Column{{Name: "member", Header: "회원"}, {Name: "avg", Header: "평균", Type: exportd.TypeFloat}}, NewWriter: nw[0]},
		{Name: names[1], Query: exportd.Query{SQL: `SELECT member, branch, score FROM r ORDER BY rowid`},
			Columns: []exportd.Column{{Name: "member"}, {Name: "branch"}, {Name: "score", Type: exportd.TypeInt}}, NewWriter: nw[1]},
		{Name: names[2], Query: exportd.Query{SQL: third},
			Columns: []exportd.Column{{Name: "branch", Header: "지점"}, {Name: "n", Header: "응시", Type: exportd.TypeInt, Total: exportd.TotalSum},
				{Name: "total", Header: "점수 합계", Type: exportd.TypeInt, Total: exportd.TotalSum}}, NewWriter: nw[2]},
	}}
}

const branchTotals = `SELECT branch, count(*) AS n, sum(score) AS total FROM r GROUP BY branch ORDER BY branch`

func TestExportSheetsXLSX(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	src := newDB(t, strings.Split(sheetsDB, ";\n")...)
	var buf bytes.Buffer
	st, err := sheetsExport(src, exportd.FormatXLSX, &buf, branchTotals).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 3+4+2 || len(st.Sheets) != 3 || st.Sheets[0].Rows != 3 || st.Sheets[1].Rows != 4 || st.Sheets[2].Rows != 2 {
		t.Errorf("stats %+v", st)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string][][]string{
		"회원별 평균": {{"회원", "평균"}, {"김민준", "85"}, {"박지호", "100"}, {"이서연", "70"}},
		"시험 결과":  {{"member", "branch", "score"}, {"김민준", "강남", "80"}, {"김민준", "강남", "90"}, {"이서연", "부산", "70"}, {"박지호", "부산", "100"}},
		"지점별 합계": {{"지점", "응시", "점수 합계"}, {"강남", "2", "170"}, {"부산", "2", "170"}, {"합계", "4", "340"}},
	}
	if got := strings.Join(f.GetSheetList(), "|"); got != "회원별 평균|시험 결과|지점별 합계" {
		t.Errorf("sheets %s", got)
	}
	for name, rows := range want {
		got, err := f.GetRows(name)
		if err != nil || !equalRows(got, rows) {
			t.Errorf("%s: %v (%v), want %v", name, got, err, rows)
		}
	}
	if fm, _ := f.GetCellFormula("지점별 합계", "C4"); fm != "SUBTOTAL(109,C2:C3)" {
		t.Errorf("total formula %q", fm)
	}
}

func equalRows(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], "\x00") != strings.Join(b[i], "\x00") {
			return false
		}
	}
	return true
}

// TestExportSheetsCSVZip: a CSV export of several sheets is a ZIP of one
// CSV file per sheet, in order.
func TestExportSheetsCSVZip(t *testing.T) {
	src := newDB(t, strings.Split(sheetsDB, ";\n")...)
	var buf bytes.Buffer
	if _, err := sheetsExport(src, exportd.FormatCSV, &buf, branchTotals).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ name, csv string }{
		{"회원별 평균.csv", "회원,평균\n김민준,85\n박지호,100\n이서연,70\n"},
		{"시험 결과.csv", "member,branch,score\n김민준,강남,80\n김민준,강남,90\n이서연,부산,70\n박지호,부산,100\n"},
		{"지점별 합계.csv", "지점,응시,점수 합계\n강남,2,170\n부산,2,170\n"},
	}
	if len(zr.File) != len(want) {
		t.Fatalf("%d entries, want %d", len(zr.File), len(want))
	}
	for i, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", zf.Name, err)
		}
		if zf.Name != want[i].name || string(b) != want[i].csv {
			t.Errorf("entry %d: %s %q, want %s %q", i, zf.Name, b, want[i].name, want[i].csv)
		}
		if _, err := csv.NewReader(bytes.NewReader(b)).ReadAll(); err != nil {
			t.Errorf("%s: %v", zf.Name, err)
		}
	}
}

// TestExportSheetsFailureAborts: an error in the last sheet's query
// leaves a file no reader takes for a whole one.
func TestExportSheetsFailureAborts(t *testing.T) {
	src := newDB(t, strings.Split(sheetsDB, ";\n")...)
	for _, f := range []exportd.Format{exportd.FormatXLSX, exportd.FormatCSV} {
		var buf bytes.Buffer
		st, err := sheetsExport(src, f, &buf, `SELECT branch, count(*) AS n, no_such_column AS total FROM r GROUP BY branch`).Run(context.Background())
		if err == nil {
			t.Fatalf("%s: no error", f)
		}
		if st.Sheets[1].Rows != 4 {
			t.Errorf("%s: %+v", f, st.Sheets)
		}
		if _, zerr := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len())); zerr == nil {
			t.Errorf("%s: after %v, the output is a whole ZIP archive", f, err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the writer's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

// TestExportSheetsKeepAlive: while a later sheet's query thinks, the
// output keeps growing (keep-alive flushes of the next sheet's writer).
func TestExportSheetsKeepAlive(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	src := newDB(t, strings.Split(sheetsDB, ";\n")...)
	for _, f := range []exportd.Format{exportd.FormatXLSX, exportd.FormatCSV} {
		out := &syncBuffer{}
		// The third sheet's query thinks about 100 ms (a third of
		// slowFirstRow's recursion; far longer with the race detector)
		// before its one row.
		e := sheetsExport(src, f, out, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
SELECT '강남' AS branch, max(x) AS n, 1 AS total FROM c`)
		e.KeepAlive = 5 * time.Millisecond
		var mu sync.Mutex
		var keepAlives int
		e.OnFlush = func(ka bool) error {
			if ka {
				mu.Lock()
				keepAlives++
				mu.Unlock()
			}
			return nil
		}
		var sizes []int
		done := make(chan error, 1)
		go func() { _, err := e.Run(context.Background()); done <- err }()
		tick := time.NewTicker(15 * time.Millisecond)
	wait:
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				break wait
			case <-tick.C:
				sizes = append(sizes, out.Len())
			}
		}
		tick.Stop()
		mu.Lock()
		n := keepAlives
		mu.Unlock()
		grew := 0
		for i := 1; i < len(sizes); i++ {
			if sizes[i] > sizes[i-1] {
				grew++
			}
		}
		if n < 3 || grew < len(sizes)/2 {
			t.Errorf("%s: %d keep-alives; the output grew in %d of %d samples: %v", f, n, grew, len(sizes), sizes)
		}
	}
}
