package sourcetest

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/format"
)

// testFiles exports the typed table through the export engine into XLSX
// and CSV, reads both back with independent readers (excelize,
// encoding/csv) and compares every cell with the value the source must
// yield, rendered as DESIGN.md's values table says.
func testFiles(t *testing.T, src exportd.Source, f Fixture) {
	tt := f.Types
	name := table(t, f, append([]string{tt.Create}, tt.Inserts...)...)
	q := exportd.Query{SQL: fmt.Sprintf(tt.Select, name)}
	export := func(fm exportd.Format) []byte {
		var buf bytes.Buffer
		e := &exportd.Export{Source: src, Query: q, Output: &buf,
			NewWriter: func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
				return format.New(fm, w, cols, format.Options{})
			}}
		st, err := e.Run(t.Context())
		if err != nil {
			t.Fatalf("export %s: %v", fm, err)
		}
		if st.Rows != int64(len(tt.Rows)) {
			t.Fatalf("export %s: %d rows, want %d", fm, st.Rows, len(tt.Rows))
		}
		return buf.Bytes()
	}

	t.Run("XLSX", func(t *testing.T) {
		x, err := excelize.OpenReader(bytes.NewReader(export(exportd.FormatXLSX)))
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		sheet := x.GetSheetName(0)
		for c, col := range tt.Columns {
			cell, _ := excelize.CoordinatesToCellName(c+1, 1)
			if got, _ := x.GetCellValue(sheet, cell); got != col.Name {
				t.Errorf("header %s = %q, want %q", cell, got, col.Name)
			}
		}
		for r, row := range tt.Rows {
			for c, want := range row {
				cell, _ := excelize.CoordinatesToCellName(c+1, r+2)
				raw, _ := x.GetCellValue(sheet, cell, excelize.Options{RawCellValue: true})
				typ, _ := x.GetCellType(sheet, cell)
				if msg := checkXLSXCell(want, raw, typ); msg != "" {
					t.Errorf("row %d column %s (%s): %s", r, tt.Columns[c].Name, cell, msg)
				}
			}
		}
	})

	t.Run("CSV", func(t *testing.T) {
		rd := csv.NewReader(bytes.NewReader(export(exportd.FormatCSV)))
		records, err := rd.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(records) != len(tt.Rows)+1 {
			t.Fatalf("%d records, want %d", len(records), len(tt.Rows)+1)
		}
		for r, row := range tt.Rows {
			for c, want := range row {
				if got, w := records[r+1][c], csvField(want); got != w {
					t.Errorf("row %d column %s: got %q, want %q", r, tt.Columns[c].Name, got, w)
				}
			}
		}
	})
}

// checkXLSXCell compares one cell read back by excelize with the value v
// the source must yield; it returns "" when they agree.
func checkXLSXCell(v exportd.Value, raw string, typ excelize.CellType) string {
	isNumber := typ == excelize.CellTypeNumber || typ == excelize.CellTypeUnset || typ == excelize.CellTypeDate
	number := func(want float64) string {
		got, err := strconv.ParseFloat(raw, 64)
		if err != nil || !isNumber {
			return fmt.Sprintf("got %q (type %v), want number %v", raw, typ, want)
		}
		if got != want && math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			return fmt.Sprintf("got %v, want %v", got, want)
		}
		return ""
	}
	text := func(want string) string {
		if raw != want || (want != "" && typ != excelize.CellTypeInlineString && typ != excelize.CellTypeSharedString) {
			return fmt.Sprintf("got %q (type %v), want text %q", raw, typ, want)
		}
		return ""
	}
	switch v.Kind {
	case exportd.KindNull:
		if raw != "" {
			return fmt.Sprintf("got %q, want an empty cell", raw)
		}
	case exportd.KindInt:
		if v.I > 1<<53 || v.I < -(1<<53) {
			return text(strconv.FormatInt(v.I, 10))
		}
		return number(float64(v.I))
	case exportd.KindFloat:
		if math.IsNaN(v.F) || math.IsInf(v.F, 0) {
			if raw != "" {
				return fmt.Sprintf("got %q, want an empty cell for %v", raw, v.F)
			}
			return ""
		}
		return number(v.F)
	case exportd.KindDecimal:
		if f, ok := exactDecimal(v.S); ok {
			return number(f)
		}
		return text(v.S)
	case exportd.KindString:
		return text(v.S)
	case exportd.KindBool:
		want := "0"
		if v.I != 0 {
			want = "1"
		}
		if raw != want || typ != excelize.CellTypeBool {
			return fmt.Sprintf("got %q (type %v), want boolean %s", raw, typ, want)
		}
	case exportd.KindDate, exportd.KindDateTime:
		_, off := v.T.Zone()
		wall := time.Unix(v.T.Unix()+int64(off), int64(v.T.Nanosecond())).UTC()
		days := wall.Sub(time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)).Hours() / 24
		if wall.Before(time.Date(1900, 3, 1, 0, 0, 0, 0, time.UTC)) || !wall.Before(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)) {
			return text(v.Text()) // out of Excel's date range: ISO 8601 text
		}
		if v.Kind == exportd.KindDate {
			days = math.Floor(days)
		}
		return number(days)
	}
	return ""
}

// exactDecimal returns s as a float64 when a double holds it without loss
// of a digit (at most 15 significant digits).
func exactDecimal(s string) (float64, bool) {
	digits := strings.TrimLeft(strings.Replace(strings.TrimPrefix(s, "-"), ".", "", 1), "0")
	if strings.Contains(s, ".") {
		digits = strings.TrimRight(digits, "0")
	}
	if len(digits) > 15 {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// csvField is the CSV text of v: its plain text, with the formula guard's
// leading ' on text that starts with =, +, -, @, tab or CR.
func csvField(v exportd.Value) string {
	s := v.Text()
	if v.Kind == exportd.KindString && s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		s = "'" + s
	}
	return strings.ReplaceAll(s, "\r\n", "\n")
}
