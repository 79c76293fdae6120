// Command encryptbench writes the standard benchmark dataset (bench/dataset)
// as XLSX to a file, plain or password-protected (package encrypt), and
// prints wall time, rows/s, peak RSS and file size.
//
//	go run ./bench/encryptbench -mode plain|encrypted -rows N -o FILE
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/exportd/exportd/bench/dataset"
	"github.com/exportd/exportd/encrypt"
	"github.com/exportd/exportd/xlsx"
)

func main() {
	mode := flag.String("mode", "encrypted", "plain or encrypted")
	rows := flag.Int("rows", 1_000_000, "data rows")
	out := flag.String("o", "", "output file")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "encryptbench: -o FILE is required")
		os.Exit(2)
	}
	start := time.Now()
	closeTime, size, err := run(*mode, *rows, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "encryptbench:", err)
		os.Exit(1)
	}
	wall := time.Since(start)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("mode=%s rows=%d wall_s=%.3f rows_per_s=%.0f close_s=%.3f peak_rss_mib=%.1f size_mib=%.1f\n",
		*mode, *rows, wall.Seconds(), float64(*rows)/wall.Seconds(), closeTime.Seconds(), float64(ru.Maxrss)/1024, float64(size)/(1<<20))
}

func run(mode string, rows int, path string) (closeTime time.Duration, size int64, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	switch mode {
	case "plain":
		// The xlsx writer writes 64 KiB chunks; a bufio.Writer of the
		// same size as the encrypting writer's keeps the comparison fair.
		bw := bufio.NewWriterSize(f, 64<<10)
		if err := writeWorkbook(bw, rows); err != nil {
			return 0, 0, err
		}
		if err := bw.Flush(); err != nil {
			return 0, 0, err
		}
	case "encrypted":
		w, err := encrypt.NewWriter(f, encrypt.GeneratePassword())
		if err != nil {
			return 0, 0, err
		}
		if err := writeWorkbook(w, rows); err != nil {
			return 0, 0, err
		}
		t := time.Now()
		if err := w.Close(); err != nil {
			return 0, 0, err
		}
		closeTime = time.Since(t)
	default:
		return 0, 0, fmt.Errorf("unknown mode %q", mode)
	}
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	return closeTime, st.Size(), nil
}

func writeWorkbook(dst io.Writer, rows int) error {
	return dataset.WriteXLSX(xlsx.NewWriter(dst), rows)
}
