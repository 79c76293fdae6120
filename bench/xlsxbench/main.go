// Command xlsxbench writes the standard benchmark dataset (bench/dataset) as
// XLSX with exportd's xlsx writer or with excelize's StreamWriter, and
// prints wall time, rows/s, peak RSS, output size and time to first byte.
//
//	go run ./bench/xlsxbench -writer exportd|excelize -rows N -o FILE|-
//
// -writer floor writes the same sheet XML with a bare loop (strconv into a
// reused buffer, klauspost flate, no ZIP container, no escaping), and
// -writer floor-xml only formats it: the cost floors of the real writers.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/exportd/exportd/bench/dataset"
	"github.com/exportd/exportd/xlsx"
	"github.com/klauspost/compress/flate"
	"github.com/xuri/excelize/v2"
)

var start = time.Now()

// probe counts bytes and timestamps the first Write.
type probe struct {
	w     io.Writer
	n     int64
	first time.Duration
	once  sync.Once
}

func (p *probe) Write(b []byte) (int, error) {
	p.once.Do(func() { p.first = time.Since(start) })
	n, err := p.w.Write(b)
	p.n += int64(n)
	return n, err
}

func main() {
	writer := flag.String("writer", "exportd", "exportd, excelize, floor or floor-xml")
	rows := flag.Int("rows", 100_000, "data rows")
	out := flag.String("o", "-", "output file, - for stdout")
	level := flag.Int("level", 0, "deflate level for exportd (0: the writer's default)")
	single := flag.Bool("single", false, "exportd: deflate in the calling goroutine")
	flag.Parse()

	var dst io.Writer = os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		dst = f
	}
	p := &probe{w: dst}
	var err error
	switch *writer {
	case "exportd":
		err = writeExportd(p, *rows, *level, *single)
	case "excelize":
		err = writeExcelize(p, *rows)
	case "floor", "floor-xml":
		err = writeFloor(p, *rows, *writer == "floor")
	default:
		err = fmt.Errorf("unknown writer %q", *writer)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "xlsxbench:", err)
		os.Exit(1)
	}
	wall := time.Since(start)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Fprintf(os.Stderr, "writer=%s rows=%d wall_s=%.3f rows_per_s=%.0f peak_rss_mib=%.1f size_mib=%.1f ttfb_s=%.3f\n",
		*writer, *rows, wall.Seconds(), float64(*rows)/wall.Seconds(), float64(ru.Maxrss)/1024, float64(p.n)/(1<<20), p.first.Seconds())
}

func writeExportd(w io.Writer, rows, level int, single bool) error {
	xw := xlsx.NewWriter(w)
	xw.Level = level
	xw.SingleThread = single
	return dataset.WriteXLSX(xw, rows)
}

func writeExcelize(w io.Writer, rows int) error {
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		return err
	}
	dtFmt, money := "yyyy-mm-dd hh:mm:ss", "#,##0.00"
	dt, err := f.NewStyle(&excelize.Style{CustomNumFmt: &dtFmt})
	if err != nil {
		return err
	}
	bal, err := f.NewStyle(&excelize.Style{CustomNumFmt: &money})
	if err != nil {
		return err
	}
	head := make([]any, len(dataset.Columns))
	for i, c := range dataset.Columns {
		head[i] = c
	}
	if err := sw.SetRow("A1", head); err != nil {
		return err
	}
	var g dataset.Generator
	row := make([]any, 10)
	for i := range rows {
		r := g.Row(i)
		row[0] = r.ID
		row[1] = r.Name
		row[2] = string([]byte(r.Email)) // excelize keeps nothing, but be safe: the generator reuses bytes
		row[3] = excelize.Cell{StyleID: dt, Value: r.SignupAt}
		row[4] = r.ScoreAvg
		row[5] = r.Visits
		row[6] = r.Active
		row[7] = excelize.Cell{StyleID: bal, Value: r.Balance}
		if r.NoteNull {
			row[8] = nil
		} else {
			row[8] = string([]byte(r.Note))
		}
		row[9] = r.Category
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		if err := sw.SetRow(cell, row); err != nil {
			return err
		}
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	return f.Write(w)
}

// writeFloor formats the sheet XML of the dataset with the least work that
// still produces realistic markup, and deflates it (klauspost level 1).
func writeFloor(w io.Writer, rows int, deflate bool) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	var sink io.Writer = io.Discard
	var fw *flate.Writer
	if deflate {
		var err error
		fw, err = flate.NewWriter(bw, 1)
		if err != nil {
			return err
		}
		sink = fw
	}
	letters := []string{"A", "B", "C", "D", "E", "F", "G", "H", "I", "J"}
	var g dataset.Generator
	b := make([]byte, 0, 80<<10)
	var total int64
	for i := range rows {
		r := g.Row(i)
		rn := strconv.Itoa(i + 2)
		b = append(b, `<row r="`...)
		b = append(b, rn...)
		b = append(b, `">`...)
		// A cell carries its reference only after a gap in its row (the
		// NULL note), as the xlsx writer writes it.
		next := 0
		cell := func(col int, attrs string) {
			b = append(b, `<c`...)
			if col != next {
				b = append(b, ` r="`...)
				b = append(b, letters[col]...)
				b = append(b, rn...)
				b = append(b, '"')
			}
			next = col + 1
			b = append(b, attrs...)
		}
		cell(0, `><v>`)
		b = strconv.AppendInt(b, r.ID, 10)
		b = append(b, `</v></c>`...)
		cell(1, ` t="inlineStr"><is><t>`)
		b = append(b, r.Name...)
		b = append(b, `</t></is></c>`...)
		cell(2, ` t="inlineStr"><is><t>`)
		b = append(b, r.Email...)
		b = append(b, `</t></is></c>`...)
		cell(3, ` s="2"><v>`)
		b = strconv.AppendFloat(b, dataset.Serial(i), 'f', -1, 64)
		b = append(b, `</v></c>`...)
		cell(4, `><v>`)
		b = strconv.AppendFloat(b, r.ScoreAvg, 'g', -1, 64)
		b = append(b, `</v></c>`...)
		cell(5, `><v>`)
		b = strconv.AppendInt(b, r.Visits, 10)
		b = append(b, `</v></c>`...)
		if r.Active {
			cell(6, ` t="b"><v>1</v></c>`)
		} else {
			cell(6, ` t="b"><v>0</v></c>`)
		}
		cell(7, ` s="3"><v>`)
		b = strconv.AppendFloat(b, r.Balance, 'g', -1, 64)
		b = append(b, `</v></c>`...)
		if !r.NoteNull {
			cell(8, ` t="inlineStr"><is><t>`)
			b = append(b, r.Note...)
			b = append(b, `</t></is></c>`...)
		}
		cell(9, ` t="inlineStr"><is><t>`)
		b = append(b, r.Category...)
		b = append(b, `</t></is></c></row>`...)
		if len(b) >= 64<<10 {
			total += int64(len(b))
			if _, err := sink.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	total += int64(len(b))
	if _, err := sink.Write(b); err != nil {
		return err
	}
	if fw != nil {
		if err := fw.Close(); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "floor: %d bytes of sheet XML\n", total)
	return bw.Flush()
}
