package xlsx

import (
	"strconv"
	"testing"
	"time"

	"github.com/exportd/exportd/internal/cputime"
)

// benchRows writes b.N rows shaped like the standard benchmark dataset
// (bench/dataset) and reports sheet rows per second.
func benchRows(b *testing.B, single bool) {
	cols := []Column{{Header: "id"}, {Header: "name"}, {Header: "email"}, {Header: "signup_at", NumFmt: "yyyy-mm-dd hh:mm:ss"}, {Header: "score_avg"}, {Header: "visits"}, {Header: "active"}, {Header: "balance", NumFmt: "#,##0.00"}, {Header: "note"}, {Header: "category"}}
	var sink countSink
	w := NewWriter(&sink)
	w.SingleThread = single
	if err := w.NewSheet("Sheet1", cols); err != nil {
		b.Fatal(err)
	}
	epoch := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	row := make([]Cell, 10)
	email := make([]byte, 0, 32)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	for i := range b.N {
		n := int64(i)
		email = append(strconv.AppendInt(append(email[:0], "user"...), n, 10), "@example.com"...)
		row[0] = Int(n + 1)
		row[1] = String("김민준")
		row[2] = String(string(email))
		row[3] = DateTime(epoch.Add(time.Duration(n*37) * time.Minute))
		row[4] = Float(float64((n*7919)%10000) / 100)
		row[5] = Int((n * 31) % 5000)
		row[6] = Bool(i%3 != 0)
		row[7] = Float(float64((n*104729)%10000000) / 100)
		row[8] = String("R&D, priority \"1\"\nline")
		row[9] = String("platinum")
		if err := w.Write(row); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	cpu := cputime.Process() - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(sink.n)/float64(b.N), "B/row")
	// The process's CPU (both goroutines), and the sheet's XML before
	// deflate: the firmer figures on a shared machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/row")
	for _, e := range w.z.entries {
		if e.name == "xl/worksheets/sheet1.xml" {
			b.ReportMetric(float64(e.usize)/float64(b.N), "xml-B/row")
		}
	}
}

func BenchmarkWriteRows(b *testing.B)       { benchRows(b, false) }
func BenchmarkWriteRowsSingle(b *testing.B) { benchRows(b, true) }

func BenchmarkAppendText(b *testing.B) {
	var w Writer
	buf := make([]byte, 0, 1024)
	s := "메모 12345 — R&D <priority> said \"hi\" and_more_text"
	b.SetBytes(int64(len(s)))
	for range b.N {
		buf = w.appendText(buf[:0], s)
	}
}

type countSink struct{ n int64 }

func (c *countSink) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
