package format

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/xlsx"
)

var testCols = []exportd.Column{
	{Name: "id", Header: "번호"},
	{Name: "name", Header: "이름"},
	{Name: "score", Format: "0.00"},
	{Name: "ratio"},
	{Name: "ok"},
	{Name: "day"},
	{Name: "at"},
	{Name: "amount"},
	{Name: "note"},
}

func testRows() [][]exportd.Value {
	at := time.Date(2024, 3, 9, 14, 5, 6, 0, time.UTC)
	return [][]exportd.Value{
		{exportd.Int(1), exportd.String("김민준"), exportd.Float(79.1), exportd.Float(0.1), exportd.Bool(true),
			exportd.Date(at), exportd.DateTime(at), exportd.Decimal("12345678901234567890.123"), exportd.String(`R&D, "quoted"` + "\nline2")},
		{exportd.Int(math.MaxInt64), exportd.String("=1+1"), exportd.Float(-0.5), exportd.Float(math.NaN()), exportd.Bool(false),
			exportd.Null(), exportd.DateTime(at.Add(123 * time.Millisecond)), exportd.Decimal("-0.5"), exportd.String("")},
		{exportd.Int(-7), exportd.String("+cmd|' /C calc'!A0"), exportd.Null(), exportd.Float(math.Inf(1)), exportd.Null(),
			exportd.Null(), exportd.Null(), exportd.Null(), exportd.Null()},
		{exportd.Int(0), exportd.String("-2"), exportd.Float(1e21), exportd.Float(5e-324), exportd.Null(),
			exportd.Null(), exportd.Null(), exportd.Null(), exportd.String("@SUM(A1)\t\r")},
	}
}

func writeAll(t *testing.T, f exportd.Format, opts Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := New(f, &buf, testCols, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range testRows() {
		if err := w.WriteRow(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCSVRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		f   exportd.Format
		sep rune
	}{{exportd.FormatCSV, ','}, {exportd.FormatTSV, '\t'}} {
		t.Run(string(tc.f), func(t *testing.T) {
			out := writeAll(t, tc.f, Options{BOM: true})
			if !bytes.HasPrefix(out, []byte("\xEF\xBB\xBF")) {
				t.Fatalf("no BOM: %q", out[:8])
			}
			r := csv.NewReader(bytes.NewReader(out[3:]))
			r.Comma = tc.sep
			r.LazyQuotes = false
			got, err := r.ReadAll()
			if err != nil {
				t.Fatalf("encoding/csv cannot read our output: %v\n%s", err, out)
			}
			want := [][]string{
				{"번호", "이름", "score", "ratio", "ok", "day", "at", "amount", "note"},
				{"1", "김민준", "79.10", "0.1", "true", "2024-03-09", "2024-03-09 14:05:06", "12345678901234567890.123", "R&D, \"quoted\"\nline2"},
				{"9223372036854775807", "'=1+1", "-0.50", "NaN", "false", "", "2024-03-09 14:05:06.123", "-0.5", ""},
				{"-7", "'+cmd|' /C calc'!A0", "", "+Inf", "", "", "", "", ""},
				{"0", "'-2", "1000000000000000000000.00", "0.000" + strings.Repeat("0", 320) + "5", "", "", "", "", "'@SUM(A1)\t\r"},
			}
			if tc.f == exportd.FormatCSV {
				// encoding/csv turns \r\n inside quoted fields into \n; our field ends "\t\r" followed by a quote.
				want[4][8] = "'@SUM(A1)\t\r"
			}
			if !reflect.DeepEqual(got, want) {
				for i := range want {
					if i < len(got) && !reflect.DeepEqual(got[i], want[i]) {
						t.Errorf("row %d\n got %q\nwant %q", i, got[i], want[i])
					}
				}
				if len(got) != len(want) {
					t.Errorf("got %d records, want %d", len(got), len(want))
				}
			}
		})
	}
}

func TestCSVEmptyStringVersusNull(t *testing.T) {
	var buf bytes.Buffer
	w, err := New(exportd.FormatCSV, &buf, []exportd.Column{{Name: "a"}, {Name: "b"}}, Options{NoHeader: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRow([]exportd.Value{exportd.String(""), exportd.Null()}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "\"\",\n" {
		t.Fatalf("got %q", got)
	}
}

func TestCSVOptions(t *testing.T) {
	cols := []exportd.Column{{Name: "a"}}
	if _, err := New(exportd.FormatCSV, &bytes.Buffer{}, cols, Options{BOM: true, SepLine: true}); !errors.Is(err, ErrBOMWithSepLine) {
		t.Fatalf("BOM+sep: err = %v", err)
	}
	var buf bytes.Buffer
	w, err := New(exportd.FormatCSV, &buf, cols, Options{SepLine: true, CRLF: true, NoFormulaGuard: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRow([]exportd.Value{exportd.String("=1+1")}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRow([]exportd.Value{exportd.Int(-3)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "sep=,\r\na\r\n=1+1\r\n-3\r\n"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestFormulaGuardNeverTouchesNumbers(t *testing.T) {
	var buf bytes.Buffer
	w, err := New(exportd.FormatCSV, &buf, []exportd.Column{{Name: "i"}, {Name: "f"}, {Name: "d"}}, Options{NoHeader: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRow([]exportd.Value{exportd.Int(-1), exportd.Float(-2.5), exportd.Decimal("-3.25")}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "-1,-2.5,-3.25\n" {
		t.Fatalf("got %q", got)
	}
}

func TestJSONL(t *testing.T) {
	out := writeAll(t, exportd.FormatJSONL, Options{})
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(testRows()) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(testRows()), out)
	}
	var objs []map[string]any
	for _, l := range lines {
		d := json.NewDecoder(strings.NewReader(l))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		objs = append(objs, m)
	}
	want0 := map[string]any{"id": json.Number("1"), "name": "김민준", "score": json.Number("79.1"), "ratio": json.Number("0.1"),
		"ok": true, "day": "2024-03-09", "at": "2024-03-09T14:05:06", "amount": "12345678901234567890.123", "note": "R&D, \"quoted\"\nline2"}
	if !reflect.DeepEqual(objs[0], want0) {
		t.Errorf("row 0\n got %#v\nwant %#v", objs[0], want0)
	}
	want1 := map[string]any{"id": json.Number("9223372036854775807"), "name": "=1+1", "score": json.Number("-0.5"), "ratio": nil,
		"ok": false, "day": nil, "at": "2024-03-09T14:05:06.123", "amount": "-0.5", "note": ""}
	if !reflect.DeepEqual(objs[1], want1) {
		t.Errorf("row 1\n got %#v\nwant %#v", objs[1], want1)
	}
	if objs[2]["ratio"] != nil || objs[3]["ratio"] != json.Number("5e-324") {
		t.Errorf("floats: %#v %#v", objs[2]["ratio"], objs[3]["ratio"])
	}
}

// TestSameLayout: the XLSX writer hands rows over without copying them
// only while exportd.Value and xlsx.Cell are laid out alike.
func TestSameLayout(t *testing.T) {
	if !sameLayout {
		t.Error("exportd.Value and xlsx.Cell are no longer laid out alike: every XLSX row is copied")
	}
}

func TestKindsMatchCellTypes(t *testing.T) {
	pairs := map[exportd.Kind]xlsx.CellType{
		exportd.KindNull: xlsx.CellEmpty, exportd.KindInt: xlsx.CellInt, exportd.KindFloat: xlsx.CellFloat,
		exportd.KindString: xlsx.CellString, exportd.KindBool: xlsx.CellBool, exportd.KindDate: xlsx.CellDate,
		exportd.KindDateTime: xlsx.CellDateTime, exportd.KindDecimal: xlsx.CellDecimal,
	}
	for k, c := range pairs {
		if xlsx.CellType(k) != c {
			t.Errorf("kind %v converts to cell type %d, want %d", k, xlsx.CellType(k), c)
		}
	}
}

func TestUnknownFormat(t *testing.T) {
	if _, err := New("xls", &bytes.Buffer{}, testCols, Options{}); err == nil {
		t.Fatal("no error for unknown format")
	}
	if _, err := New(exportd.FormatCSV, &bytes.Buffer{}, nil, Options{}); err == nil {
		t.Fatal("no error for no columns")
	}
}

func TestAbortWritesNothingMore(t *testing.T) {
	for _, f := range exportd.Formats {
		var buf bytes.Buffer
		w, err := New(f, &buf, testCols, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		n := buf.Len()
		if err := w.WriteRow(testRows()[0]); err != nil {
			t.Fatal(err)
		}
		w.Abort()
		if err := w.Close(); err == nil {
			t.Errorf("%s: Close after Abort succeeded", f)
		}
		if buf.Len() != n {
			t.Errorf("%s: %d bytes written after Abort", f, buf.Len()-n)
		}
	}
}
