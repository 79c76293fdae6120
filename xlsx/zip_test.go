package xlsx

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestZipLayoutSmall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "corpus.xlsx")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(f)
	writeCorpus(t, w, "Corpus")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	zr := checkLayout(t, path)
	zr.Close()
	checkExternal(t, path)
}

// tailReaderAt reads as zeros up to base, then tail: an archive whose
// entries lie beyond 4 GiB, without the gigabytes.
type tailReaderAt struct {
	base int64
	tail []byte
}

func (r tailReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		o := off + int64(n)
		switch {
		case o < r.base:
			p[n] = 0
		case o-r.base < int64(len(r.tail)):
			p[n] = r.tail[o-r.base]
		default:
			return n, io.EOF
		}
		n++
	}
	return n, nil
}

// TestZip64Directory checks the central directory of an archive whose
// entries start beyond 4 GiB and whose sizes pass 4 GiB: ZIP64 extra
// fields with only the overflowing values, and the ZIP64 end record and
// locator, as archive/zip reads them.
func TestZip64Directory(t *testing.T) {
	var buf bytes.Buffer
	z := newZipWriter(&buf, 1, time.Date(2024, 1, 2, 3, 4, 6, 0, time.UTC))
	const base = 5 << 30
	z.cw.n = base
	z.entries = []zipEntry{
		{name: "small-low", offset: 100, csize: 10, usize: 20, crc: 1},
		{name: "big-low", offset: 200, csize: 5 << 30, usize: 6 << 30, crc: 2},
		{name: "small-high", offset: base - 1000, csize: 30, usize: 40, crc: 3},
		{name: "usize-high", offset: base - 500, csize: 50, usize: 1 << 33, crc: 4},
	}
	if err := z.close(); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(tailReaderAt{base: base, tail: buf.Bytes()}, base+int64(buf.Len()))
	if err != nil {
		t.Fatalf("archive/zip: %v", err)
	}
	if len(zr.File) != len(z.entries) {
		t.Fatalf("%d entries", len(zr.File))
	}
	for i, f := range zr.File {
		e := z.entries[i]
		if f.Name != e.name || f.CompressedSize64 != e.csize || f.UncompressedSize64 != e.usize || f.CRC32 != e.crc || f.Method != zip.Deflate {
			t.Errorf("entry %d read back as %s c=%d u=%d crc=%d; wrote %+v", i, f.Name, f.CompressedSize64, f.UncompressedSize64, f.CRC32, e)
		}
		// The ZIP64 extra holds, in order, the values that overflow.
		var want []byte
		for _, v := range []uint64{e.usize, e.csize, e.offset} {
			if v >= max32 {
				want = binary.LittleEndian.AppendUint64(want, v)
			}
		}
		if len(want) > 0 {
			want = append([]byte{1, 0, byte(len(want)), 0}, want...)
		}
		if !bytes.Equal(f.Extra, want) {
			t.Errorf("%s: extra % x, want % x", e.name, f.Extra, want)
		}
	}
	if !bytes.Contains(buf.Bytes(), []byte{0x50, 0x4b, 0x06, 0x06}) || !bytes.Contains(buf.Bytes(), []byte{0x50, 0x4b, 0x06, 0x07}) {
		t.Error("no ZIP64 end record or locator")
	}

	// A small archive has neither.
	var small bytes.Buffer
	w := NewWriter(&small)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(small.Bytes(), []byte{0x50, 0x4b, 0x06, 0x06}) {
		t.Error("small archive has a ZIP64 end record")
	}
}
