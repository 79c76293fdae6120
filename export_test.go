package exportd_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"go.uber.org/goleak"
	_ "modernc.org/sqlite"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/format"
	"github.com/exportd/exportd/sqlite"
)

// newDB creates a SQLite file with a typed table and returns a Source on it.
func newDB(t *testing.T, stmts ...string) exportd.Source {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil { // creates the file
		t.Fatal(err)
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	db.Close()
	src, err := sqlite.Open(context.Background(), path, exportd.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func newExport(src exportd.Source, q string, cols []exportd.Column, f exportd.Format, out io.Writer) *exportd.Export {
	return &exportd.Export{
		Source:  src,
		Query:   exportd.Query{SQL: q},
		Columns: cols,
		Output:  out,
		NewWriter: func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
			return format.New(f, w, cols, format.Options{})
		},
	}
}

// slowFirstRow takes well over 100 ms in SQLite before its single row.
const slowFirstRow = `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) SELECT max(x) AS m FROM c`

func TestExportRoundTripXLSX(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	src := newDB(t,
		`CREATE TABLE t (id INTEGER, name TEXT, score REAL, ok BOOLEAN, day DATE, at DATETIME, note TEXT)`,
		`INSERT INTO t VALUES (1, '김민준', 79.19, 1, '2024-01-02', '2024-01-02 03:04:05', 'R&D, "x"'),
		                     (2, '=1+1', -0.5, 0, '1999-12-31', '1999-12-31 23:59:59', NULL),
		                     (3, '😀 مرحبا', 1e300, 1, NULL, NULL, '')`)
	cols := []exportd.Column{
		{Name: "id", Header: "번호", Type: exportd.TypeInt},
		{Name: "name", Header: "이름"},
		{Name: "score", Format: "0.00"},
		{Name: "ok", Type: exportd.TypeBool},
		{Name: "day", Type: exportd.TypeDate},
		{Name: "at", Type: exportd.TypeDateTime},
		{Name: "note"},
	}
	var buf bytes.Buffer
	st, err := newExport(src, `SELECT id, name, score, ok, day, at, note FROM t ORDER BY id`, cols, exportd.FormatXLSX, &buf).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 3 || st.Bytes != int64(buf.Len()) || st.FirstByte <= 0 {
		t.Fatalf("stats %+v, file %d bytes", st, buf.Len())
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sheet := f.GetSheetName(0)
	want := [][]string{
		{"번호", "이름", "score", "ok", "day", "at", "note"},
		{"1", "김민준", "79.19", "TRUE", "2024-01-02", "2024-01-02 03:04:05", `R&D, "x"`},
		{"2", "=1+1", "-0.50", "FALSE", "1999-12-31", "1999-12-31 23:59:59", ""},
		{"3", "😀 مرحبا", "1e300", "TRUE", "", "", ""},
	}
	for r, row := range want {
		for c, w := range row {
			cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
			typ, _ := f.GetCellType(sheet, cell)
			raw, _ := f.GetCellValue(sheet, cell, excelize.Options{RawCellValue: true})
			shown, _ := f.GetCellValue(sheet, cell)
			switch {
			case r > 0 && c == 2 && w != "": // numbers: compare the raw value
				var want float64
				switch r {
				case 1:
					want = 79.19
				case 2:
					want = -0.5
				case 3:
					want = 1e300
				}
				if got := parseF(t, raw); got != want {
					t.Errorf("%s raw = %q, want %v", cell, raw, want)
				}
				if typ != excelize.CellTypeNumber && typ != excelize.CellTypeUnset {
					t.Errorf("%s type = %v, want number", cell, typ)
				}
			case r > 0 && (c == 4 || c == 5) && w != "":
				if !strings.HasPrefix(shown, w[:10]) {
					t.Errorf("%s shows %q, want %q", cell, shown, w)
				}
			case r > 0 && c == 3:
				if typ != excelize.CellTypeBool || shown != w {
					t.Errorf("%s = %q (type %v), want boolean %s", cell, shown, typ, w)
				}
			default:
				if shown != w {
					t.Errorf("%s = %q, want %q", cell, shown, w)
				}
			}
		}
	}
	// The date-time cell holds the exact serial number.
	raw, _ := f.GetCellValue(sheet, "F2", excelize.Options{RawCellValue: true})
	wantSerial := 45293 + (3*3600+4*60+5)/86400.0
	if got := parseF(t, raw); math.Abs(got-wantSerial) > 1e-9 {
		t.Errorf("F2 serial = %v, want %v", got, wantSerial)
	}
	// "=1+1" is text, not a formula.
	if formula, _ := f.GetCellFormula(sheet, "B3"); formula != "" {
		t.Errorf("B3 became a formula %q", formula)
	}
}

func parseF(t *testing.T, s string) float64 {
	t.Helper()
	v := exportd.String(s).As(exportd.TypeFloat)
	if v.Kind != exportd.KindFloat {
		t.Fatalf("not a number: %q", s)
	}
	return v.F
}

func TestExportAdHocColumnsCSV(t *testing.T) {
	src := newDB(t, `CREATE TABLE t (a INTEGER, b TEXT)`, `INSERT INTO t VALUES (1, 'x'), (2, NULL)`)
	var buf bytes.Buffer
	if _, err := newExport(src, `SELECT a, b AS "bee" FROM t ORDER BY a`, nil, exportd.FormatCSV, &buf).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "a,bee\n1,x\n2,\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestExportHeaderLeavesBeforeTheFirstRow(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	src := newDB(t)
	var out bytes.Buffer
	e := newExport(src, slowFirstRow, []exportd.Column{{Name: "m", Type: exportd.TypeInt}}, exportd.FormatXLSX, &out)
	var before atomic.Int64 // bytes out when the first flush happened
	e.OnFlush = func(bool) error {
		before.CompareAndSwap(0, int64(out.Len()))
		return nil
	}
	st, err := e.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if before.Load() == 0 {
		t.Fatal("nothing was written before the query returned its row")
	}
	if st.FirstByte >= st.Duration/2 {
		t.Fatalf("first byte at %v of %v: not before the query", st.FirstByte, st.Duration)
	}
}

func TestExportKeepAlive(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	src := newDB(t)
	var keepAlives atomic.Int32
	var plain, kept bytes.Buffer
	e := newExport(src, slowFirstRow, []exportd.Column{{Name: "m", Type: exportd.TypeInt}}, exportd.FormatXLSX, &kept)
	e.KeepAlive = 5 * time.Millisecond
	e.OnFlush = func(keepAlive bool) error {
		if keepAlive {
			keepAlives.Add(1)
		}
		return nil
	}
	if _, err := e.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if keepAlives.Load() == 0 {
		t.Fatal("no keep-alive flush while the query was silent")
	}
	if _, err := newExport(src, slowFirstRow, []exportd.Column{{Name: "m", Type: exportd.TypeInt}}, exportd.FormatXLSX, &plain).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if kept.Len() <= plain.Len() {
		t.Fatalf("keep-alive added no bytes: %d vs %d", kept.Len(), plain.Len())
	}
	for _, b := range [][]byte{plain.Bytes(), kept.Bytes()} {
		f, err := excelize.OpenReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		v, _ := f.GetCellValue(f.GetSheetName(0), "A2")
		f.Close()
		if v != "300000" {
			t.Fatalf("A2 = %q, want 300000", v)
		}
	}
}

func TestExportRowLimit(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	src := newDB(t)
	e := newExport(src, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000) SELECT x FROM c`, nil, exportd.FormatCSV, io.Discard)
	e.MaxRows = 1000
	st, err := e.Run(context.Background())
	if !errors.Is(err, exportd.ErrRowLimit) {
		t.Fatalf("err = %v, want ErrRowLimit", err)
	}
	if st.Rows != 1000 {
		t.Fatalf("wrote %d rows before failing, want 1000", st.Rows)
	}
	e.MaxRows = 5000 // exactly the row count: allowed
	if _, err := e.Run(context.Background()); err != nil {
		t.Fatalf("limit equal to the row count: %v", err)
	}
}

func TestExportErrorMidStream(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	src := newDB(t)
	var out bytes.Buffer
	e := newExport(src, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000)
		SELECT CASE WHEN x = 2500 THEN json('not json') ELSE x END AS v FROM c`,
		[]exportd.Column{{Name: "v"}}, exportd.FormatCSV, &out)
	st, err := e.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "read rows") {
		t.Fatalf("err = %v, want a read error", err)
	}
	if st.Rows == 0 || st.Rows >= 2500 {
		t.Fatalf("rows before the error = %d", st.Rows)
	}
}

func TestExportCancel(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	src := newDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	e := newExport(src, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT max(x) FROM c`, nil, exportd.FormatCSV, io.Discard)
	done := make(chan error, 1)
	go func() { _, err := e.Run(ctx); done <- err }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("export did not stop after cancel")
	}
}

func TestExportProgress(t *testing.T) {
	src := newDB(t)
	e := newExport(src, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000) SELECT x FROM c`, nil, exportd.FormatJSONL, io.Discard)
	e.ProgressInterval = time.Nanosecond
	var last exportd.Progress
	calls := 0
	e.OnProgress = func(p exportd.Progress) {
		if p.Rows < last.Rows || p.Bytes < last.Bytes || p.Elapsed < last.Elapsed {
			t.Errorf("progress went back: %+v after %+v", p, last)
		}
		if p.Total != -1 {
			t.Errorf("Total %d without an estimate; want -1 (unknown)", p.Total)
		}
		last = p
		calls++
	}
	st, err := e.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if calls < 2 || last.Rows != 5000 || last.Bytes != st.Bytes || last.Elapsed <= 0 || last.Elapsed > st.Duration {
		t.Fatalf("%d progress calls, last %+v, stats %+v", calls, last, st)
	}
}

// TestExportFlushesSlowRows: a row that has arrived reaches the output's
// flush within FlushInterval even while the database is still computing
// the next one (it is not held back to fill a batch).
func TestExportFlushesSlowRows(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	src := newDB(t)
	var out bytes.Buffer
	e := newExport(src, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000)
		SELECT 'first' AS v UNION ALL SELECT max(x) FROM c`,
		[]exportd.Column{{Name: "v"}}, exportd.FormatCSV, &out)
	e.FlushInterval = 20 * time.Millisecond
	early := false // a flush sent the first row before the second existed
	e.OnFlush = func(bool) error {
		s := out.String()
		if strings.Contains(s, "first") && !strings.Contains(s, "500000") {
			early = true
		}
		return nil
	}
	st, err := e.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 2 || !strings.HasSuffix(out.String(), "first\n500000\n") {
		t.Fatalf("rows %d, output %q", st.Rows, out.String())
	}
	if !early {
		t.Fatal("the first row was not flushed while the query computed the second")
	}
}

// countingSource counts the queries started on it.
type countingSource struct {
	exportd.Source
	queries atomic.Int32
}

func (s *countingSource) Query(ctx context.Context, q exportd.Query) (exportd.Rows, error) {
	s.queries.Add(1)
	return s.Source.Query(ctx, q)
}

// An export waiting for admission has sent its first bytes, keeps sending
// keep-alives and has not started its query; once admitted it runs to a
// complete file and releases its room exactly once, when Run returns.
func TestExportAdmitWaitsWithKeepAlives(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	src := &countingSource{Source: newDB(t, `CREATE TABLE t (a INTEGER)`, `INSERT INTO t VALUES (1), (2), (3)`)}
	var out bytes.Buffer
	e := newExport(src, `SELECT a FROM t ORDER BY a`, []exportd.Column{{Name: "a", Type: exportd.TypeInt}}, exportd.FormatXLSX, &out)
	e.KeepAlive = 5 * time.Millisecond
	var firstFlush, keepAlives, released atomic.Int32
	e.OnFlush = func(keepAlive bool) error {
		firstFlush.CompareAndSwap(0, int32(out.Len()))
		if keepAlive {
			keepAlives.Add(1)
		}
		return nil
	}
	admitted := make(chan struct{})
	waiting := make(chan struct{})
	e.Admit = func(ctx context.Context) (func(), error) {
		close(waiting)
		select {
		case <-admitted:
			return func() { released.Add(1) }, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	done := make(chan error, 1)
	go func() { _, err := e.Run(context.Background()); done <- err }()
	<-waiting
	deadline := time.Now().Add(10 * time.Second)
	for keepAlives.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := keepAlives.Load(); n < 3 {
		t.Fatalf("%d keep-alive flushes while waiting for admission", n)
	}
	if firstFlush.Load() == 0 {
		t.Fatal("nothing was written before admission")
	}
	if n := src.queries.Load(); n != 0 {
		t.Fatalf("%d queries started before admission", n)
	}
	if released.Load() != 0 {
		t.Fatal("released before admission")
	}
	close(admitted)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := released.Load(); n != 1 {
		t.Fatalf("released %d times, want once", n)
	}
	f, err := excelize.OpenReader(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, _ := f.GetRows(f.GetSheetName(0))
	if got := fmt.Sprint(rows); got != "[[a] [1] [2] [3]]" {
		t.Fatalf("rows %s", got)
	}
}

// An export cancelled while it waits for admission ends at once with the
// context's error and never starts its query.
func TestExportAdmitCancelled(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	src := &countingSource{Source: newDB(t)}
	e := newExport(src, `SELECT 1 AS a`, []exportd.Column{{Name: "a"}}, exportd.FormatCSV, io.Discard)
	e.Estimate = true
	waiting := make(chan struct{})
	e.Admit = func(ctx context.Context) (func(), error) {
		close(waiting)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := e.Run(ctx); done <- err }()
	<-waiting
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := src.queries.Load(); n != 0 {
		t.Fatalf("%d queries started by a cancelled export", n)
	}
}
