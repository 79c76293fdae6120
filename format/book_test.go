package format

import (
	"archive/zip"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/exportd/exportd"
)

// A ZIP's entries are named after the sheets, with the characters file
// systems refuse replaced and made unique; each holds its sheet's file.
func TestBookZipEntries(t *testing.T) {
	var buf bytes.Buffer
	names := []string{"a<b", "a>b", "요약"}
	makers := BookWriters(exportd.FormatTSV, names, Options{})
	cols := []exportd.Column{{Name: "x"}}
	for i, nw := range makers {
		w, err := nw(&buf, cols)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteRow([]exportd.Value{exportd.String(names[i])}); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		got = append(got, f.Name+"="+string(b))
	}
	if want := "a_b.tsv=x\na<b\n|a_b (2).tsv=x\na>b\n|요약.tsv=x\n요약\n"; strings.Join(got, "|") != want {
		t.Errorf("entries %q, want %q", strings.Join(got, "|"), want)
	}
}

// Each flush of a sheet of a ZIP sends bytes (an empty deflate block when
// nothing is new), so a keep-alive reaches the client.
func TestBookZipFlushSends(t *testing.T) {
	var buf bytes.Buffer
	nw := BookWriters(exportd.FormatCSV, []string{"s"}, Options{})[0]
	w, err := nw(&buf, []exportd.Column{{Name: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		n := buf.Len()
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if buf.Len() <= n {
			t.Fatalf("a flush sent nothing (%d bytes)", n)
		}
	}
	w.Abort()
	if err := w.WriteRow([]exportd.Value{exportd.String("x")}); err == nil {
		t.Error("a row written after Abort")
	}
}
