// Command srcprof runs one export the way `exportd export --db URL --query
// SQL` does (the same engine, source and format writer) and writes CPU and
// heap profiles of it, so that a source's hot path can be read with
// `go tool pprof -top`:
//
//	go run ./bench/sources/srcprof -db "$EXPORTD_MYSQL_URL" -query "SELECT … FROM bench_accounts ORDER BY id" \
//		-format csv -o /tmp/out.csv -cpuprofile /tmp/mysql-csv.pprof
//
// With -read-only it reads the rows without writing a file (the source
// alone).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/connect"
	"github.com/exportd/exportd/format"
)

func main() {
	db := flag.String("db", "", "database URL (postgres://…, mysql://…, sqlite:PATH)")
	query := flag.String("query", "", "SQL to export")
	f := flag.String("format", "csv", "csv, tsv, jsonl or xlsx")
	out := flag.String("o", os.DevNull, "output file")
	cpu := flag.String("cpuprofile", "", "write a CPU profile to this file")
	mem := flag.String("memprofile", "", "write an allocation profile to this file")
	readOnly := flag.Bool("read-only", false, "only read the rows (no writer)")
	flag.Parse()
	if *db == "" || *query == "" {
		fmt.Fprintln(os.Stderr, "srcprof: -db and -query are required")
		os.Exit(2)
	}
	if err := run(*db, *query, exportd.Format(*f), *out, *cpu, *mem, *readOnly); err != nil {
		fmt.Fprintln(os.Stderr, "srcprof:", err)
		os.Exit(1)
	}
}

func run(url, query string, f exportd.Format, outPath, cpuPath, memPath string, readOnly bool) (err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if memPath != "" {
		runtime.MemProfileRate = 64 << 10
	}
	if cpuPath != "" {
		pf, err := os.Create(cpuPath)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	src, err := connect.Open(ctx, url, exportd.SourceOptions{})
	if err != nil {
		return err
	}
	defer src.Close()
	var rows int64
	if readOnly {
		rows, err = readAll(ctx, src, query)
	} else {
		rows, err = export(ctx, src, query, f, outPath)
	}
	if err != nil {
		return err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(os.Stderr, "%d rows in %.3f s; %d mallocs (%.2f per row), %d GCs\n",
		rows, time.Since(start).Seconds(), ms.Mallocs, float64(ms.Mallocs)/float64(max(rows, 1)), ms.NumGC)
	if memPath != "" {
		mf, err := os.Create(memPath)
		if err != nil {
			return err
		}
		defer mf.Close()
		return pprof.Lookup("allocs").WriteTo(mf, 0)
	}
	return nil
}

func export(ctx context.Context, src exportd.Source, query string, f exportd.Format, outPath string) (int64, error) {
	out, err := os.Create(outPath)
	if err != nil {
		return 0, err
	}
	e := &exportd.Export{
		Source: src,
		Query:  exportd.Query{SQL: query},
		Output: out,
		NewWriter: func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
			return format.New(f, w, cols, format.Options{BOM: true})
		},
	}
	st, err := e.Run(ctx)
	return st.Rows, errors.Join(err, out.Close())
}

func readAll(ctx context.Context, src exportd.Source, query string) (int64, error) {
	rows, err := src.Query(ctx, exportd.Query{SQL: query})
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dst := make([]exportd.Value, len(rows.Columns()))
	var n int64
	for rows.Next(dst) {
		n++
	}
	return n, rows.Err()
}
