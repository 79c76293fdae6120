package xlsx

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// A cell is written without its reference (r="B7") when it directly
// follows the previous cell of its row. These tests write rows with
// empty cells at the start, in the middle and at the end, headers and
// totals rows with gaps, rollover sheets and a second sheet, and read
// every cell back by its coordinate with excelize, openpyxl and
// LibreOffice: a cell in the wrong column fails them.

// placementSheets are the sheets of writePlacement's workbook, in order.
var placementSheets = []string{"Gaps", "Gaps (2)", "Other"}

// writePlacement writes the workbook and returns it with what every
// reader must find: sheet -> coordinate -> value, and no other cell.
func writePlacement(t testing.TB) ([]byte, map[string]map[string]want) {
	t.Helper()
	cols := []Column{{}, {Header: "b"}, {}, {Header: "d", Total: Sum}, {}, {Header: "f", Total: Count}}
	data, _ := writeBytes(t, func(w *Writer) { w.MaxRows = 3 }, func(w *Writer) {
		if err := w.NewSheet("Gaps", cols); err != nil {
			t.Fatal(err)
		}
		rows := [][]Cell{
			{Empty(), String("B2"), Empty(), Int(42), Empty(), Float(2.5)},
			{String("A3"), Bool(true), Float(math.NaN()), Int(43), Decimal(""), String("")},
			{Int(11), Int(12), Date(day(2020, 2, 29)), Int(44), Decimal("-1.5"), Float(6.25), String("G4")},
			// rollover: "Gaps (2)", rows 2…
			{Empty(), Empty(), Empty(), Empty(), Empty(), String("F2")},
			{},
			{Empty(), Float(math.Inf(1)), DateTime(time.Date(2021, 6, 30, 12, 0, 0, 0, time.UTC)), Int(45), Empty(), Empty(), Bool(false)},
		}
		for _, r := range rows {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.NewSheet("Other", nil); err != nil {
			t.Fatal(err)
		}
		for _, r := range [][]Cell{
			{Float(math.NaN()), Empty(), String("C1")},
			{String("A2"), String(""), Empty(), Empty(), Int(5)},
		} {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
	})
	return data, map[string]map[string]want{
		"Gaps": {
			"B1": str("b"), "D1": str("d"), "F1": str("f"),
			"B2": str("B2"), "D2": num(42), "F2": num(2.5),
			"A3": str("A3"), "B3": boolean(true), "D3": num(43),
			"A4": num(11), "B4": num(12), "C4": serial(43890), "D4": num(44), "E4": num(-1.5), "F4": num(6.25), "G4": str("G4"),
		},
		"Gaps (2)": {
			"B1": str("b"), "D1": str("d"), "F1": str("f"),
			"F2": str("F2"),
			"C4": serial(44377.5), "D4": num(45), "G4": boolean(false),
			// the totals row: the label in A, totals in D and F
			"A5": str(DefaultTotalLabel), "D5": num(42 + 43 + 44 + 45), "F5": num(2),
		},
		"Other": {
			"C1": str("C1"),
			"A2": str("A2"), "E2": num(5),
		},
	}
}

// checkPlacement compares what a reader found, sheet -> coordinate ->
// cell, with the workbook's cells.
func checkPlacement(t *testing.T, reader string, found map[string]map[string]got, wants map[string]map[string]want) {
	t.Helper()
	for _, sheet := range placementSheets {
		cells, want := found[sheet], wants[sheet]
		if cells == nil {
			t.Errorf("%s: no sheet %q", reader, sheet)
			continue
		}
		for _, ref := range slices.Sorted(func(yield func(string) bool) {
			for k := range want {
				if !yield(k) {
					return
				}
			}
		}) {
			g, ok := cells[ref]
			if !ok {
				t.Errorf("%s: %s!%s is empty, want %+v", reader, sheet, ref, want[ref])
				continue
			}
			if err := g.check(want[ref]); err != nil {
				t.Errorf("%s: %s!%s: %v", reader, sheet, ref, err)
			}
		}
		for ref, g := range cells {
			if _, ok := want[ref]; !ok {
				t.Errorf("%s: %s!%s holds %q, want no cell there", reader, sheet, ref, g.text)
			}
		}
	}
}

func TestPlacementExcelize(t *testing.T) {
	data, wants := writePlacement(t)
	names, sheets := readExcelize(t, data)
	if !slices.Equal(names, placementSheets) {
		t.Fatalf("sheets %q, want %q", names, placementSheets)
	}
	found := map[string]map[string]got{}
	for sheet, grid := range sheets {
		found[sheet] = map[string]got{}
		for r, row := range grid {
			for c, g := range row {
				if g.kind != 0 {
					ref, _ := excelize.CoordinatesToCellName(c+1, r+1)
					found[sheet][ref] = g
				}
			}
		}
	}
	checkPlacement(t, "excelize", found, wants)
}

// TestPlacementOpenpyxl reads the cells by coordinate with openpyxl, in
// read-only mode (its streaming parser) and in the normal mode.
func TestPlacementOpenpyxl(t *testing.T) {
	py := python3(t, "openpyxl")
	data, wants := writePlacement(t)
	path := filepath.Join(t.TempDir(), "placement.xlsx")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, readOnly := range []string{"True", "False"} {
		out, err := exec.Command(py, "-c", `
import datetime, json, sys, openpyxl
from openpyxl.utils import get_column_letter
wb = openpyxl.load_workbook(sys.argv[1], read_only=`+readOnly+`, data_only=True)
out = {}
for ws in wb.worksheets:
    cells = out[ws.title] = {}
    for r, row in enumerate(ws.iter_rows(values_only=True), 1):
        for c, v in enumerate(row, 1):
            ref = get_column_letter(c) + str(r)
            if v is None:
                continue
            if isinstance(v, bool):
                cells[ref] = ["b", "TRUE" if v else "FALSE"]
            elif isinstance(v, (int, float)):
                cells[ref] = ["n", repr(float(v))]
            elif isinstance(v, datetime.datetime):
                d = v - datetime.datetime(1899, 12, 30)
                cells[ref] = ["n", repr(d.days + (d.seconds + d.microseconds / 1e6) / 86400)]
            else:
                cells[ref] = ["s", v]
json.dump([wb.sheetnames, out], sys.stdout)
`, path).Output()
		if err != nil {
			t.Fatalf("openpyxl (read_only=%s): %v", readOnly, err)
		}
		var res [2]json.RawMessage
		var names []string
		var cells map[string]map[string][2]string
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("openpyxl output %s: %v", out, err)
		}
		if err := json.Unmarshal(res[0], &names); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(res[1], &cells); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(names, placementSheets) {
			t.Fatalf("sheets %q, want %q", names, placementSheets)
		}
		found := map[string]map[string]got{}
		for sheet, m := range cells {
			found[sheet] = map[string]got{}
			for ref, kv := range m {
				found[sheet][ref] = got{kind: kv[0][0], text: kv[1]}
			}
		}
		checkPlacement(t, "openpyxl read_only="+readOnly, found, wants)
	}
}

// TestPlacementLibreOffice converts every sheet to CSV with headless
// LibreOffice, which places each value in its CSV field.
func TestPlacementLibreOffice(t *testing.T) {
	soffice := tool(t, "soffice")
	data, wants := writePlacement(t)
	path := filepath.Join(t.TempDir(), "placement.xlsx")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := convertToCSV(t, soffice, path, ",,0,false,true,false,false,false,-1")
	found := map[string]map[string]got{}
	for _, sheet := range placementSheets {
		b, err := os.ReadFile(filepath.Join(dir, "placement-"+sheet+".csv"))
		if err != nil {
			entries, _ := os.ReadDir(dir)
			t.Fatalf("sheet %s: %v (LibreOffice wrote %v)", sheet, err, entries)
		}
		r := csv.NewReader(bytes.NewReader(b))
		r.FieldsPerRecord = -1
		recs, err := r.ReadAll()
		if err != nil {
			t.Fatalf("%s: CSV: %v", sheet, err)
		}
		found[sheet] = map[string]got{}
		for i, rec := range recs {
			for c, v := range rec {
				if v == "" {
					continue
				}
				ref, _ := excelize.CoordinatesToCellName(c+1, i+1)
				// LibreOffice shows values as text: take the kind the
				// cell should have, and dates back to serial numbers.
				w := wants[sheet][ref]
				g := got{kind: w.kind, text: v}
				if w.tol != 0 {
					g.text = "not a date: " + v
					for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02"} {
						if tm, err := time.Parse(layout, v); err == nil {
							g.text = strconv.FormatFloat(float64(tm.Sub(time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)))/float64(24*time.Hour), 'f', -1, 64)
							break
						}
					}
				}
				if w.kind == 0 {
					g.kind = 's'
				}
				found[sheet][ref] = g
			}
		}
	}
	checkPlacement(t, "LibreOffice", found, wants)
}

// TestReferencesOnlyAfterGaps checks the sheet XML itself: a cell has a
// reference exactly when it does not follow the previous cell of its row.
func TestReferencesOnlyAfterGaps(t *testing.T) {
	data, _ := writePlacement(t)
	parts := unzipAll(t, data)
	sheet := string(parts["xl/worksheets/sheet1.xml"])
	for _, s := range []string{
		`<row r="1"><c r="B1" s="1" t="inlineStr"><is><t>b</t></is></c><c r="D1" s="1" t="inlineStr">`,
		`<row r="2"><c r="B2" t="inlineStr"><is><t>B2</t></is></c><c r="D2"><v>42</v></c><c r="F2"><v>2.5</v></c></row>`,
		`<row r="3"><c t="inlineStr"><is><t>A3</t></is></c><c t="b"><v>1</v></c><c r="D3"><v>43</v></c></row>`,
		`<row r="4"><c><v>11</v></c><c><v>12</v></c><c s="`,
	} {
		if !strings.Contains(sheet, s) {
			t.Errorf("sheet1.xml lacks %s:\n%s", s, sheet)
		}
	}
	if n := strings.Count(sheet, ` r="`); n != 4+3+3+1 { // the rows; B1, D1, F1; B2, D2, F2; D3
		t.Errorf("sheet1.xml has %d r attributes, want 11:\n%s", n, sheet)
	}
	sheet2 := string(parts["xl/worksheets/sheet2.xml"])
	if want := `<row r="5"><c s="1" t="inlineStr"><is><t>Total</t></is></c><c r="D5"><f>SUBTOTAL(109,'Gaps'!D2:D4,D2:D4)</f><v>174</v></c><c r="F5"><f>`; !strings.Contains(sheet2, want) {
		t.Errorf("sheet2.xml lacks %s:\n%s", want, sheet2)
	}
}
