package xlsx

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// inflatedSoFar inflates what the sink holds of the first sheet's entry.
// After a Flush, that must be every byte of XML written so far.
func inflatedSoFar(t *testing.T, b []byte) []byte {
	t.Helper()
	name := []byte("xl/worksheets/sheet1.xml")
	i := bytes.Index(b, name)
	if i < 30 {
		t.Fatal("sheet entry not found in the flushed bytes")
	}
	out, err := io.ReadAll(flate.NewReader(bytes.NewReader(b[i+len(name):])))
	if !errors.Is(err, io.ErrUnexpectedEOF) && err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return out
}

func TestFlushKeepsContent(t *testing.T) {
	modes(t, func(t *testing.T, single bool) {
		fill := func(w *Writer, flush func(row int)) {
			writeCorpus(t, w, "Corpus")
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range 5000 {
				row := []Cell{Int(int64(i)), String("row " + strconv.Itoa(i) + " 김민준"), Float(rng.Float64()), DateTime(time.Date(2020, 1, 1, 0, i, 0, 0, time.UTC))}
				if err := w.Write(row); err != nil {
					t.Fatal(err)
				}
				flush(i)
			}
		}
		created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
		plain, _ := writeBytes(t, func(w *Writer) { w.SingleThread = single; w.Properties.Created = created }, func(w *Writer) { fill(w, func(int) {}) })

		var sink bytes.Buffer
		w := NewWriter(&sink)
		w.SingleThread = single
		w.Properties.Created = created
		rng := rand.New(rand.NewPCG(3, 4))
		flushes := 0
		fill(w, func(i int) {
			if rng.IntN(10) != 0 {
				return
			}
			before := sink.Len()
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			flushes++
			if sink.Len() <= before {
				t.Fatalf("row %d: Flush wrote nothing", i)
			}
			if flushes%50 == 0 { // check: everything so far has left
				xml := inflatedSoFar(t, sink.Bytes())
				want := `<row r="` + strconv.Itoa(len(corpus())+2+i) + `">`
				if j := bytes.LastIndex(xml, []byte("<row ")); j < 0 || !bytes.HasPrefix(xml[j:], []byte(want)) || !bytes.HasSuffix(xml, []byte("</row>")) {
					t.Fatalf("row %d: flushed XML ends %q, want the whole row %s", i, xml[max(0, len(xml)-80):], want)
				}
			}
		})
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		flushed := sink.Bytes()
		if len(flushed) <= len(plain) {
			t.Errorf("flushed file is %d bytes, plain %d: expected the empty blocks to add bytes", len(flushed), len(plain))
		}
		a, b := unzipAll(t, plain), unzipAll(t, flushed)
		if len(a) != len(b) {
			t.Fatalf("%d parts vs %d", len(a), len(b))
		}
		for name, content := range a {
			if !bytes.Equal(content, b[name]) {
				t.Errorf("part %s differs after %d flushes", name, flushes)
			}
		}
		if _, sheets := readExcelize(t, flushed); len(sheets["Corpus"]) != len(corpus())+1+5000 {
			t.Errorf("read %d rows back", len(sheets["Corpus"]))
		}
	})
}

// A writer that has written its leading parts and flushes keep-alives
// while it waits for its first row holds no compressor: its bytes so far
// are stored deflate blocks, a few KiB in all.
func TestWaitingWriterIsSmall(t *testing.T) {
	modes(t, func(t *testing.T, single bool) {
		const writers = 20
		ws := make([]*Writer, writers)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range ws {
			w := NewWriter(discard{})
			w.SingleThread = single
			if err := w.NewSheet("S", []Column{{Header: "id"}, {Header: "name"}}); err != nil {
				t.Fatal(err)
			}
			for range 5 {
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			ws[i] = w
		}
		runtime.ReadMemStats(&after)
		// A compressor alone is about a MiB, and the pipe's buffers 320 KiB.
		if per := (after.TotalAlloc - before.TotalAlloc) / writers; per > 32<<10 {
			t.Errorf("a waiting writer allocated %d bytes, want under 32 KiB", per)
		}
		for _, w := range ws {
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// Keep-alives before the first row (stored blocks), then rows (deflated
// in the same entry): the workbook holds the same parts as one written
// without flushes, and what has left after each keep-alive inflates to
// the sheet's XML so far.
func TestKeepAliveBeforeFirstRow(t *testing.T) {
	modes(t, func(t *testing.T, single bool) {
		created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
		fill := func(w *Writer, wait func()) {
			if err := w.NewSheet("S", []Column{{Header: "id"}, {Header: "name"}}); err != nil {
				t.Fatal(err)
			}
			wait()
			for i := range 3000 {
				if err := w.Write([]Cell{Int(int64(i)), String("김민준 " + strconv.Itoa(i))}); err != nil {
					t.Fatal(err)
				}
			}
		}
		plain, _ := writeBytes(t, func(w *Writer) { w.SingleThread = single; w.Properties.Created = created }, func(w *Writer) { fill(w, func() {}) })

		var sink bytes.Buffer
		w := NewWriter(&sink)
		w.SingleThread = single
		w.Properties.Created = created
		fill(w, func() {
			for range 3 {
				before := sink.Len()
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				if sink.Len() <= before {
					t.Fatal("a keep-alive wrote nothing")
				}
				if xml := inflatedSoFar(t, sink.Bytes()); !bytes.HasSuffix(xml, []byte(`<row r="1"><c s="1" t="inlineStr"><is><t>id</t></is></c><c s="1" t="inlineStr"><is><t>name</t></is></c></row>`)) {
					t.Fatalf("after a keep-alive the sheet inflates to %q, want it to end with the header row", xml)
				}
			}
		})
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		a, b := unzipAll(t, plain), unzipAll(t, sink.Bytes())
		if len(a) != len(b) {
			t.Fatalf("%d parts vs %d", len(a), len(b))
		}
		for name, content := range a {
			if !bytes.Equal(content, b[name]) {
				t.Errorf("part %s differs after keep-alives before the first row", name)
			}
		}
		if _, sheets := readExcelize(t, sink.Bytes()); len(sheets["S"]) != 3001 {
			t.Errorf("read %d rows back, want 3001", len(sheets["S"]))
		}
	})
}
