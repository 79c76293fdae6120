package xlsx

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// want is what a reader should find in a cell.
type want struct {
	kind byte    // 'n' number, 's' string, 'b' bool, 0 empty
	num  float64 // for 'n'
	str  string  // for 's'; "TRUE"/"FALSE" for 'b'
	tol  float64 // allowed difference of a number (dates)
}

func num(f float64) want            { return want{kind: 'n', num: f} }
func str(s string) want             { return want{kind: 's', str: s} }
func boolean(b bool) want           { return want{kind: 'b', str: strings.ToUpper(strconv.FormatBool(b))} }
func serial(f float64) want         { return want{kind: 'n', num: f, tol: 1e-9} }
func empty() want                   { return want{} }
func day(y, m, d int) time.Time     { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }
func repeat(s string, n int) string { return strings.Repeat(s, n) }

// corpusCase is one cell written in column B, labelled in column A.
type corpusCase struct {
	name string
	cell Cell
	want want
}

func corpus() []corpusCase {
	seoul := time.FixedZone("KST", 9*3600)
	return []corpusCase{
		{"korean", String("한국어 텍스트, 김민준"), str("한국어 텍스트, 김민준")},
		{"emoji", String("😀👍🏽 family 👨‍👩‍👧"), str("😀👍🏽 family 👨‍👩‍👧")},
		{"rtl", String("שלום עולם مرحبا بالعالم"), str("שלום עולם مرحبا بالعالم")},
		{"controls", String("a\x00b\x01c\x1fd\te\nf\rg\x7fh"), str("abcd\te\nf\rg\x7fh")},
		{"nonchars", String("x\uFFFEy\uFFFFz"), str("xyz")},
		{"badutf8", String("a\xffb"), str("a\uFFFDb")},
		{"markup", String(`<a href="x">&amp;</a> ]]> 'q'`), str(`<a href="x">&amp;</a> ]]> 'q'`)},
		{"xescape", String("_x0041_ and _x00e9_ and _x12_"), str("_x0041_ and _x00e9_ and _x12_")},
		{"spaces", String("  padded  "), str("  padded  ")},
		{"newlines", String("\nline\n"), str("\nline\n")},
		{"formula", String("=1+1"), str("=1+1")},
		{"plus", String("+1"), str("+1")},
		{"long", String(repeat("a", 40_000)), str(repeat("a", MaxCellChars))},
		{"longemoji", String(repeat("😀", 20_000)), str(repeat("😀", MaxCellChars/2))},
		{"longcontrols", String(repeat("\x01", 40_000) + "ok"), str("ok")},
		{"int", Int(42), num(42)},
		{"negint", Int(-7), num(-7)},
		{"2^53", Int(1 << 53), num(1 << 53)},
		{"-2^53", Int(-(1 << 53)), num(-(1 << 53))},
		{"2^53+1", Int(1<<53 + 1), str("9007199254740993")},
		{"maxint64", Int(math.MaxInt64), str("9223372036854775807")},
		{"minint64", Int(math.MinInt64), str("-9223372036854775808")},
		{"float", Float(0.1), num(0.1)},
		{"float3", Float(1.0 / 3), num(1.0 / 3)},
		{"bigfloat", Float(1e300), num(1e300)},
		{"smallfloat", Float(-1.5e-300), num(-1.5e-300)},
		{"negzero", Float(math.Copysign(0, -1)), num(0)},
		{"nan", Float(math.NaN()), empty()},
		{"inf", Float(math.Inf(1)), empty()},
		{"-inf", Float(math.Inf(-1)), empty()},
		{"true", Bool(true), boolean(true)},
		{"false", Bool(false), boolean(false)},
		{"date", Date(day(2020, 2, 29)), serial(43890)},
		{"dateclock", Date(time.Date(2020, 2, 29, 23, 59, 0, 0, time.UTC)), serial(43890)},
		{"datetime", DateTime(time.Date(2020, 1, 1, 0, 37, 0, 0, time.UTC)), serial(43831 + 37.0/1440)},
		{"datetimezone", DateTime(time.Date(2020, 1, 1, 9, 0, 0, 0, seoul)), serial(43831 + 9.0/24)},
		{"datetimems", DateTime(time.Date(2021, 6, 30, 12, 0, 0, 500_000_000, time.UTC)), serial(44377.5 + 0.5/86400)},
		{"1900-03-01", Date(day(1900, 3, 1)), serial(61)},
		{"1900-02-28", Date(day(1900, 2, 28)), str("1900-02-28")},
		{"1899-12-31", DateTime(time.Date(1899, 12, 31, 23, 59, 59, 0, time.UTC)), str("1899-12-31 23:59:59")},
		{"year1", Date(time.Time{}), str("0001-01-01")},
		{"9999-12-31", Date(day(9999, 12, 31)), serial(2958465)},
		{"10000-01-01", Date(day(10000, 1, 1)), str("10000-01-01")},
		{"decimal", Decimal("-12.50"), num(-12.5)},
		{"decimal15", Decimal("123456789012345"), num(123456789012345)},
		{"decimal15frac", Decimal("0.123456789012345"), num(0.123456789012345)},
		{"decimal16", Decimal("1234567890123456"), str("1234567890123456")},
		{"decimalu64", Decimal("18446744073709551615"), str("18446744073709551615")},
		{"decimaltiny", Decimal("0.000000000000000000001"), num(1e-21)},
		{"decimalzeros", Decimal("1000000000000000000000.000"), num(1e21)},
		{"decimalnegzero", Decimal("-0.00"), num(0)},
		{"decimalplus", Decimal("+5"), num(5)},
		{"decimalexp", Decimal("1e5"), str("1e5")},
		{"decimalhuge", Decimal("1" + repeat("0", 400)), str("1" + repeat("0", 400))},
		{"decimalbad", Decimal("12.5.1"), str("12.5.1")},
		{"null", Empty(), empty()},
		{"emptystring", String(""), empty()},
	}
}

// truncatedInCorpus is the number of corpus cells that are cut.
const truncatedInCorpus = 2

// textDatesInCorpus is the number of corpus dates written as text.
const textDatesInCorpus = 4

// writeCorpus writes the corpus as rows (label, value) under a header.
func writeCorpus(t testing.TB, w *Writer, sheet string) {
	t.Helper()
	if err := w.NewSheet(sheet, []Column{{Header: "case", Width: 14}, {Header: "value", Width: 30}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range corpus() {
		if err := w.Write([]Cell{String(c.name), c.cell}); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
}

// got is a cell as a reader saw it: kind as in want, and its text.
type got struct {
	kind byte
	text string
}

func (g got) check(w want) error {
	if g.kind != w.kind {
		return fmt.Errorf("kind %q (%.60q), want %q", g.kind, g.text, w.kind)
	}
	switch w.kind {
	case 'n':
		f, err := strconv.ParseFloat(g.text, 64)
		if err != nil {
			return fmt.Errorf("number %q: %v", g.text, err)
		}
		if f != w.num && math.Abs(f-w.num) > w.tol*math.Abs(w.num) {
			return fmt.Errorf("number %v, want %v", f, w.num)
		}
	case 's', 'b':
		if g.text != w.str {
			if len(g.text) > 80 || len(w.str) > 80 {
				return fmt.Errorf("text of %d bytes (%.40q…), want %d bytes (%.40q…)", len(g.text), g.text, len(w.str), w.str)
			}
			return fmt.Errorf("text %q, want %q", g.text, w.str)
		}
	}
	return nil
}

// readExcelize reads every sheet of an XLSX with excelize: sheet name ->
// rows -> cells.
func readExcelize(t testing.TB, data []byte) ([]string, map[string][][]got) {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("excelize: %v", err)
	}
	defer f.Close()
	out := map[string][][]got{}
	names := f.GetSheetList()
	for _, sheet := range names {
		rows, err := f.GetRows(sheet, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatalf("excelize %s: %v", sheet, err)
		}
		grid := make([][]got, len(rows))
		for r, row := range rows {
			grid[r] = make([]got, len(row))
			for c, v := range row {
				ref, _ := excelize.CoordinatesToCellName(c+1, r+1)
				typ, err := f.GetCellType(sheet, ref)
				if err != nil {
					t.Fatal(err)
				}
				g := got{text: v}
				switch {
				case typ == excelize.CellTypeBool:
					g.kind = 'b'
					g.text = map[string]string{"1": "TRUE", "0": "FALSE"}[v] + map[bool]string{true: v}[v == "TRUE" || v == "FALSE"]
				case typ == excelize.CellTypeInlineString || typ == excelize.CellTypeSharedString:
					g.kind = 's'
				case v == "":
					g.kind = 0
				default:
					g.kind = 'n'
				}
				grid[r][c] = g
			}
		}
		out[sheet] = grid
	}
	return names, out
}

// cellAt returns the cell at row r, column c of a grid, or an empty cell.
func cellAt(grid [][]got, r, c int) got {
	if r < len(grid) && c < len(grid[r]) {
		return grid[r][c]
	}
	return got{}
}

// unzipAll returns every entry of a ZIP archive by name.
func unzipAll(t testing.TB, data []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("zip: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("zip %s: %v", f.Name, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("zip %s: %v", f.Name, err)
		}
		out[f.Name] = b
	}
	return out
}

// tool finds an external program, or skips the test; with
// EXPORTD_REQUIRE_INTEGRATION=1 a missing tool fails it instead.
func tool(t *testing.T, name string, check ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil && len(check) > 0 {
		// The reason is the check's last line (python3's "No module
		// named 'openpyxl'"), not just its exit status.
		var out []byte
		if out, err = exec.Command(path, check...).CombinedOutput(); err != nil {
			if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); lines[len(lines)-1] != "" {
				err = errors.New(lines[len(lines)-1])
			}
		}
	}
	if err != nil {
		if os.Getenv("EXPORTD_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("%s not usable (EXPORTD_REQUIRE_INTEGRATION=1): %v", name, err)
		}
		t.Skipf("%s not usable: %v", name, err)
	}
	return path
}

// python3 returns Debian's python3 if it can import the given modules.
func python3(t *testing.T, modules string) string {
	t.Helper()
	name := "/usr/bin/python3"
	if _, err := os.Stat(name); err != nil {
		name = "python3"
	}
	return tool(t, name, "-c", "import "+modules)
}
