package xlsx

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// totalsCase is one totals cell of writeTotalsFile's workbook: where it
// is, its formula and its value.
type totalsCase struct {
	sheet, cell, formula string
	value                float64
	err                  string // an error value instead (#DIV/0!)
}

// writeTotalsFile writes a workbook whose sheets ask for totals:
//   - "점수": 10 rows of int, float, decimal, with sum, average, count,
//     min and max, and a label;
//   - "명단": 10 rows rolling over every 4 rows ("명단 (2)", "명단 (3)"):
//     the totals on the last sheet cover every sheet of the series;
//   - "O'Neil 빈": no rows (plain zero, empty cells);
//   - "마지막": no totals at all.
func writeTotalsFile(t *testing.T) (string, []totalsCase) {
	t.Helper()
	score := []Column{{Header: "이름"}, {Header: "점수", Total: Sum}, {Header: "비율", Total: Average, NumFmt: "0.00"},
		{Header: "금액", Total: Sum, NumFmt: "#,##0.00"}, {Header: "건수", Total: Count}, {Header: "최저", Total: Min}, {Header: "최고", Total: Max}}
	list := []Column{{Header: "이름"}, {Header: "i", Total: Sum}}
	data, _ := writeBytes(t, func(w *Writer) { w.TotalLabel = "합계" }, func(w *Writer) {
		if err := w.NewSheet("점수", score); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 10; i++ {
			row := []Cell{String("회원 " + strconv.Itoa(i)), Int(int64(i)), Float(float64(i) / 10),
				Decimal(strconv.Itoa(i) + "." + strconv.Itoa(i) + "0"), Int(int64(i)), Int(int64(i - 5)), Float(float64(i) * 1.5)}
			if i == 3 {
				row[4] = String("n/a") // text: not counted
				row[2] = Empty()       // not averaged
			}
			if err := w.Write(row); err != nil {
				t.Fatal(err)
			}
		}
		w.MaxRows = 4
		if err := w.NewSheet("명단", list); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 10; i++ {
			if err := w.Write([]Cell{String("이름 " + strconv.Itoa(i)), Int(int64(i))}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.NewSheet("O'Neil 빈", []Column{{Header: "a"}, {Header: "b", Total: Sum}, {Header: "c", Total: Average}}); err != nil {
			t.Fatal(err)
		}
		if err := w.NewSheet("마지막", []Column{{Header: "x"}}); err != nil {
			t.Fatal(err)
		}
		if err := w.Write([]Cell{Int(1)}); err != nil {
			t.Fatal(err)
		}
	})
	path := filepath.Join(t.TempDir(), "totals.xlsx")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// ratios 0.1..1.0 without 0.3: 5.2/9
	return path, []totalsCase{
		{"점수", "B12", "SUBTOTAL(109,B2:B11)", 55, ""},
		{"점수", "C12", "SUBTOTAL(101,C2:C11)", 5.2 / 9, ""},
		{"점수", "D12", "SUBTOTAL(109,D2:D11)", 59.6, ""},
		{"점수", "E12", "SUBTOTAL(102,E2:E11)", 9, ""},
		{"점수", "F12", "SUBTOTAL(105,F2:F11)", -4, ""},
		{"점수", "G12", "SUBTOTAL(104,G2:G11)", 15, ""},
		{"명단 (3)", "B4", "SUBTOTAL(109,'명단'!B2:B5,'명단 (2)'!B2:B5,B2:B3)", 55, ""},
	}
}

// TestTotalsExcelize reads every totals cell with excelize: its formula,
// its cached value, and the value excelize's own engine calculates from
// the formula; the label, the autofilter that leaves the totals row out,
// and the sheet without rows.
func TestTotalsExcelize(t *testing.T) {
	path, cases := writeTotalsFile(t)
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, want := strings.Join(f.GetSheetList(), "|"), "점수|명단|명단 (2)|명단 (3)|O'Neil 빈|마지막"; got != want {
		t.Fatalf("sheets %s, want %s", got, want)
	}
	for _, c := range cases {
		formula, err := f.GetCellFormula(c.sheet, c.cell)
		if err != nil || formula != c.formula {
			t.Errorf("%s!%s: formula %q (%v), want %q", c.sheet, c.cell, formula, err, c.formula)
		}
		raw, _ := f.GetCellValue(c.sheet, c.cell, excelize.Options{RawCellValue: true})
		if v, err := strconv.ParseFloat(raw, 64); err != nil || math.Abs(v-c.value) > 1e-12 {
			t.Errorf("%s!%s: cached value %q, want %v", c.sheet, c.cell, raw, c.value)
		}
		calc, err := f.CalcCellValue(c.sheet, c.cell, excelize.Options{RawCellValue: true})
		if v, perr := strconv.ParseFloat(calc, 64); err != nil || perr != nil || math.Abs(v-c.value) > 1e-9 {
			t.Errorf("%s!%s: excelize calculates %q (%v), want %v", c.sheet, c.cell, calc, err, c.value)
		}
	}
	for _, lc := range [][2]string{{"점수", "A12"}, {"명단 (3)", "A4"}} {
		if v, _ := f.GetCellValue(lc[0], lc[1]); v != "합계" {
			t.Errorf("%s!%s: label %q, want 합계", lc[0], lc[1], v)
		}
	}
	rows, _ := f.GetRows("명단 (2)")
	if len(rows) != 5 {
		t.Errorf("명단 (2) has %d rows, want a header and 4 rows (no totals before the series ends)", len(rows))
	}
	// The sheet without rows: a plain 0 for the sum, nothing for the average.
	if formula, _ := f.GetCellFormula("O'Neil 빈", "B2"); formula != "" {
		t.Errorf("empty sheet: formula %q, want none", formula)
	}
	if v, _ := f.GetCellValue("O'Neil 빈", "B2"); v != "0" {
		t.Errorf("empty sheet: sum %q, want 0", v)
	}
	if v, _ := f.GetCellValue("O'Neil 빈", "C2"); v != "" {
		t.Errorf("empty sheet: average %q, want empty", v)
	}
	files := unzipAll(t, mustRead(t, path))
	if s := string(files["xl/worksheets/sheet1.xml"]); !strings.Contains(s, `<autoFilter ref="A1:G11"/>`) {
		t.Errorf("sheet1: autofilter should end at the last data row, not the totals row")
	}
	if s := string(files["xl/worksheets/sheet6.xml"]); strings.Contains(s, "<f>") {
		t.Errorf("a sheet without totals has a formula")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTotalsOpenpyxl reads the totals with openpyxl: the formulas as
// written, and the cached values (data_only).
func TestTotalsOpenpyxl(t *testing.T) {
	py := python3(t, "openpyxl")
	path, cases := writeTotalsFile(t)
	out, err := exec.Command(py, "-c", `
import json, sys, openpyxl
f = openpyxl.load_workbook(sys.argv[1])
v = openpyxl.load_workbook(sys.argv[1], data_only=True)
json.dump([[f[s][c].value, v[s][c].value] for s, c in json.loads(sys.argv[2])], sys.stdout, ensure_ascii=False)
`, path, cellList(cases)).Output()
	if err != nil {
		t.Fatalf("openpyxl: %v", err)
	}
	var got [][2]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("openpyxl output %s: %v", out, err)
	}
	for i, c := range cases {
		if got[i][0] != "="+c.formula {
			t.Errorf("%s!%s: openpyxl reads the formula %v, want =%s", c.sheet, c.cell, got[i][0], c.formula)
		}
		if v, ok := got[i][1].(float64); !ok || math.Abs(v-c.value) > 1e-12 {
			t.Errorf("%s!%s: openpyxl reads the value %v, want %v", c.sheet, c.cell, got[i][1], c.value)
		}
	}
}

func cellList(cases []totalsCase) string {
	l := make([][2]string, len(cases))
	for i, c := range cases {
		l[i] = [2]string{c.sheet, c.cell}
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// TestTotalsLibreOffice converts every sheet to CSV with LibreOffice and
// finds each total's value and the label.
func TestTotalsLibreOffice(t *testing.T) {
	soffice := tool(t, "soffice")
	path, cases := writeTotalsFile(t)
	dir := convertToCSV(t, soffice, path, ",,0,false,true,false,false,false,-1")
	for _, c := range cases {
		data, err := os.ReadFile(filepath.Join(dir, "totals-"+c.sheet+".csv"))
		if err != nil {
			entries, _ := os.ReadDir(dir)
			t.Fatalf("sheet %s: %v (LibreOffice wrote %v)", c.sheet, err, entries)
		}
		recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		col, row, _ := excelize.CellNameToCoordinates(c.cell)
		if row > len(recs) || col > len(recs[row-1]) {
			t.Errorf("%s!%s: LibreOffice shows no such cell: %v", c.sheet, c.cell, recs)
			continue
		}
		got := strings.ReplaceAll(recs[row-1][col-1], ",", "")
		v, err := strconv.ParseFloat(got, 64)
		// as shown, with the column's number format
		if err != nil || math.Abs(v-c.value) > 0.006 {
			t.Errorf("%s!%s: LibreOffice shows %q, want %v", c.sheet, c.cell, recs[row-1][col-1], c.value)
		}
		if recs[row-1][0] != "합계" {
			t.Errorf("%s: LibreOffice shows the label %q, want 합계", c.sheet, recs[row-1][0])
		}
	}
}

// An average of no number is Excel's #DIV/0! error, cached as an error
// value (t="e") under its formula.
func TestTotalsDivByZero(t *testing.T) {
	data, _ := writeBytes(t, nil, func(w *Writer) {
		if err := w.NewSheet("s", []Column{{Header: "a"}, {Header: "b", Total: Average, NumFmt: "0.00"}}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := w.Write([]Cell{String("x"), String("not a number")}); err != nil {
				t.Fatal(err)
			}
		}
	})
	sheet := string(unzipAll(t, data)["xl/worksheets/sheet1.xml"])
	if !strings.Contains(sheet, `t="e"><f>SUBTOTAL(101,B2:B3)</f><v>#DIV/0!</v></c>`) {
		t.Errorf("sheet: %s", sheet)
	}
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if v, _ := f.GetCellValue("s", "B4"); v != "#DIV/0!" {
		t.Errorf("excelize reads %q", v)
	}
}
