package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/xuri/excelize/v2"
)

// reportSheets are the sheets of the report dataset (harness_test.go).
var reportSheets = []string{"회원", "느린 합계", "분류별"}

// timedRead reads body to its end and returns it with the longest time
// between two reads that brought bytes (or before the first).
func timedRead(body io.Reader) ([]byte, time.Duration, error) {
	var out bytes.Buffer
	buf := make([]byte, 32<<10)
	last := time.Now()
	var gap time.Duration
	for {
		n, err := body.Read(buf)
		if n > 0 {
			gap = max(gap, time.Since(last))
			last = time.Now()
			out.Write(buf[:n])
		}
		if errors.Is(err, io.EOF) {
			return out.Bytes(), gap, nil
		}
		if err != nil {
			return out.Bytes(), gap, err
		}
	}
}

// wantReport returns what every sheet of the report holds for rows=1000,
// read from PostgreSQL itself: the header, the rows, the totals row.
func wantReport(t *testing.T) map[string][][]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	want := map[string][][]string{}
	rows, err := conn.Query(ctx, `SELECT id, name, score_avg FROM e2e_accounts WHERE id <= 1000 ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	sheet := [][]string{{"id", "이름", "평균"}}
	sum := 0.0
	for rows.Next() {
		var id int64
		var name string
		var avg float64
		if err := rows.Scan(&id, &name, &avg); err != nil {
			t.Fatal(err)
		}
		sum += avg
		sheet = append(sheet, []string{strconv.FormatInt(id, 10), name, strconv.FormatFloat(avg, 'g', -1, 64)})
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	want["회원"] = append(sheet, []string{"Total", "", strconv.FormatFloat(sum/1000, 'g', -1, 64)})
	sheet = [][]string{{"n", "one", "twice"}}
	for n := 1; n <= 1000; n++ {
		sheet = append(sheet, []string{strconv.Itoa(n), "1", strconv.Itoa(2 * n)})
	}
	want["느린 합계"] = append(sheet, []string{"Total", "1000", "1001000"})
	rows, err = conn.Query(ctx, `SELECT category, count(*) FROM e2e_accounts WHERE id <= 1000 GROUP BY category ORDER BY category`)
	if err != nil {
		t.Fatal(err)
	}
	sheet = [][]string{{"category", "n"}}
	for rows.Next() {
		var c string
		var n int64
		if err := rows.Scan(&c, &n); err != nil {
			t.Fatal(err)
		}
		sheet = append(sheet, []string{c, strconv.FormatInt(n, 10)})
	}
	want["분류별"] = append(sheet, []string{"Total", "1000"})
	return want
}

// totalFormulas are the report's totals cells and their formulas.
var totalFormulas = [][3]string{
	{"회원", "C1002", "SUBTOTAL(101,C2:C1001)"},
	{"느린 합계", "B1002", "SUBTOTAL(109,B2:B1001)"},
	{"느린 합계", "C1002", "SUBTOTAL(109,C2:C1001)"},
	{"분류별", "B7", "SUBTOTAL(109,B2:B6)"},
}

// sameCell compares a cell as a reader shows it with the wanted text:
// numbers by value (a reader may show 5 as 5.0, or round the 17th digit).
func sameCell(got, want string) bool {
	if got == want {
		return true
	}
	g, err1 := strconv.ParseFloat(got, 64)
	w, err2 := strconv.ParseFloat(want, 64)
	return err1 == nil && err2 == nil && math.Abs(g-w) <= 1e-9*max(1, math.Abs(w))
}

func compareSheets(t *testing.T, reader string, got, want map[string][][]string) {
	t.Helper()
	for _, name := range reportSheets {
		g, w := got[name], want[name]
		if len(g) != len(w) {
			t.Errorf("%s: sheet %s has %d rows, want %d", reader, name, len(g), len(w))
			continue
		}
		for i := range w {
			for j := range w[i] {
				cell := ""
				if j < len(g[i]) {
					cell = g[i][j]
				}
				if !sameCell(cell, w[i][j]) {
					t.Errorf("%s: %s row %d column %d: %q, want %q", reader, name, i+1, j+1, cell, w[i][j])
				}
			}
		}
	}
}

// TestSheetsThroughNginx: a workbook of three sheets whose second query
// thinks 5 s (pg_sleep) before its first row arrives whole through nginx
// (read timeout 3 s): bytes keep flowing before each sheet, and excelize,
// openpyxl and LibreOffice read every sheet, every value and the totals
// (formulas and cached values). The CSV export is a ZIP of one file per
// sheet that keeps alive the same way; a query failing in the second
// sheet fails the download. A background job makes the same workbook.
func TestSheetsThroughNginx(t *testing.T) {
	jobs := t.TempDir()
	e := startExportd(t, "--jobs", "--link-secret", "e2e-sheets-secret-0123456789", "--jobs-queue", "sqlite:"+filepath.Join(jobs, "queue.db"),
		"--jobs-storage", "file://"+filepath.Join(jobs, "results"), "--jobs-poll", "100ms")
	base := startNginx(t, e.Addr)
	want := wantReport(t)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 2 * time.Minute}
	get := func(t *testing.T, format, query string) (*http.Response, []byte, time.Duration, error) {
		t.Helper()
		start := time.Now()
		resp, err := client.Get(base + "/v1/datasets/report/export." + format + "?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, gap, err := timedRead(resp.Body)
		t.Logf("%s: status %d, %d bytes in %v, longest silence %v, %v", format, resp.StatusCode, len(body), time.Since(start).Round(time.Millisecond), gap.Round(time.Millisecond), err)
		if err == nil && time.Since(start) < 5*time.Second {
			t.Fatalf("the download took %v: the second query did not think, so it proves nothing", time.Since(start))
		}
		return resp, body, gap, err
	}

	t.Run("xlsx", func(t *testing.T) {
		t.Parallel()
		resp, body, gap, err := get(t, "xlsx", "sleep=5")
		if resp.StatusCode != 200 || err != nil {
			t.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		if gap >= 3*time.Second {
			t.Errorf("%v without a byte: longer than nginx's read timeout", gap)
		}
		path := filepath.Join(t.TempDir(), "report.xlsx")
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}

		// excelize: values, formulas, cached values.
		x, err := excelize.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		if got := x.GetSheetList(); strings.Join(got, "|") != strings.Join(reportSheets, "|") {
			t.Fatalf("sheets %q, want %q", got, reportSheets)
		}
		got := map[string][][]string{}
		for _, s := range reportSheets {
			if got[s], err = x.GetRows(s, excelize.Options{RawCellValue: true}); err != nil {
				t.Fatal(err)
			}
		}
		compareSheets(t, "excelize", got, want)
		for _, f := range totalFormulas {
			if fm, _ := x.GetCellFormula(f[0], f[1]); fm != f[2] {
				t.Errorf("excelize: %s!%s formula %q, want %q", f[0], f[1], fm, f[2])
			}
		}

		// openpyxl: values (the cached ones for the totals) and formulas.
		py := "/usr/bin/python3"
		if out, err := exec.Command(py, "-c", "import openpyxl").CombinedOutput(); err != nil {
			need(t, "openpyxl: %v %s", err, out)
		}
		out, err := exec.Command(py, "-c", `
import json, sys, openpyxl
v = openpyxl.load_workbook(sys.argv[1], data_only=True, read_only=True)
f = openpyxl.load_workbook(sys.argv[1])
def text(c):
    return "" if c is None else str(c)
json.dump({"values": {ws.title: [[text(c) for c in row] for row in ws.iter_rows(values_only=True)] for ws in v.worksheets},
           "formulas": [f[s][c].value for s, c, _ in json.loads(sys.argv[2])]}, sys.stdout, ensure_ascii=False)
`, path, mustJSON(totalFormulas)).Output()
		if err != nil {
			t.Fatalf("openpyxl: %v", err)
		}
		var res struct {
			Values   map[string][][]string
			Formulas []string
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		compareSheets(t, "openpyxl", res.Values, want)
		for i, f := range totalFormulas {
			if res.Formulas[i] != "="+f[2] {
				t.Errorf("openpyxl: %s!%s formula %q, want =%s", f[0], f[1], res.Formulas[i], f[2])
			}
		}

		// LibreOffice: every sheet to CSV, values as shown (General).
		soffice, err := exec.LookPath("soffice")
		if err != nil {
			need(t, "soffice: %v", err)
		}
		dir := t.TempDir()
		cmd := exec.Command(soffice, "--headless", "-env:UserInstallation=file://"+filepath.Join(t.TempDir(), "lo"),
			"--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1", "--outdir", dir, path)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("soffice: %v\n%s", err, out)
		}
		lo := map[string][][]string{}
		for _, s := range reportSheets {
			b, err := os.ReadFile(filepath.Join(dir, "report-"+s+".csv"))
			if err != nil {
				t.Fatalf("LibreOffice: %v", err)
			}
			if lo[s], err = csv.NewReader(bytes.NewReader(b)).ReadAll(); err != nil {
				t.Fatal(err)
			}
		}
		// As shown, General shows up to 10 decimals: the average is cut.
		avg := lo["회원"][1001]
		if w, _ := strconv.ParseFloat(want["회원"][1001][2], 64); len(avg) > 2 {
			if g, err := strconv.ParseFloat(avg[2], 64); err == nil && math.Abs(g-w) < 1e-6 {
				avg[2] = want["회원"][1001][2]
			}
		}
		compareSheets(t, "LibreOffice", lo, want)
	})

	t.Run("csv", func(t *testing.T) {
		t.Parallel()
		resp, body, gap, err := get(t, "csv", "sleep=5")
		if resp.StatusCode != 200 || err != nil {
			t.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/zip" {
			t.Errorf("Content-Type %q", ct)
		}
		if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, `filename="report.zip"`) {
			t.Errorf("Content-Disposition %q", cd)
		}
		if gap >= 3*time.Second {
			t.Errorf("%v without a byte: longer than nginx's read timeout", gap)
		}
		zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][][]string{}
		for i, f := range zr.File {
			if f.Name != reportSheets[i]+".csv" {
				t.Errorf("entry %d is %q", i, f.Name)
			}
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF")))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			// No totals row in CSV: the wanted rows without it.
			got[reportSheets[i]] = append(recs, want[reportSheets[i]][len(want[reportSheets[i]])-1])
		}
		compareSheets(t, "CSV", got, want)
	})

	t.Run("job", func(t *testing.T) {
		t.Parallel()
		var j e2eJob
		if code := getJSON(t, "POST", base+"/v1/datasets/report/jobs", []byte(`{"format": "xlsx", "params": {"sleep": 2}}`), &j); code != 202 {
			t.Fatalf("submit: %d", code)
		}
		done := watch(t, func() []string { return []string{base} }, j.ID, 2*time.Minute, nil)
		code, body := downloadStatus(t, base, j.ID)
		if code != 200 || done.Rows != 1000+1000+5 {
			t.Fatalf("download: %d, %d bytes; job rows %d", code, len(body), done.Rows)
		}
		x, err := excelize.OpenReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		got := map[string][][]string{}
		for _, s := range reportSheets {
			if got[s], err = x.GetRows(s, excelize.Options{RawCellValue: true}); err != nil {
				t.Fatal(err)
			}
		}
		compareSheets(t, "job", got, want)
	})

	t.Run("failure", func(t *testing.T) {
		t.Parallel()
		for _, format := range []string{"xlsx", "csv"} {
			start := time.Now()
			resp, err := client.Get(base + "/v1/datasets/report/export." + format + "?sleep=1&fail_at=500")
			if err != nil {
				t.Fatal(err)
			}
			body, _, err := timedRead(resp.Body)
			resp.Body.Close()
			if err == nil {
				if _, zerr := zip.NewReader(bytes.NewReader(body), int64(len(body))); zerr == nil {
					t.Fatalf("%s: a failing second sheet gave a whole file (%d bytes) in %v", format, len(body), time.Since(start))
				}
			}
			t.Logf("%s: the client sees %v after %d bytes", format, err, len(body))
			if err == nil {
				t.Errorf("%s: the download did not fail", format)
			}
		}
	})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return string(b)
}
