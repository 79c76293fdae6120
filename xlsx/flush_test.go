package xlsx

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"math/rand/v2"
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
