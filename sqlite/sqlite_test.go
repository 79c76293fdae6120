package sqlite_test

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/sourcetest"
	"github.com/exportd/exportd/sqlite"
)

func utc(s string) time.Time {
	for _, l := range []string{"2006-01-02 15:04:05.999999999", time.DateOnly} {
		if t, err := time.Parse(l, s); err == nil {
			return t
		}
	}
	panic(s)
}

func kst(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05.999999999", s, sourcetest.Location)
	if err != nil {
		panic(err)
	}
	return t
}

var (
	null = exportd.Null()
	i64  = exportd.Int
	f64  = exportd.Float
	str  = exportd.String
)

func types() sourcetest.TypeTable {
	return sourcetest.TypeTable{
		Create: `CREATE TABLE %[1]s (id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BOOLEAN, d DATE,
			dt DATETIME, ts TIMESTAMP, dec DECIMAL(40,10), txt_dec VARCHAR(50), bl BLOB, anyc)`,
		Inserts: []string{
			`INSERT INTO %[1]s VALUES (1, 9223372036854775807, 1.7976931348623157e308, '김민준 😀 "q"', 1, '2024-02-29',
				'2024-01-02 03:04:05', '2024-01-02T03:04:05+00:00', '123456789012345678901234567890.5', '123456789012345678901234567890.5', X'00FF', 'x')`,
			`INSERT INTO %[1]s VALUES (2, -9223372036854775808, 4.9e-324, '', 0, '1900-01-01',
				'2024-01-02 03:04:05.123', '2024-06-30 23:59:59-05:00', -12.5, '-0.0000000001', X'68656c6c6f', 42)`,
			`INSERT INTO %[1]s VALUES (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
			`INSERT INTO %[1]s VALUES (4, 0, -0.5, 'line1
line2', 2, 'not a date', '', '2024-01-02 03:04', 7, 'abc', X'', 2.5)`,
		},
		Select: `SELECT i, r, t, b, d, dt, ts, dec, txt_dec, bl, anyc, length(t) AS expr FROM %[1]s ORDER BY id`,
		Columns: []sourcetest.Column{
			sourcetest.Col("i", exportd.TypeInt), sourcetest.Col("r", exportd.TypeFloat), sourcetest.Col("t", exportd.TypeString), sourcetest.Col("b", exportd.TypeBool),
			sourcetest.Col("d", exportd.TypeDate), sourcetest.Col("dt", exportd.TypeDateTime), sourcetest.Col("ts", exportd.TypeDateTime), sourcetest.Col("dec", exportd.TypeDecimal),
			sourcetest.Col("txt_dec", exportd.TypeString), sourcetest.Col("bl", ""), sourcetest.Col("anyc", ""), sourcetest.Col("expr", ""),
		},
		Rows: [][]exportd.Value{
			{i64(math.MaxInt64), f64(math.MaxFloat64), str(`김민준 😀 "q"`), exportd.Bool(true), exportd.Date(utc("2024-02-29")),
				exportd.DateTime(utc("2024-01-02 03:04:05")), exportd.DateTime(kst("2024-01-02 12:04:05")),
				// SQLite's NUMERIC affinity stores a decimal as REAL: digits past 17 are lost by SQLite itself.
				f64(123456789012345678901234567890.5), str("123456789012345678901234567890.5"), str(`\x00ff`), str("x"), i64(9)},
			{i64(math.MinInt64), f64(5e-324), str(""), exportd.Bool(false), exportd.Date(utc("1900-01-01")),
				exportd.DateTime(utc("2024-01-02 03:04:05.123")), exportd.DateTime(kst("2024-07-01 13:59:59")),
				f64(-12.5), str("-0.0000000001"), str("hello"), i64(42), i64(0)},
			{null, null, null, null, null, null, null, null, null, null, null, null},
			{i64(0), f64(-0.5), str("line1\nline2"), i64(2), str("not a date"), str(""), exportd.DateTime(utc("2024-01-02 03:04:00")),
				i64(7), str("abc"), str(""), f64(2.5), i64(11)},
		},
	}
}

func fixture(path string) sourcetest.Fixture {
	series := "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM s WHERE n < %d) "
	return sourcetest.Fixture{
		Exec: func(t *testing.T, stmts ...string) {
			t.Helper()
			db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, s := range stmts {
				if _, err := db.Exec(s); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
		},
		Types:        types(),
		DateTimeType: "DATETIME",
		Series:       func(n int) string { return fmt.Sprintf(series+"SELECT n FROM s", n) },
		// abs() of the smallest int64 fails with "integer overflow".
		FailAt: func(at int) string {
			return fmt.Sprintf(series+"SELECT CASE WHEN n = %[1]d THEN abs(n - %[1]d - 9223372036854775807 - 1) ELSE n END AS n FROM s", at)
		},
		Long: func(marker string) string {
			return fmt.Sprintf(series+"SELECT max(n), '%s' FROM s", int64(1e12), marker)
		},
	}
}

func newDB(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "test.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("PRAGMA journal_mode=WAL"); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSource(t *testing.T) {
	path := newDB(t)
	sourcetest.Run(t, func(t *testing.T, opts exportd.SourceOptions) exportd.Source {
		src, err := sqlite.Open(t.Context(), path, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		return src
	}, fixture(path))
}

func TestOpenMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.db")
	if _, err := sqlite.Open(t.Context(), path, exportd.SourceOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open of a missing file: err = %v, want os.ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open created %s", path)
	}
}

func TestQueryOnly(t *testing.T) {
	path := newDB(t)
	fixture(path).Exec(t, "CREATE TABLE t (x INTEGER)")
	src, err := sqlite.Open(t.Context(), "file:"+path, exportd.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, _, err = sourcetest.Collect(t.Context(), src, exportd.Query{SQL: "INSERT INTO t VALUES (1) RETURNING x"})
	if err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Fatalf("insert through the source: err = %v, want a read-only error", err)
	}
}
