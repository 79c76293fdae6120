package mysql_test

import (
	"database/sql"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/format"
	"github.com/exportd/exportd/mysql"
	"github.com/exportd/exportd/sourcetest"

	"github.com/exportd/exportd/internal/cputime"
)

// standardTable creates the standard benchmark dataset of n rows
// (../shared/BENCHMARKS.md, from bench/sources/standard_mysql.sql) in a
// table of its own, dropped at the end.
func standardTable(b testing.TB, url string, n int) string {
	b.Helper()
	script, err := os.ReadFile("../bench/sources/standard_mysql.sql")
	if err != nil {
		b.Fatal(err)
	}
	name := sourcetest.UniqueName("exportd_bench")
	text := strings.ReplaceAll(string(script), "bench_accounts", name)
	text = strings.ReplaceAll(text, "@N@", strconv.Itoa(n-1))
	dsn, err := mysql.DSNFromURL(url)
	if err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			lines = append(lines, l)
		}
	}
	for _, stmt := range strings.Split(strings.Join(lines, "\n"), ";") {
		if stmt = strings.TrimSpace(stmt); stmt == "" {
			continue
		}
		if _, err := db.Exec(stmt); err != nil {
			b.Fatalf("%s: %v", stmt, err)
		}
	}
	b.Cleanup(func() {
		db, err := sql.Open("mysql", dsn)
		if err == nil {
			db.Exec("DROP TABLE " + name)
			db.Close()
		}
	})
	return "SELECT id, name, email, signup_at, score_avg, visits, active, balance, note, category FROM " + name + " ORDER BY id"
}

// Reading a row of the standard dataset allocates nothing: the source
// decodes the socket's bytes into the Values itself.
func TestNoAllocsPerRow(t *testing.T) {
	url := sourcetest.IntegrationURL(t, "EXPORTD_MYSQL_URL")
	query := standardTable(t, url, 3000)
	src, err := mysql.Open(t.Context(), url, exportd.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rows, err := src.Query(t.Context(), exportd.Query{SQL: query})
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
// every 100,000): ns/op and allocs/op are per row. The wall time per row is
// mostly the database server's (it sends ~1 µs of rows per row here);
// cpu-ns/row is this process's own CPU time (user and system) per row.
func BenchmarkRows(b *testing.B) {
	url := sourcetest.IntegrationURL(b, "EXPORTD_MYSQL_URL")
	const n = 100_000
	query := standardTable(b, url, n)
	src, err := mysql.Open(b.Context(), url, exportd.SourceOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst := make([]exportd.Value, 10)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	defer func() { b.ReportMetric(float64((cputime.Process()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/row") }()
	for read := 0; read < b.N; {
		rows, err := src.Query(b.Context(), exportd.Query{SQL: query})
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
	url := sourcetest.IntegrationURL(b, "EXPORTD_MYSQL_URL")
	const n = 100_000
	query := standardTable(b, url, n)
	src, err := mysql.Open(b.Context(), url, exportd.SourceOptions{})
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
					Query:  exportd.Query{SQL: query},
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
