package xlsx

import (
	"archive/zip"
	"bufio"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// checkLayout checks the ZIP layout of doc.go against the raw bytes: every
// local header says version 45, flag bit 3, zero CRC and sizes, no extra
// field; the descriptor has 8-byte sizes exactly when a size reaches 4 GiB.
func checkLayout(t *testing.T, path string) *zip.ReadCloser {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("archive/zip: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, e := range zr.File {
		off, err := e.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		start := off - 30 - int64(len(e.Name))
		var h [30]byte
		if _, err := f.ReadAt(h[:], start); err != nil {
			t.Fatal(err)
		}
		le := binary.LittleEndian
		if le.Uint32(h[0:]) != sigLocal || le.Uint16(h[4:]) != 45 || le.Uint16(h[6:])&8 == 0 ||
			le.Uint32(h[14:]) != 0 || le.Uint32(h[18:]) != 0 || le.Uint32(h[22:]) != 0 || le.Uint16(h[28:]) != 0 {
			t.Errorf("%s: local header % x", e.Name, h)
		}
		if e.ReaderVersion != 45 || e.CreatorVersion&0xff != 45 {
			t.Errorf("%s: central directory versions %d/%d", e.Name, e.ReaderVersion, e.CreatorVersion)
		}
		zip64 := e.CompressedSize64 >= max32 || e.UncompressedSize64 >= max32
		var d [24]byte
		if _, err := f.ReadAt(d[:], off+int64(e.CompressedSize64)); err != nil {
			t.Fatal(err)
		}
		if le.Uint32(d[0:]) != sigDescriptor || le.Uint32(d[4:]) != e.CRC32 {
			t.Errorf("%s: descriptor % x", e.Name, d)
		}
		if zip64 {
			if le.Uint64(d[8:]) != e.CompressedSize64 || le.Uint64(d[16:]) != e.UncompressedSize64 {
				t.Errorf("%s: 24-byte descriptor % x, sizes %d %d", e.Name, d, e.CompressedSize64, e.UncompressedSize64)
			}
		} else if uint64(le.Uint32(d[8:])) != e.CompressedSize64 || uint64(le.Uint32(d[12:])) != e.UncompressedSize64 {
			t.Errorf("%s: 16-byte descriptor % x, sizes %d %d", e.Name, d, e.CompressedSize64, e.UncompressedSize64)
		}
	}
	return zr
}

// checkExternal tests the archive with unzip -t and Python's zipfile.
func checkExternal(t *testing.T, path string) {
	t.Helper()
	unzip := tool(t, "unzip", "-v")
	if out, err := exec.Command(unzip, "-tqq", path).CombinedOutput(); err != nil {
		t.Errorf("unzip -t: %v\n%s", err, out)
	}
	py := python3(t, "zipfile")
	script := `import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
bad = z.testzip()
assert bad is None, bad
print(max(i.file_size for i in z.infolist()))`
	if out, err := exec.Command(py, "-c", script, path).CombinedOutput(); err != nil {
		t.Errorf("python zipfile: %v\n%s", err, out)
	}
}

func TestZip64LargeEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a sheet of more than 4 GiB (about 30 s)")
	}
	path := filepath.Join(t.TempDir(), "big.xlsx")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := NewWriter(bw)
	if err := w.NewSheet("Big", []Column{{Header: "n"}, {Header: "text"}}); err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("exportd streams XLSX. ", 1400)[:30_000]
	row := []Cell{Int(0), String(text), String(text), String(text), String(text), String(text), String(text), String(text), String(text)}
	const rows = 18_000 // 18,000 × 8 × 30,000 bytes ≈ 4.3 GB of XML
	for i := range rows {
		row[0] = Int(int64(i))
		if err := w.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.NewSheet("After", []Column{{Header: "ok"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]Cell{String("after the big sheet")}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	zr := checkLayout(t, path)
	defer zr.Close()
	var big *zip.File
	for _, e := range zr.File {
		if e.Name == "xl/worksheets/sheet1.xml" {
			big = e
		}
	}
	if big == nil || big.UncompressedSize64 <= 1<<32 {
		t.Fatalf("sheet1 entry %+v is not beyond 4 GiB", big)
	}
	rc, err := big.Open()
	if err != nil {
		t.Fatal(err)
	}
	tail := &tailWriter{}
	n, err := io.Copy(tail, rc) // archive/zip checks size and CRC-32 at EOF
	rc.Close()
	if err != nil || uint64(n) != big.UncompressedSize64 {
		t.Fatalf("read %d of %d bytes: %v", n, big.UncompressedSize64, err)
	}
	if !strings.HasSuffix(string(tail.b), `<row r="18001"><c r="A18001"><v>17999</v></c>`[:0]+"</sheetData><autoFilter ref=\"A1:B18001\"/></worksheet>") {
		t.Errorf("sheet ends %q", tail.b)
	}
	checkExternal(t, path)
}

type tailWriter struct{ b []byte }

func (w *tailWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	if len(w.b) > 256 {
		w.b = append(w.b[:0], w.b[len(w.b)-256:]...)
	}
	return len(p), nil
}
