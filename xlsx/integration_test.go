package xlsx

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeCorpusFile writes the corpus workbook to a temporary file.
func writeCorpusFile(t *testing.T) string {
	t.Helper()
	data, _ := writeBytes(t, nil, func(w *Writer) { writeCorpus(t, w, "Corpus") })
	path := filepath.Join(t.TempDir(), "corpus.xlsx")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const openpyxlScript = `
import datetime, json, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1], read_only=True)
out = []
for row in wb["Corpus"].iter_rows(min_row=2, values_only=True):
    v = row[1] if len(row) > 1 else None
    if v is None:
        out.append([row[0], "", ""])
    elif isinstance(v, bool):
        out.append([row[0], "b", "TRUE" if v else "FALSE"])
    elif isinstance(v, (int, float)):
        out.append([row[0], "n", repr(float(v))])
    elif isinstance(v, datetime.datetime):
        d = v - datetime.datetime(1899, 12, 30)
        out.append([row[0], "n", repr(d.days + (d.seconds + d.microseconds / 1e6) / 86400)])
    else:
        out.append([row[0], "s", v])
json.dump(out, sys.stdout)
`

// TestCorpusOpenpyxl reads the corpus back with Debian's python3-openpyxl
// in read-only mode (which would trust a wrong <dimension>).
func TestCorpusOpenpyxl(t *testing.T) {
	py := python3(t, "openpyxl")
	path := writeCorpusFile(t)
	out, err := exec.Command(py, "-c", openpyxlScript, path).Output()
	if err != nil {
		t.Fatalf("openpyxl: %v", err)
	}
	var rows [][3]string
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("openpyxl output: %v", err)
	}
	cases := corpus()
	if len(rows) != len(cases) {
		t.Fatalf("openpyxl read %d rows, want %d", len(rows), len(cases))
	}
	for i, c := range cases {
		w := c.want
		if c.name == "xescape" {
			// openpyxl does not undo _xHHHH_ escapes in inline strings;
			// Excel and excelize do.
			w = str("_x005F_x0041_ and _x005F_x00e9_ and _x005F_x12_")
		}
		if w.kind == 'n' && w.tol == 0 && w.num != 0 {
			w.tol = 0 // numbers must come back exactly
		}
		if w.tol != 0 {
			w.tol = 1e-11 // openpyxl rounds date-times to microseconds
		}
		g := got{kind: 0, text: rows[i][2]}
		if k := rows[i][1]; k != "" {
			g.kind = k[0]
		}
		if rows[i][0] != c.name {
			t.Errorf("row %d: label %q, want %q", i+2, rows[i][0], c.name)
		}
		if err := g.check(w); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// convertToCSV converts the workbook at path to UTF-8 CSV with headless
// LibreOffice (a private profile) and returns the directory of the CSV
// file(s); more is appended to the filter's options (e.g. the sheet
// option -1: one file per sheet).
func convertToCSV(t *testing.T, soffice, path, more string) string {
	t.Helper()
	dir := t.TempDir()
	profile := "file://" + filepath.Join(t.TempDir(), "lo-profile")
	cmd := exec.Command(soffice, "--headless", "-env:UserInstallation="+profile,
		"--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1"+more, "--outdir", dir, path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("soffice: %v\n%s", err, out)
	}
	return dir
}

// TestCorpusLibreOffice converts the corpus to CSV with headless
// LibreOffice and compares every value as LibreOffice shows it.
func TestCorpusLibreOffice(t *testing.T) {
	soffice := tool(t, "soffice")
	path := writeCorpusFile(t)
	dir := convertToCSV(t, soffice, path, "")
	data, err := os.ReadFile(filepath.Join(dir, "corpus.csv"))
	if err != nil {
		t.Fatalf("soffice wrote no CSV: %v", err)
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	records, err := r.ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v", err)
	}
	cases := corpus()
	if len(records) != len(cases)+1 {
		t.Fatalf("LibreOffice gave %d rows, want %d", len(records), len(cases)+1)
	}
	for i, c := range cases {
		rec := records[i+1]
		v := ""
		if len(rec) > 1 {
			v = rec[1]
		}
		if rec[0] != c.name {
			t.Errorf("row %d: label %q, want %q", i+2, rec[0], c.name)
		}
		w := c.want
		switch {
		case w.kind == 0 || w.kind == 'b' || w.kind == 's':
			want := w.str
			if c.name == "controls" || c.name == "newlines" {
				want = strings.ReplaceAll(want, "\r", "\n") // LibreOffice turns CR into LF
			}
			if v != want {
				t.Errorf("%s: LibreOffice shows %.60q (%d bytes), want %.60q (%d bytes)", c.name, v, len(v), want, len(want))
			}
		case w.tol != 0: // a date: shown with its format
			layout := "2006-01-02"
			if c.cell.Type == CellDateTime {
				layout = "2006-01-02 15:04:05"
			}
			got, err := time.Parse(layout, v)
			want := c.cell.T
			if c.cell.Type == CellDate {
				want = time.Date(want.Year(), want.Month(), want.Day(), 0, 0, 0, 0, time.UTC)
			} else {
				want = time.Date(want.Year(), want.Month(), want.Day(), want.Hour(), want.Minute(), want.Second(), want.Nanosecond(), time.UTC)
			}
			if err != nil || got.Sub(want).Abs() > time.Second {
				t.Errorf("%s: LibreOffice shows %q, want %s", c.name, v, want.Format(layout))
			}
		default: // a number in General format: up to 15 significant digits
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || (f != w.num && math.Abs(f-w.num) > 1e-14*math.Abs(w.num)) {
				t.Errorf("%s: LibreOffice shows %q, want %v", c.name, v, w.num)
			}
		}
	}
}

// writeRolloverFile writes 10 rows of "이름 i", i, i² into a sheet that
// rolls over every 3 data rows: "명단", "명단 (2)", "명단 (3)", "명단 (4)".
func writeRolloverFile(t *testing.T) string {
	t.Helper()
	cols := []Column{{Header: "이름", Width: 12}, {Header: "i"}, {Header: "sq", NumFmt: "#,##0"}}
	data, _ := writeBytes(t, func(w *Writer) { w.MaxRows = 3 }, func(w *Writer) {
		if err := w.NewSheet("명단", cols); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			if err := w.Write([]Cell{String("이름 " + strconv.Itoa(i)), Int(int64(i)), Int(int64(i * i))}); err != nil {
				t.Fatal(err)
			}
		}
	})
	path := filepath.Join(t.TempDir(), "rollover.xlsx")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantRollover is what every reader must find in writeRolloverFile's
// workbook: each sheet's rows as text, header first.
func wantRollover() map[string][][]string {
	want := map[string][][]string{}
	for i := range 10 {
		name := "명단"
		if s := i / 3; s > 0 {
			name += " (" + strconv.Itoa(s+1) + ")"
		}
		if want[name] == nil {
			want[name] = [][]string{{"이름", "i", "sq"}}
		}
		want[name] = append(want[name], []string{"이름 " + strconv.Itoa(i), strconv.Itoa(i), strconv.Itoa(i * i)})
	}
	return want
}

// TestRolloverOpenpyxl: openpyxl (read-only mode) finds the rollover
// sheets in order, each with the header repeated and its share of rows.
func TestRolloverOpenpyxl(t *testing.T) {
	py := python3(t, "openpyxl")
	path := writeRolloverFile(t)
	out, err := exec.Command(py, "-c", `
import json, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1], read_only=True)
json.dump([[ws.title, [["" if v is None else str(v) for v in row] for row in ws.iter_rows(values_only=True)]] for ws in wb.worksheets], sys.stdout, ensure_ascii=False)
`, path).Output()
	if err != nil {
		t.Fatalf("openpyxl: %v", err)
	}
	var sheets [][2]json.RawMessage
	if err := json.Unmarshal(out, &sheets); err != nil {
		t.Fatalf("openpyxl output %s: %v", out, err)
	}
	want := wantRollover()
	wantNames := []string{"명단", "명단 (2)", "명단 (3)", "명단 (4)"}
	if len(sheets) != len(wantNames) {
		t.Fatalf("openpyxl found %d sheets, want %d: %s", len(sheets), len(wantNames), out)
	}
	for i, s := range sheets {
		var name string
		var rows [][]string
		if err := json.Unmarshal(s[0], &name); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(s[1], &rows); err != nil {
			t.Fatal(err)
		}
		if name != wantNames[i] {
			t.Errorf("sheet %d is %q, want %q", i+1, name, wantNames[i])
		}
		if got, w := fmt.Sprint(rows), fmt.Sprint(want[name]); got != w {
			t.Errorf("%s: openpyxl reads %s, want %s", name, got, w)
		}
	}
}

// TestRolloverLibreOffice converts every sheet of the rollover workbook
// to CSV with headless LibreOffice (sheet option -1: one file per sheet).
func TestRolloverLibreOffice(t *testing.T) {
	soffice := tool(t, "soffice")
	path := writeRolloverFile(t)
	dir := convertToCSV(t, soffice, path, ",,0,false,true,false,false,false,-1")
	for name, want := range wantRollover() {
		data, err := os.ReadFile(filepath.Join(dir, "rollover-"+name+".csv"))
		if err != nil {
			entries, _ := os.ReadDir(dir)
			t.Fatalf("sheet %s: %v (LibreOffice wrote %v)", name, err, entries)
		}
		got, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil {
			t.Fatalf("%s: CSV: %v", name, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: LibreOffice shows %v, want %v", name, got, want)
		}
	}
}
