package xlsx

import (
	"archive/zip"
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func writeBytes(t testing.TB, configure func(*Writer), fill func(*Writer)) ([]byte, *Writer) {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if configure != nil {
		configure(w)
	}
	fill(w)
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes(), w
}

// modes runs a test single-threaded and with the deflate goroutine.
func modes(t *testing.T, f func(t *testing.T, single bool)) {
	for _, single := range []bool{false, true} {
		t.Run("single="+strconv.FormatBool(single), func(t *testing.T) { f(t, single) })
	}
}

func TestCorpusExcelize(t *testing.T) {
	modes(t, func(t *testing.T, single bool) {
		data, w := writeBytes(t, func(w *Writer) { w.SingleThread = single }, func(w *Writer) { writeCorpus(t, w, "Corpus") })
		if got := w.Truncated(); got != truncatedInCorpus {
			t.Errorf("Truncated() = %d, want %d", got, truncatedInCorpus)
		}
		if got := w.TextDates(); got != textDatesInCorpus {
			t.Errorf("TextDates() = %d, want %d", got, textDatesInCorpus)
		}
		names, sheets := readExcelize(t, data)
		if len(names) != 1 || names[0] != "Corpus" {
			t.Fatalf("sheets %q", names)
		}
		grid := sheets["Corpus"]
		if h := cellAt(grid, 0, 1); h.text != "value" || h.kind != 's' {
			t.Errorf("header B1 = %+v", h)
		}
		for i, c := range corpus() {
			if label := cellAt(grid, i+1, 0); label.text != c.name {
				t.Errorf("row %d: label %q, want %q", i+2, label.text, c.name)
			}
			if err := cellAt(grid, i+1, 1).check(c.want); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
		}
	})
}

func TestWorkbookParts(t *testing.T) {
	data, _ := writeBytes(t, func(w *Writer) {
		w.Properties = Properties{Title: "Q3 <report>", Creator: "exportd", Company: "ACME & Co", Created: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}
	}, func(w *Writer) {
		if err := w.NewSheet("It's data", []Column{{Header: "id", Width: 12}, {Header: "when", NumFmt: "yyyy-mm-dd hh:mm"}, {Header: "amount", NumFmt: "#,##0.00"}}); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := w.Write([]Cell{Int(int64(i)), DateTime(time.Date(2024, 1, 1, 10, 30, 0, 0, time.UTC)), Float(1234.5)}); err != nil {
				t.Fatal(err)
			}
		}
	})
	parts := unzipAll(t, data)
	for _, name := range []string{"[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/styles.xml", "xl/worksheets/sheet1.xml", "docProps/core.xml", "docProps/app.xml"} {
		if _, ok := parts[name]; !ok {
			t.Errorf("part %s missing", name)
		}
	}
	sheet := string(parts["xl/worksheets/sheet1.xml"])
	for _, s := range []string{`<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>`, `<autoFilter ref="A1:C4"/>`, `<col min="1" max="1" width="12" customWidth="1"/>`, `<row r="1"><c s="1" t="inlineStr"><is><t>id</t></is></c><c s="1" t="inlineStr"><is><t>when</t>`} {
		if !strings.Contains(sheet, s) {
			t.Errorf("sheet lacks %s", s)
		}
	}
	if strings.Contains(sheet, "<dimension") {
		t.Error("sheet has a <dimension>, which a streaming writer cannot know")
	}
	wb := string(parts["xl/workbook.xml"])
	if want := `<definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">&apos;It&apos;&apos;s data&apos;!$A$1:$C$4</definedName>`; !strings.Contains(wb, want) {
		t.Errorf("workbook.xml lacks %s:\n%s", want, wb)
	}
	styles := string(parts["xl/styles.xml"])
	for _, s := range []string{`formatCode="yyyy-mm-dd hh:mm"`, `formatCode="#,##0.00"`, `<b/>`} {
		if !strings.Contains(styles, s) {
			t.Errorf("styles.xml lacks %s", s)
		}
	}
	// The default date format is registered for every column, but each
	// distinct format appears once.
	if n := strings.Count(styles, `formatCode="yyyy-mm-dd hh:mm"`); n != 1 {
		t.Errorf("format appears %d times", n)
	}
	core := string(parts["docProps/core.xml"])
	for _, s := range []string{"<dc:title>Q3 &lt;report&gt;</dc:title>", "<dc:creator>exportd</dc:creator>", ">2024-05-06T07:08:09Z</dcterms:created>"} {
		if !strings.Contains(core, s) {
			t.Errorf("core.xml lacks %s", s)
		}
	}
	if !strings.Contains(string(parts["docProps/app.xml"]), "<Company>ACME &amp; Co</Company>") {
		t.Error("app.xml lacks the company")
	}
	_, sheets := readExcelize(t, data)
	grid := sheets["It's data"]
	if err := cellAt(grid, 3, 1).check(serial(45292 + 10.5/24)); err != nil {
		t.Error(err)
	}
}

func TestNoHeaderNoPanes(t *testing.T) {
	data, _ := writeBytes(t, nil, func(w *Writer) {
		if err := w.NewSheet("S", []Column{{Width: 5}}); err != nil {
			t.Fatal(err)
		}
		if err := w.Write([]Cell{Int(1)}); err != nil {
			t.Fatal(err)
		}
	})
	parts := unzipAll(t, data)
	sheet := string(parts["xl/worksheets/sheet1.xml"])
	if strings.Contains(sheet, "<pane") || strings.Contains(sheet, "<autoFilter") || strings.Contains(string(parts["xl/workbook.xml"]), "definedName") {
		t.Errorf("sheet without header has pane or filter:\n%s", sheet)
	}
	if !strings.Contains(sheet, `<row r="1"><c><v>1</v></c></row>`) {
		t.Errorf("first data row is not row 1:\n%s", sheet)
	}
}

func TestRolloverAndSheets(t *testing.T) {
	long := strings.Repeat("n", MaxSheetName)
	cols := []Column{{Header: "i", Width: 7}, {Header: "sq", NumFmt: "0.0"}}
	data, _ := writeBytes(t, func(w *Writer) { w.MaxRows = 3 }, func(w *Writer) {
		if err := w.NewSheet("Data", cols); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			if err := w.Write([]Cell{Int(int64(i)), Int(int64(i * i))}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.NewSheet(long, nil); err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			if err := w.Write([]Cell{String("x" + strconv.Itoa(i))}); err != nil {
				t.Fatal(err)
			}
		}
		// A user sheet that takes the next rollover name is skipped over.
		if err := w.NewSheet("Other (2)", []Column{{Header: "h"}}); err != nil {
			t.Fatal(err)
		}
		if err := w.NewSheet("Other", []Column{{Header: "h"}}); err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			if err := w.Write([]Cell{Int(int64(i))}); err != nil {
				t.Fatal(err)
			}
		}
	})
	names, sheets := readExcelize(t, data)
	wantNames := []string{"Data", "Data (2)", "Data (3)", "Data (4)", long, strings.Repeat("n", MaxSheetName-4) + " (2)", "Other (2)", "Other", "Other (3)"}
	if strings.Join(names, "|") != strings.Join(wantNames, "|") {
		t.Fatalf("sheets %q\nwant   %q", names, wantNames)
	}
	parts := unzipAll(t, data)
	i := 0
	for s := range 4 {
		grid := sheets[names[s]]
		if h := cellAt(grid, 0, 0); h.text != "i" {
			t.Errorf("%s: header %+v", names[s], h)
		}
		for r := 1; r < len(grid); r++ {
			if err := cellAt(grid, r, 1).check(num(float64(i * i))); err != nil {
				t.Errorf("%s row %d: %v", names[s], r+1, err)
			}
			i++
		}
		xml := string(parts["xl/worksheets/sheet"+strconv.Itoa(s+1)+".xml"])
		if !strings.Contains(xml, `<col min="1" max="1" width="7" customWidth="1"/>`) || !strings.Contains(xml, `state="frozen"`) {
			t.Errorf("%s lacks widths or panes", names[s])
		}
	}
	if i != 10 {
		t.Errorf("read %d data rows over the rollover sheets, want 10", i)
	}
	if got := len(sheets[names[4]]); got != 3 {
		t.Errorf("headerless sheet has %d rows, want 3", got)
	}
	if got := cellAt(sheets[names[5]], 0, 0).text; got != "x3" {
		t.Errorf("headerless rollover row = %q", got)
	}
}

func TestSheetNames(t *testing.T) {
	bad := []string{"", strings.Repeat("x", 32), "a/b", `a\b`, "a?", "a*", "a:b", "[a]", "'q", "q'", "history", "tab\tname", strings.Repeat("😀", 16)}
	for _, name := range bad {
		w := NewWriter(&bytes.Buffer{})
		if err := w.NewSheet(name, nil); !errors.Is(err, ErrSheetName) {
			t.Errorf("NewSheet(%q) = %v, want ErrSheetName", name, err)
		}
	}
	w := NewWriter(&bytes.Buffer{})
	for _, name := range []string{strings.Repeat("가", 31), "It's", "Data (2)", "Sales"} {
		if err := w.NewSheet(name, nil); err != nil {
			t.Errorf("NewSheet(%q) = %v", name, err)
		}
	}
	if err := w.NewSheet("SALES", nil); !errors.Is(err, ErrSheetName) || !strings.Contains(err.Error(), "exists") {
		t.Errorf("duplicate name: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestWriteBeforeNewSheet(t *testing.T) {
	data, _ := writeBytes(t, nil, func(w *Writer) {
		if err := w.Write([]Cell{String("a"), Int(1)}); err != nil {
			t.Fatal(err)
		}
	})
	names, sheets := readExcelize(t, data)
	if len(names) != 1 || names[0] != "Sheet1" || cellAt(sheets["Sheet1"], 0, 0).text != "a" {
		t.Errorf("sheets %q %v", names, sheets)
	}
	empty, _ := writeBytes(t, nil, func(*Writer) {})
	if names, _ := readExcelize(t, empty); len(names) != 1 || names[0] != "Sheet1" {
		t.Errorf("empty workbook sheets %q", names)
	}
}

func TestClosed(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	n := buf.Len()
	if err := w.Write([]Cell{Int(1)}); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
	if err := w.NewSheet("x", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("NewSheet after Close = %v", err)
	}
	if err := w.Flush(); err != nil || buf.Len() != n {
		t.Errorf("Flush after Close = %v, wrote %d bytes", err, buf.Len()-n)
	}
}

func TestTooManyColumns(t *testing.T) {
	w := NewWriter(&bytes.Buffer{})
	if err := w.Write(make([]Cell, MaxColumns+1)); !errors.Is(err, ErrTooManyColumns) {
		t.Errorf("Write = %v", err)
	}
	row := make([]Cell, MaxColumns)
	row[MaxColumns-1] = Int(5)
	if err := w.Write(row); err != nil {
		t.Fatal(err)
	}
	if got := columnName(MaxColumns - 1); got != "XFD" {
		t.Errorf("last column %q", got)
	}
}

// firstByteSink records how many bytes arrived, and when.
type firstByteSink struct{ bytes.Buffer }

func TestFirstByteBeforeFirstRow(t *testing.T) {
	modes(t, func(t *testing.T, single bool) {
		var sink firstByteSink
		w := NewWriter(&sink)
		w.SingleThread = single
		if err := w.NewSheet("S", []Column{{Header: "a"}}); err != nil {
			t.Fatal(err)
		}
		b := sink.Bytes()
		if len(b) < 4 || string(b[:4]) != "PK\x03\x04" {
			t.Fatalf("after NewSheet the sink holds %d bytes %q, want a ZIP local header", len(b), b)
		}
		if !bytes.Contains(b, []byte("xl/worksheets/sheet1.xml")) {
			t.Error("the sheet's local header has not left yet")
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// errSink fails after n bytes.
type errSink struct{ n int }

var errFull = errors.New("sink full")

func (s *errSink) Write(p []byte) (int, error) {
	if len(p) > s.n {
		k := s.n
		s.n = 0
		return k, errFull
	}
	s.n -= len(p)
	return len(p), nil
}

func TestSinkError(t *testing.T) {
	modes(t, func(t *testing.T, single bool) {
		w := NewWriter(&errSink{n: 100_000})
		w.SingleThread = single
		if err := w.NewSheet("S", nil); err != nil {
			t.Fatal(err)
		}
		var err error
		row := []Cell{String(strings.Repeat("incompressible? no, but many rows ", 10)), Int(1)}
		for i := 0; i < 1_000_000 && err == nil; i++ {
			row[1] = Int(int64(i))
			err = w.Write(row)
			if i%1000 == 0 && err == nil {
				err = w.Flush()
			}
		}
		if !errors.Is(err, errFull) {
			t.Fatalf("writes ended with %v, want the sink's error", err)
		}
		if err := w.Error(); !errors.Is(err, errFull) {
			t.Errorf("Error() = %v", err)
		}
		if err := w.Close(); !errors.Is(err, errFull) {
			t.Errorf("Close() = %v", err)
		}
	})
}

func TestNoAllocsPerRow(t *testing.T) {
	modes(t, func(t *testing.T, single bool) {
		w := NewWriter(discard{})
		w.SingleThread = single
		if err := w.NewSheet("S", []Column{{Header: "a", NumFmt: "0.00"}, {Header: "b"}}); err != nil {
			t.Fatal(err)
		}
		row := []Cell{Float(3.25), String("김민준 <x> & y"), Int(12345), DateTime(time.Date(2020, 1, 1, 0, 37, 0, 0, time.UTC)), Bool(true), Decimal("12.50"), Date(day(1800, 1, 1))}
		if n := testing.AllocsPerRun(2000, func() {
			if err := w.Write(row); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("Write allocates %v times per row", n)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestAbort(t *testing.T) {
	for _, single := range []bool{false, true} {
		var sink bytes.Buffer
		w := NewWriter(&sink)
		w.SingleThread = single
		if err := w.NewSheet("S", []Column{{Header: "a"}}); err != nil {
			t.Fatal(err)
		}
		for i := range 10000 {
			if err := w.Write([]Cell{Int(int64(i))}); err != nil {
				t.Fatal(err)
			}
		}
		w.Abort()
		n := sink.Len()
		if err := w.Write([]Cell{Int(1)}); !errors.Is(err, ErrAborted) {
			t.Errorf("Write after Abort: %v", err)
		}
		if err := w.Close(); !errors.Is(err, ErrAborted) {
			t.Errorf("Close after Abort: %v", err)
		}
		if sink.Len() != n {
			t.Errorf("single=%v: %d bytes written after Abort", single, sink.Len()-n)
		}
		if _, err := zip.NewReader(bytes.NewReader(sink.Bytes()), int64(sink.Len())); err == nil {
			t.Errorf("single=%v: an aborted workbook reads as a whole archive", single)
		}
	}
}
