package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/exportd/exportd/datasets"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/postgres"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
	"github.com/exportd/exportd/sqlite"
)

var (
	benchOnce sync.Once
	benchDir  string
	benchErr  error
)

const benchRows = 1_000_000

// benchDB creates (once per process) a SQLite file with the standard
// dataset's 1M rows.
func benchDB(b *testing.B) string {
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "exportd-bench-")
		if benchErr != nil {
			return
		}
		db, err := sql.Open("sqlite", filepath.Join(benchDir, "bench.db"))
		if err != nil {
			benchErr = err
			return
		}
		defer db.Close()
		_, benchErr = db.Exec(fmt.Sprintf(`CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT, email TEXT, signup_at DATETIME,
			score_avg REAL, visits INTEGER, active BOOLEAN, balance REAL, note TEXT, category TEXT);
		WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %d - 1)
		INSERT INTO accounts SELECT i + 1,
			substr('김이박최정강조윤장임한오서신권황안송전홍', i %% 20 + 1, 1) ||
			substr('민서지하도예수시주현유은채윤승다', (i / 20) %% 16 + 1, 1) ||
			substr('준윤호연아린원진우빈희은율현영성', (i / 320) %% 16 + 1, 1),
			'user' || i || '@example.com', datetime('2020-01-01 00:00:00', '+' || (i * 37) || ' minutes'),
			((i * 7919) %% 10000) / 100.0, (i * 31) %% 5000, i %% 3 != 0, ((i * 104729) %% 10000000) / 100.0,
			CASE WHEN i %% 5 = 0 THEN NULL ELSE '메모 ' || i END,
			CASE (i / 7) %% 5 WHEN 0 THEN 'standard' WHEN 1 THEN 'silver' WHEN 2 THEN 'gold' WHEN 3 THEN 'platinum' ELSE 'dormant' END
		FROM n`, benchRows))
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return filepath.Join(benchDir, "bench.db")
}

const benchYAML = `
timezone: UTC
connections:
  main: {url: "sqlite:/unused"}
datasets:
  accounts:
    sql: |
      SELECT id, name, email, signup_at, score_avg, visits, active, balance, note, category
        FROM %s ORDER BY id
    columns:
      - {name: id, type: int}
      - {name: name, type: string}
      - {name: email, type: string}
      - {name: signup_at, type: datetime, format: "yyyy-mm-dd hh:mm:ss"}
      - {name: score_avg, type: float}
      - {name: visits, type: int}
      - {name: active, type: bool}
      - {name: balance, type: float, format: "#,##0.00"}
      - {name: note, type: string}
      - {name: category, type: string}
    sheet: Sheet1
    max_duration: 10m
`

// BenchmarkTimeToFirstByte measures, for a 1M-row export, the time from
// sending the request to receiving the first byte of the body (reported
// as ttfb-ms), then cancels the download. On SQLite always; on PostgreSQL
// (table e2e_accounts, made by the e2e tests) when EXPORTD_POSTGRES_URL is
// set.
func BenchmarkTimeToFirstByte(b *testing.B) {
	type backend struct {
		name, table string
		src         exportd.Source
	}
	var backends []backend
	s, err := sqlite.Open(context.Background(), benchDB(b), exportd.SourceOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	backends = append(backends, backend{"sqlite", "accounts", s})
	if u := os.Getenv("EXPORTD_POSTGRES_URL"); u != "" {
		p, err := postgres.Open(context.Background(), u, exportd.SourceOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		backends = append(backends, backend{"postgres", "e2e_accounts", p})
	}
	for _, be := range backends {
		cfg, err := datasets.ParseConfig("bench.yaml", fmt.Appendf(nil, benchYAML, be.table))
		if err != nil {
			b.Fatal(err)
		}
		for _, format := range []string{"xlsx", "csv"} {
			b.Run(be.name+"/"+format, func(b *testing.B) {
				srv := servertest.Start(b, server.Config{Datasets: cfg, Sources: map[string]exportd.Source{"main": be.src},
					Logger: discardLogger()})
				tr := &http.Transport{}
				defer tr.CloseIdleConnections()
				c := &http.Client{Transport: tr}
				var total time.Duration
				buf := make([]byte, 1)
				for b.Loop() {
					ctx, cancel := context.WithCancel(context.Background())
					req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/datasets/accounts/export."+format, nil)
					start := time.Now()
					resp, err := c.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(resp.Body, buf); err != nil {
						b.Fatal(err)
					}
					total += time.Since(start)
					cancel()
					resp.Body.Close()
				}
				b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ttfb-ms")
			})
		}
	}
}

// benchSQLite opens the standard dataset's SQLite file (benchDB) and the
// datasets file serving it as "accounts"; the source closes with b.
func benchSQLite(b *testing.B) (exportd.Source, *exportd.Config) {
	s, err := sqlite.Open(context.Background(), benchDB(b), exportd.SourceOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	cfg, err := datasets.ParseConfig("bench.yaml", fmt.Appendf(nil, benchYAML, "accounts"))
	if err != nil {
		b.Fatal(err)
	}
	return s, cfg
}

// BenchmarkExport1M downloads the whole 1M-row export from SQLite.
func BenchmarkExport1M(b *testing.B) {
	s, cfg := benchSQLite(b)
	for _, format := range []string{"xlsx", "csv"} {
		b.Run(format, func(b *testing.B) {
			srv := servertest.Start(b, server.Config{Datasets: cfg, Sources: map[string]exportd.Source{"main": s}, Logger: discardLogger()})
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			for b.Loop() {
				resp, err := (&http.Client{Transport: tr}).Get(srv.URL + "/v1/datasets/accounts/export." + format)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(n)
			}
			b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkFirstBytesWaiting measures what a download costs until its
// first bytes when it has to wait for a slot: what each click of a crowd
// costs before the exports resume. One download holds the only slot (its
// client does not read); every timed request reads its first byte and
// leaves.
func BenchmarkFirstBytesWaiting(b *testing.B) {
	s, cfg := benchSQLite(b)
	for _, format := range []string{"xlsx", "csv"} {
		b.Run(format, func(b *testing.B) {
			srv := servertest.Start(b, server.Config{Datasets: cfg, Sources: map[string]exportd.Source{"main": s},
				Slots: 1, Logger: discardLogger()})
			url := srv.URL + "/v1/datasets/accounts/export." + format
			holdCtx, stopHold := context.WithCancel(context.Background())
			defer stopHold()
			hold, _ := http.NewRequestWithContext(holdCtx, "GET", url, nil)
			resp, err := http.DefaultClient.Do(hold)
			if err != nil {
				b.Fatal(err)
			}
			defer resp.Body.Close() // never read: the export holds its slot
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			buf := make([]byte, 1)
			b.ReportAllocs()
			for b.Loop() {
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				req.Header.Set("Accept-Encoding", "gzip")
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(resp.Body, buf); err != nil {
					b.Fatal(err)
				}
				cancel()
				resp.Body.Close()
			}
		})
	}
}
