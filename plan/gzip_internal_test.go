package plan

import (
	"bytes"
	"compress/gzip"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/flate"
)

// A gzip stream written stored before compress (with keep-alives, and a
// write longer than one stored block) and deflated after reads back as
// the bytes written, with a valid trailer; so does one never compressed.
func TestGzipWriterStoredThenDeflated(t *testing.T) {
	head := "\ufeffid,name\n" + strings.Repeat("x", 70000) + "\n"
	rows := strings.Repeat("1,김민준\n", 20000)
	for _, tc := range []struct {
		name     string
		compress bool
	}{{"compressed after the head", true}, {"never compressed", false}} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			g := newGzipWriter(&out, flate.BestSpeed)
			io.WriteString(g, head)
			for range 3 {
				before := out.Len()
				if err := g.Flush(); err != nil {
					t.Fatal(err)
				}
				if out.Len() == before {
					t.Fatal("a keep-alive wrote nothing")
				}
			}
			if tc.compress {
				g.compress()
			}
			io.WriteString(g, rows)
			if err := g.Close(); err != nil {
				t.Fatal(err)
			}
			size := out.Len()
			r, err := gzip.NewReader(&out)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != head+rows {
				t.Fatalf("read back %d bytes, want %d", len(got), len(head+rows))
			}
			if stored := size > len(head+rows); stored == tc.compress {
				t.Errorf("%d bytes for %d: compressed %v", size, len(head+rows), !stored)
			}
		})
	}
}

// Before compress, the writer allocates no compressor (about a MiB).
func TestGzipWriterWaitingIsSmall(t *testing.T) {
	const n = 20
	ws := make([]*gzipWriter, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range ws {
		ws[i] = newGzipWriter(io.Discard, flate.BestSpeed)
		io.WriteString(ws[i], "\ufeffid,name\n")
		for range 5 {
			ws[i].Flush()
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 8<<10 {
		t.Errorf("a waiting gzip writer allocated %d bytes, want under 8 KiB", per)
	}
	runtime.KeepAlive(ws)
}
