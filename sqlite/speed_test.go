package sqlite_test

import (
	"database/sql"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/format"
	"github.com/exportd/exportd/sqlite"
)

// standardDB creates the standard benchmark dataset (../shared/BENCHMARKS.md)
// of n rows as the table accounts, with the types `exportd demo` declares.
func standardDB(tb testing.TB, n int) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "standard.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{
		`CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL,
			signup_at DATETIME NOT NULL, score_avg REAL NOT NULL, visits INTEGER NOT NULL,
			active BOOLEAN NOT NULL, balance REAL NOT NULL, note TEXT, category TEXT NOT NULL)`,
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %d - 1)
		INSERT INTO accounts SELECT i + 1,
			substr('김이박최정강조윤장임한오서신권황안송전홍', i %% 20 + 1, 1) ||
			substr('민서지하도예수시주현유은채윤승다', (i / 20) %% 16 + 1, 1) ||
			substr('준윤호연아린원진우빈희은율현영성', (i / 320) %% 16 + 1, 1),
			'user' || i || '@example.com', datetime('2020-01-01 00:00:00', '+' || (i * 37) || ' minutes'),
			((i * 7919) %% 10000) / 100.0, (i * 31) %% 5000, i %% 3 != 0, ((i * 104729) %% 10000000) / 100.0,
			CASE WHEN i %% 5 = 0 THEN NULL WHEN i %% 7 = 1 THEN 'R&D, priority ' || i
				WHEN i %% 11 = 2 THEN 'said "hi" #' || i WHEN i %% 13 = 3 THEN 'line1' || char(10) || 'line2 #' || i
				ELSE '메모 ' || i END,
			CASE (i / 7) %% 5 WHEN 0 THEN 'standard' WHEN 1 THEN 'silver' WHEN 2 THEN 'gold' WHEN 3 THEN 'platinum' ELSE 'dormant' END
		FROM n`, n),
	} {
		if _, err := db.Exec(s); err != nil {
			tb.Fatal(err)
		}
	}
	return path
}

const standardQuery = "SELECT id, name, email, signup_at, score_avg, visits, active, balance, note, category FROM accounts ORDER BY id"

// Reading a row allocates nothing: values are read straight from SQLite's
// memory, text as views of it (the engine copies them into its batch).
func TestNoAllocsPerRow(t *testing.T) {
	src, err := sqlite.Open(t.Context(), standardDB(t, 3000), exportd.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rows, err := src.Query(t.Context(), exportd.Query{SQL: standardQuery})
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	dst := make([]exportd.Value, len(rows.Columns()))
	n := 0
	if a := testing.AllocsPerRun(2000, func() {
		if !rows.Next(dst) {
			t.Fatalf("row %d: %v", n+1, rows.Err())
		}
		n++
	}); a != 0 {
		t.Errorf("Next allocates %v times per row", a)
	}
	// The rows read are the dataset's: row i = id - 1.
	if dst[0].I != int64(n) || dst[2].S != fmt.Sprintf("user%d@example.com", n-1) || dst[3].Kind != exportd.KindDateTime {
		t.Errorf("row %d: %v", n, dst)
	}
}

// BenchmarkRows reads the standard dataset (b.N rows, the query restarted
// every 100,000): ns/op and allocs/op are per row.
func BenchmarkRows(b *testing.B) {
	const n = 100_000
	src, err := sqlite.Open(b.Context(), standardDB(b, n), exportd.SourceOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst := make([]exportd.Value, 10)
	b.ReportAllocs()
	b.ResetTimer()
	for read := 0; read < b.N; {
		rows, err := src.Query(b.Context(), exportd.Query{SQL: standardQuery})
		if err != nil {
			b.Fatal(err)
		}
		for read < b.N && rows.Next(dst) {
			read++
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		rows.Close()
	}
}

// BenchmarkExport exports 100,000 rows of the standard dataset through the
// engine into a discarding writer, as CSV and as XLSX.
func BenchmarkExport(b *testing.B) {
	const n = 100_000
	src, err := sqlite.Open(b.Context(), standardDB(b, n), exportd.SourceOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	for _, f := range []exportd.Format{exportd.FormatCSV, exportd.FormatXLSX} {
		b.Run(string(f), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e := &exportd.Export{
					Source: src,
					Query:  exportd.Query{SQL: standardQuery},
					Output: io.Discard,
					NewWriter: func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
						return format.New(f, w, cols, format.Options{BOM: true})
					},
				}
				st, err := e.Run(b.Context())
				if err != nil || st.Rows != n {
					b.Fatalf("%d rows: %v", st.Rows, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
		})
	}
}

// The strings of the last row read stay intact after Close, when SQLite has
// freed the statement's memory and reused it for another query.
func TestStringsOutliveClose(t *testing.T) {
	src, err := sqlite.Open(t.Context(), standardDB(t, 10), exportd.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rows, err := src.Query(t.Context(), exportd.Query{SQL: standardQuery + " LIMIT 2"})
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]exportd.Value, len(rows.Columns()))
	for rows.Next(dst) {
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		churn, err := src.Query(t.Context(), exportd.Query{SQL: "SELECT upper(email) || upper(email), replace(name, '', 'x') FROM accounts"})
		if err != nil {
			t.Fatal(err)
		}
		row := make([]exportd.Value, 2)
		for churn.Next(row) {
		}
		churn.Close()
	}
	if dst[1].S != "이민준" || dst[2].S != "user1@example.com" || dst[8].S != "R&D, priority 1" || dst[9].S != "standard" {
		t.Errorf("the last row's strings after Close: %q %q %q %q", dst[1].S, dst[2].S, dst[8].S, dst[9].S)
	}
}
