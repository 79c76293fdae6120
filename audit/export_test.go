package audit_test

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/xuri/excelize/v2"
)

func testExport(t *testing.T, b backend) {
	s := b.open(t, "export", audit.Options{Keys: keys(t)})
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 10, 1, 0, 0, 0, 0, seoul)
	to := from.AddDate(0, 1, 0)
	var want []*audit.Record
	for i, at := range []time.Time{
		from.Add(-time.Second), // September: left out
		from,
		from.Add(36*time.Hour + 15*time.Minute + 7*time.Second),
		to.Add(-time.Second),
		to, // November: left out
	} {
		r := record(i)
		r.Time = at
		switch i {
		case 1: // a record of intent, completed by record 4
			r.Outcome, r.Rows, r.Bytes, r.SHA256 = audit.OutcomeStarted, 0, 0, ""
		case 2:
			r.Outcome, r.Error, r.Rows, r.Bytes, r.SHA256 = audit.OutcomeDenied, `column "phone": not allowed`, 0, 0, ""
			r.Columns = nil
			r.Purpose.Text = "=cmd|' /C calc'!A0, \"quoted\"\n두 줄"
		case 3:
			r.Outcome, r.Error, r.Ref = audit.OutcomeFailed, "context canceled", 2
			r.Roles = []string{"admin"}
			r.Sheets = []audit.Sheet{{Name: "요약", Rows: 12}, {Name: "상세 (11월)", Rows: 18}}
		}
		if err := s.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		if i >= 1 && i <= 3 {
			want = append(want, r)
		}
	}
	wantRow := func(r *audit.Record) []string {
		ref := ""
		if r.Ref != 0 {
			ref = strconv.FormatInt(r.Ref, 10)
		}
		sheets := ""
		if r.Sheets != nil {
			sheets = "요약: 12; 상세 (11월): 18"
		}
		return []string{
			strconv.FormatInt(r.Seq, 10),
			r.Time.In(seoul).Format(time.DateTime),
			r.Principal, strings.Join(r.Roles, ", "), r.Client, r.Dataset, string(r.Params),
			strings.Join(r.Columns, ", "), r.Purpose.Category, r.Purpose.Text, r.Format,
			strconv.FormatInt(r.Rows, 10), sheets, strconv.FormatInt(r.Bytes, 10), string(r.Outcome), ref, r.Error,
			r.SHA256, r.KeyID, r.MAC.String(),
		}
	}
	header := make([]string, len(audit.ReviewColumns))
	for i, c := range audit.ReviewColumns {
		header[i] = c.Label()
	}

	t.Run("xlsx", func(t *testing.T) {
		var buf bytes.Buffer
		n, err := s.Export(t.Context(), from, to, &buf, exportd.FormatXLSX)
		if err != nil || n != 3 {
			t.Fatalf("Export = %d, %v", n, err)
		}
		f, err := excelize.OpenReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rows, err := f.GetRows("audit", excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 4 {
			t.Fatalf("%d rows, want a header and 3", len(rows))
		}
		compare(t, 1, rows[0], header)
		for i, r := range want {
			got := rows[i+1]
			// the time is a serial number: convert it back
			serial, err := strconv.ParseFloat(got[1], 64)
			if err != nil {
				t.Fatalf("time cell %q: %v", got[1], err)
			}
			tm, err := excelize.ExcelDateToTime(serial, false)
			if err != nil {
				t.Fatal(err)
			}
			got[1] = tm.Round(time.Second).Format(time.DateTime)
			compare(t, i+2, got, wantRow(r))
		}
		if v, _ := f.GetCellValue("audit", "B3"); v != want[1].Time.In(seoul).Format(time.DateTime) {
			t.Errorf("formatted time %q", v)
		}
	})
	t.Run("csv", func(t *testing.T) {
		var buf bytes.Buffer
		if _, err := s.Export(t.Context(), from, to, &buf, exportd.FormatCSV); err != nil {
			t.Fatal(err)
		}
		body, ok := bytes.CutPrefix(buf.Bytes(), []byte("\xEF\xBB\xBF"))
		if !ok {
			t.Fatal("no BOM")
		}
		rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 4 {
			t.Fatalf("%d rows", len(rows))
		}
		compare(t, 1, rows[0], header)
		for i, r := range want {
			w := wantRow(r)
			if strings.HasPrefix(w[9], "=") {
				w[9] = "'" + w[9] // the formula-injection guard
			}
			compare(t, i+2, rows[i+1], w)
		}
	})
	if _, err := s.Export(t.Context(), from, to, &bytes.Buffer{}, exportd.FormatJSONL); err == nil {
		t.Error("jsonl accepted")
	}
}

func compare(t *testing.T, line int, got, want []string) {
	t.Helper()
	for len(got) < len(want) {
		got = append(got, "") // excelize leaves out trailing empty cells
	}
	if len(got) != len(want) {
		t.Fatalf("row %d: %d cells, want %d", line, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d, %s: %q, want %q", line, audit.ReviewColumns[i].Name, got[i], want[i])
		}
	}
}
