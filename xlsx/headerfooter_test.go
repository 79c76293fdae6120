package xlsx

import (
	"archive/zip"
	"bytes"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// The header and footer are in every sheet, rollover sheets included, in
// the place CT_Worksheet gives them, escaped; excelize reads them back.
func TestHeaderFooter(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.MaxRows = 2
	hf := HeaderFooter{
		OddHeader: "&L" + HeaderFooterText("내려받은 사람: kim & <lee>") + "&R2025-01-02 03:04",
		OddFooter: "&C&P / &N",
	}
	w.HeaderFooter = hf
	w.Properties = Properties{Creator: "kim", Description: "내려받은 사람 kim, 2025-01-02 03:04"}
	if err := w.NewSheet("명단", []Column{{Header: "이름"}}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		if err := w.Write([]Cell{{Type: CellString, S: s}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if hf.OddHeader != "&L내려받은 사람: kim && <lee>&R2025-01-02 03:04" {
		t.Fatalf("HeaderFooterText: %q", hf.OddHeader)
	}

	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	want := `<autoFilter ref="A1:A3"/><headerFooter><oddHeader>&amp;L내려받은 사람: kim &amp;&amp; &lt;lee&gt;&amp;R2025-01-02 03:04</oddHeader><oddFooter>&amp;C&amp;P / &amp;N</oddFooter></headerFooter></worksheet>`
	sheets := 0
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, "xl/worksheets/sheet") {
			continue
		}
		sheets++
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		got := regexp.MustCompile(`<autoFilter[^>]*/>.*$`).FindString(string(b))
		if got != strings.Replace(want, "A1:A3", regexp.MustCompile(`A1:A\d`).FindString(got), 1) {
			t.Errorf("%s ends with\n%s\nwant\n%s", f.Name, got, want)
		}
	}
	if sheets != 3 {
		t.Errorf("%d sheets, want 3 (2 rows each)", sheets)
	}

	x, err := excelize.OpenReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	for _, name := range x.GetSheetList() {
		got, err := x.GetHeaderFooter(name)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil || got.OddHeader != hf.OddHeader || got.OddFooter != hf.OddFooter {
			t.Errorf("sheet %s: excelize reads %+v", name, got)
		}
	}
	props, err := x.GetDocProps()
	if err != nil {
		t.Fatal(err)
	}
	if props.Creator != "kim" || props.Description != "내려받은 사람 kim, 2025-01-02 03:04" {
		t.Errorf("document properties %+v", props)
	}
}
