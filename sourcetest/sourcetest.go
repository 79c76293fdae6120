package sourcetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/format"
)

// Location is the zone the suite opens every source with: timestamps with
// a zone must come back converted to it. A fixed zone, so no tzdata is
// needed.
var Location = time.FixedZone("KST", 9*60*60)

// Fixture holds the SQL one database speaks for the suite.
type Fixture struct {
	// Exec runs statements on the database outside the source under test
	// (DDL and inserts); it fails t on error.
	Exec func(t *testing.T, stmts ...string)

	// Types is the typed table: every SQL type of the database with the
	// values it must yield.
	Types TypeTable

	// DateTimeType is the column type of a date and time without a zone
	// ("TIMESTAMP", "DATETIME").
	DateTimeType string

	// Series returns a query whose one column, n, counts 1..count in order.
	Series func(count int) string
	// FailAt returns a query like Series(at) whose row at fails with a
	// database error (rows 1..at-1 arrive first).
	FailAt func(at int) string
	// Long returns a query that runs for at least 30 seconds before its
	// first row, its text containing marker.
	Long func(marker string) string
	// Running reports whether a statement containing marker is still
	// running on the server. Nil for an in-process database.
	Running func(t *testing.T, marker string) bool
}

// TypeTable is a table holding one column per SQL type and the values a
// source must yield for it. Every SQL text takes the table name as %[1]s.
type TypeTable struct {
	Create  string   // CREATE TABLE
	Inserts []string // INSERT statements
	Select  string   // the query: its columns in the order of Columns, rows ordered as Rows
	Columns []Column // the expected result columns
	Rows    [][]exportd.Value
}

// Column is an expected result column.
type Column struct {
	Name string
	Type exportd.Type // the ResultColumn.Type expected; "" skips the check
}

// Run runs the suite. open returns a source opened with opts; it should
// register the source's Close with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T, opts exportd.SourceOptions) exportd.Source, f Fixture) {
	opts := exportd.SourceOptions{Location: Location}
	src := func(t *testing.T) exportd.Source {
		t.Helper()
		return open(t, opts)
	}
	t.Run("Ping", func(t *testing.T) {
		if err := src(t).Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Types", func(t *testing.T) { testTypes(t, src(t), f) })
	t.Run("Files", func(t *testing.T) { testFiles(t, src(t), f) })
	t.Run("Params", func(t *testing.T) { testParams(t, src(t), f) })
	t.Run("Stream", func(t *testing.T) { testStream(t, src(t), f) })
	t.Run("ErrorAfterRows", func(t *testing.T) { testErrorAfterRows(t, src(t), f) })
	t.Run("EarlyClose", func(t *testing.T) { testEarlyClose(t, src(t), f) })
	t.Run("Estimate", func(t *testing.T) { testEstimate(t, src(t), f) })
	t.Run("Cancel", func(t *testing.T) { testCancel(t, src(t), f) })
	t.Run("Timeout", func(t *testing.T) { testTimeout(t, src(t), f) })
}

// IntegrationURL returns the environment variable env, skipping t when it
// is unset, or failing t when EXPORTD_REQUIRE_INTEGRATION=1.
func IntegrationURL(t testing.TB, env string) string {
	t.Helper()
	u := os.Getenv(env)
	if u == "" {
		if os.Getenv("EXPORTD_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("%s is not set and EXPORTD_REQUIRE_INTEGRATION=1", env)
		}
		t.Skipf("%s is not set", env)
	}
	return u
}

// UniqueName returns a fresh identifier starting with prefix, safe as an
// unquoted table name in every supported database.
func UniqueName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// table creates a uniquely named table from the statements (each with
// %[1]s for the name) and drops it when t ends.
func table(t *testing.T, f Fixture, stmts ...string) string {
	t.Helper()
	name := UniqueName("exportd_t")
	for i, s := range stmts {
		stmts[i] = fmt.Sprintf(s, name)
	}
	t.Cleanup(func() { f.Exec(t, "DROP TABLE IF EXISTS "+name) })
	f.Exec(t, stmts...)
	return name
}

// Collect runs q and returns its rows, with every string copied.
func Collect(ctx context.Context, src exportd.Source, q exportd.Query) ([]exportd.ResultColumn, [][]exportd.Value, error) {
	rows, err := src.Query(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols := rows.Columns()
	var out [][]exportd.Value
	for {
		row := make([]exportd.Value, len(cols))
		if !rows.Next(row) {
			break
		}
		for i := range row {
			row[i].S = strings.Clone(row[i].S)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return cols, out, err
	}
	return cols, out, rows.Close()
}

// Format renders v with its kind and every field that matters for it, so
// that two Values compare equal exactly when their renderings do. Times
// show their zone offset.
func Format(v exportd.Value) string {
	switch v.Kind {
	case exportd.KindNull:
		return "null"
	case exportd.KindInt, exportd.KindBool:
		return fmt.Sprintf("%s(%d)", v.Kind, v.I)
	case exportd.KindFloat:
		return fmt.Sprintf("float(%b=%v)", v.F, v.F)
	case exportd.KindString, exportd.KindDecimal:
		return fmt.Sprintf("%s(%q)", v.Kind, v.S)
	case exportd.KindDate:
		return "date(" + v.T.Format(time.DateOnly) + ")"
	case exportd.KindDateTime:
		return "datetime(" + v.T.Format("2006-01-02 15:04:05.999999999 -07:00") + ")"
	}
	return v.Kind.String()
}

func testTypes(t *testing.T, src exportd.Source, f Fixture) {
	tt := f.Types
	name := table(t, f, append([]string{tt.Create}, tt.Inserts...)...)
	q := exportd.Query{SQL: fmt.Sprintf(tt.Select, name)}

	desc, err := src.Describe(t.Context(), q)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	checkColumns(t, "describe", desc, tt.Columns)

	cols, rows, err := Collect(t.Context(), src, q)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	checkColumns(t, "query", cols, tt.Columns)
	if len(rows) != len(tt.Rows) {
		t.Fatalf("got %d rows, want %d", len(rows), len(tt.Rows))
	}
	for r := range rows {
		for c := range tt.Columns {
			got, want := Format(rows[r][c]), Format(tt.Rows[r][c])
			if got != want {
				t.Errorf("row %d column %s: got %s, want %s", r, tt.Columns[c].Name, got, want)
			}
		}
	}
}

func checkColumns(t *testing.T, what string, got []exportd.ResultColumn, want []Column) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d columns %v, want %d", what, len(got), got, len(want))
	}
	for i, w := range want {
		if got[i].Name != w.Name {
			t.Errorf("%s: column %d is named %q, want %q", what, i, got[i].Name, w.Name)
		}
		if got[i].DatabaseType == "" {
			t.Errorf("%s: column %q has no database type", what, w.Name)
		}
		if w.Type != "" && got[i].Type != w.Type {
			t.Errorf("%s: column %q (%s) has type %q, want %q", what, w.Name, got[i].DatabaseType, got[i].Type, w.Type)
		}
	}
}

func ints(t *testing.T, src exportd.Source, q exportd.Query) []int64 {
	t.Helper()
	_, rows, err := Collect(t.Context(), src, q)
	if err != nil {
		t.Fatalf("%s: %v", q.SQL, err)
	}
	out := []int64{}
	for _, r := range rows {
		if r[0].Kind != exportd.KindInt {
			t.Fatalf("%s: got %s, want an int", q.SQL, Format(r[0]))
		}
		out = append(out, r[0].I)
	}
	return out
}

func testParams(t *testing.T, src exportd.Source, f Fixture) {
	name := table(t, f,
		"CREATE TABLE %[1]s (id INTEGER, name VARCHAR(100), d DATE, ts "+f.DateTimeType+")",
		"INSERT INTO %[1]s (id, name, d, ts) VALUES (1, 'kim', '2024-01-01', '2024-01-02 08:59:59')",
		"INSERT INTO %[1]s (id, name, d, ts) VALUES (2, '김민준', '2024-01-02', '2024-01-02 09:00:00')",
		"INSERT INTO %[1]s (id, name, d, ts) VALUES (3, 'it''s', '2024-01-03', '2024-01-03 10:00:00')",
		"INSERT INTO %[1]s (id, name, d, ts) VALUES (4, 'lee', '2024-02-01', '2024-02-01 00:00:00')",
		"INSERT INTO %[1]s (id, name, d, ts) VALUES (5, NULL, NULL, NULL)",
	)
	sel := func(where string) string { return "SELECT id FROM " + name + " WHERE " + where + " ORDER BY id" }
	tests := []struct {
		name   string
		where  string
		params map[string]any
		want   []int64
	}{
		{"string", "name = :name", map[string]any{"name": "김민준"}, []int64{2}},
		{"quote", "name = :name", map[string]any{"name": "it's"}, []int64{3}},
		{"int", "id > :n", map[string]any{"n": int64(3)}, []int64{4, 5}},
		{"list", "id IN (:ids)", map[string]any{"ids": []any{int64(1), int64(3), int64(5)}}, []int64{1, 3, 5}},
		{"empty list", "id IN (:ids)", map[string]any{"ids": []any{}}, []int64{}},
		{"string list", "name IN (:names)", map[string]any{"names": []any{"kim", "lee", "x') OR ('1'='1"}}, []int64{1, 4}},
		{"repeated", "id >= :n AND id <= :n", map[string]any{"n": int64(2)}, []int64{2}},
		{"null", "name = :name", map[string]any{"name": nil}, []int64{}},
		{"date", "d >= :from AND d < :to", map[string]any{
			"from": exportd.DateArg{Time: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)},
			"to":   exportd.DateArg{Time: time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)},
		}, []int64{2, 3}},
		// A datetime parameter compares with a zoneless column as the wall
		// clock in the source's Location: 00:00 UTC is 09:00 KST.
		{"datetime", "ts >= :at", map[string]any{"at": time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)}, []int64{2, 3, 4}},
		{"injection statement", "name = :name", map[string]any{"name": "1; DROP TABLE " + name}, []int64{}},
		{"injection or", "name = :name", map[string]any{"name": "' OR 1=1 --"}, []int64{}},
		{"injection int", "CAST(id AS CHAR(20)) = :id", map[string]any{"id": "1; DROP TABLE " + name}, []int64{}},
		{"literal colon", "name <> ':name' AND id = :n", map[string]any{"n": int64(1)}, []int64{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ints(t, src, exportd.Query{SQL: sel(tc.where), Params: tc.params})
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("%s with %v: got ids %v, want %v", tc.where, tc.params, got, tc.want)
			}
		})
	}
	if got := ints(t, src, exportd.Query{SQL: "SELECT COUNT(*) FROM " + name}); len(got) != 1 || got[0] != 5 {
		t.Fatalf("after the injection attempts the table holds %v rows, want 5", got)
	}

	t.Run("missing", func(t *testing.T) {
		_, _, err := Collect(t.Context(), src, exportd.Query{SQL: sel("id = :id")})
		if err == nil || !strings.Contains(err.Error(), `"id"`) {
			t.Fatalf("query without its parameter: err = %v, want one naming the parameter", err)
		}
	})
	t.Run("describe", func(t *testing.T) {
		q := exportd.Query{SQL: "SELECT id, name AS who, d FROM " + name + " WHERE name = :name AND id IN (:ids) AND d >= :from"}
		cols, err := src.Describe(t.Context(), q) // no parameter values, as during check
		if err != nil {
			t.Fatal(err)
		}
		checkColumns(t, "describe", cols, []Column{Col("id", exportd.TypeInt), Col("who", exportd.TypeString), Col("d", exportd.TypeDate)})
	})
}

func testStream(t *testing.T, src exportd.Source, f Fixture) {
	const n = 200_000
	rows, err := src.Query(t.Context(), exportd.Query{SQL: f.Series(n)})
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if cols := rows.Columns(); len(cols) != 1 || cols[0].Name != "n" {
		t.Fatalf("columns = %v, want one named n", cols)
	}
	row := make([]exportd.Value, 1)
	var count int64
	for rows.Next(row) {
		count++
		if row[0].Kind != exportd.KindInt || row[0].I != count {
			t.Fatalf("row %d: got %s", count, Format(row[0]))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Fatalf("got %d rows, want %d", count, n)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rows.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// testErrorAfterRows shows that rows are streamed: a query that fails at
// its last row still hands every earlier row to the caller first, and the
// error arrives through Err.
func testErrorAfterRows(t *testing.T, src exportd.Source, f Fixture) {
	const at = 200_000
	rows, err := src.Query(t.Context(), exportd.Query{SQL: f.FailAt(at)})
	if err != nil {
		t.Fatalf("the query failed before any row was read: %v", err)
	}
	defer rows.Close()
	row := make([]exportd.Value, len(rows.Columns()))
	count := 0
	for rows.Next(row) {
		count++
	}
	if rows.Err() == nil {
		t.Fatalf("read %d rows and no error, want an error at row %d", count, at)
	}
	if count != at-1 {
		t.Fatalf("read %d rows before the error %v, want %d", count, rows.Err(), at-1)
	}
	if errors.Is(rows.Err(), exportd.ErrQueryTimeout) {
		t.Fatalf("a database error is reported as a timeout: %v", rows.Err())
	}
}

// testEarlyClose closes a large result after a few rows: the statement
// must leave the server (not be read to its end) and the source must stay
// usable.
func testEarlyClose(t *testing.T, src exportd.Source, f Fixture) {
	for range 3 {
		marker := UniqueName("exportd_early")
		q := fmt.Sprintf("SELECT n, '%s' AS marker FROM (%s) AS s", marker, f.Series(500_000_000))
		rows, err := src.Query(t.Context(), exportd.Query{SQL: q})
		if err != nil {
			t.Fatal(err)
		}
		row := make([]exportd.Value, 2)
		for i := 0; i < 10 && rows.Next(row); i++ {
		}
		if row[0].I != 10 {
			t.Fatalf("10th row is %s", Format(row[0]))
		}
		// Reading the remaining 500M rows would take minutes: a Close that
		// returns within seconds has stopped the statement instead.
		start := time.Now()
		done := make(chan struct{})
		go func() { rows.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not return within 5 s: it reads the remaining result")
		}
		waitGone(t, f, marker, start, 5*time.Second)
	}
	if got := ints(t, src, exportd.Query{SQL: f.Series(3)}); fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("after early closes got %v", got)
	}
}

func testEstimate(t *testing.T, src exportd.Source, f Fixture) {
	est, ok := src.(exportd.Estimator)
	if !ok {
		t.Skip("source is not an Estimator")
	}
	n, ok := est.EstimateRows(t.Context(), exportd.Query{SQL: f.Series(1000)})
	if !ok || n <= 0 {
		t.Fatalf("EstimateRows = %d, %v; want a positive estimate", n, ok)
	}
	if _, ok := est.EstimateRows(t.Context(), exportd.Query{SQL: "SELECT * FROM no_such_table_exportd"}); ok {
		t.Fatal("EstimateRows of a bad query reports ok")
	}
	// An export with Estimate reports the estimate as its Total in every
	// progress report, with rows, bytes and elapsed time growing.
	var last exportd.Progress
	calls := 0
	e := &exportd.Export{
		Source: src, Query: exportd.Query{SQL: f.Series(1000)}, Output: io.Discard, Estimate: true,
		NewWriter: func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
			return format.New(exportd.FormatCSV, w, cols, format.Options{})
		},
		ProgressInterval: time.Nanosecond,
		OnProgress: func(p exportd.Progress) {
			if p.Total != n || p.Rows < last.Rows || p.Bytes < last.Bytes || p.Elapsed < last.Elapsed {
				t.Errorf("progress %+v after %+v; want Total %d and nothing going back", p, last, n)
			}
			last = p
			calls++
		},
	}
	if _, err := e.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if calls == 0 || last.Rows != 1000 || last.Elapsed <= 0 {
		t.Fatalf("%d progress reports, last %+v", calls, last)
	}
}

// runLong runs q in a goroutine until its first row or its end and sends
// the error that ended it.
func runLong(ctx context.Context, src exportd.Source, q exportd.Query) <-chan error {
	done := make(chan error, 1)
	go func() {
		rows, err := src.Query(ctx, q)
		if err != nil {
			done <- err
			return
		}
		defer rows.Close()
		row := make([]exportd.Value, len(rows.Columns()))
		for rows.Next(row) {
		}
		done <- rows.Err()
	}()
	return done
}

// waitRunning waits until the statement holding marker shows on the server.
func waitRunning(t *testing.T, f Fixture, marker string, done <-chan error) {
	t.Helper()
	if f.Running == nil {
		time.Sleep(200 * time.Millisecond)
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for !f.Running(t, marker) {
		select {
		case err := <-done:
			t.Fatalf("the long query ended before it was seen running: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the long query never showed as running on the server")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitGone checks that within limit the statement holding marker has left
// the server. It is a correctness deadline, not a benchmark.
func waitGone(t *testing.T, f Fixture, marker string, start time.Time, limit time.Duration) {
	t.Helper()
	if f.Running == nil {
		return
	}
	for f.Running(t, marker) {
		if time.Since(start) > limit {
			t.Fatalf("the query still runs on the server %v after it was cancelled", time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testCancel(t *testing.T, src exportd.Source, f Fixture) {
	marker := UniqueName("exportd_cancel")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := runLong(ctx, src, exportd.Query{SQL: f.Long(marker)})
	waitRunning(t, f, marker, done)

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled query ended with %v, want an error wrapping context.Canceled", err)
		}
		if errors.Is(err, exportd.ErrQueryTimeout) {
			t.Errorf("a cancelled query reports a timeout: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("the cancelled query did not return within 1 s")
	}
	waitGone(t, f, marker, start, time.Second)

	if got := ints(t, src, exportd.Query{SQL: f.Series(2)}); fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("after a cancel got %v", got)
	}
}

func testTimeout(t *testing.T, src exportd.Source, f Fixture) {
	marker := UniqueName("exportd_timeout")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	done := runLong(ctx, src, exportd.Query{SQL: f.Long(marker), Timeout: 300 * time.Millisecond})
	select {
	case err := <-done:
		if !errors.Is(err, exportd.ErrQueryTimeout) {
			t.Fatalf("query over its timeout ended with %v, want an error wrapping exportd.ErrQueryTimeout", err)
		}
		if errors.Is(err, context.Canceled) {
			t.Errorf("a timeout reports a cancel: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the statement timeout never fired")
	}
	waitGone(t, f, marker, start, 5*time.Second)
	// A timeout applies to one query only.
	if got := ints(t, src, exportd.Query{SQL: f.Series(2)}); fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("after a timeout got %v", got)
	}
}

// Col returns an expected result column.
func Col(name string, typ exportd.Type) Column { return Column{Name: name, Type: typ} }

// Date is the expected value of a DATE column: a date in UTC, from
// "2006-01-02".
func Date(s string) exportd.Value { return exportd.Date(parseTime(time.DateOnly, s, time.UTC)) }

// Naive is the expected value of a timestamp without a zone (a wall clock
// time, in UTC), from "2006-01-02 15:04:05.999999999".
func Naive(s string) exportd.Value {
	return exportd.DateTime(parseTime("2006-01-02 15:04:05.999999999", s, time.UTC))
}

// KST is the expected value of a zoned timestamp read with the
// fixtures' Location, from its wall clock time there.
func KST(s string) exportd.Value {
	return exportd.DateTime(parseTime("2006-01-02 15:04:05.999999999", s, Location))
}

func parseTime(layout, s string, loc *time.Location) time.Time {
	t, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		panic(fmt.Sprintf("sourcetest: %q: %v", s, err))
	}
	return t
}
