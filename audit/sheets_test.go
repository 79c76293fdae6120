package audit_test

import (
	"slices"
	"testing"
	"time"

	"github.com/exportd/exportd/audit"
)

// testSheets: a record of an export of several sheets keeps its sheets
// and their rows, under its MAC: an edit of a sheet's rows is found. A
// trail made before sheets is read as it is (read-only) and gains the
// column when opened for appends.
func testSheets(t *testing.T, b backend) {
	ctx := t.Context()
	fill(t, b, "sheets", 2)
	// the layout before sheets
	b.exec(t, "sheets", `ALTER TABLE %[1]s DROP COLUMN sheets`)
	ro := b.open(t, "sheets", audit.Options{Keys: keys(t), ReadOnly: true})
	if sum, err := ro.Verify(ctx); err != nil || sum.Records != 2 {
		t.Fatalf("read-only Verify of the old layout = %+v, %v", sum, err)
	}

	s := b.open(t, "sheets", audit.Options{Keys: keys(t)})
	st := record(3)
	st.Outcome, st.Rows, st.Bytes, st.SHA256 = audit.OutcomeStarted, 0, 0, ""
	st.Sheets = []audit.Sheet{{Name: "회원별 평균"}, {Name: "시험 결과"}}
	if err := s.Append(ctx, st); err != nil {
		t.Fatal(err)
	}
	done := record(4)
	done.Ref, done.Rows = st.Seq, 30
	done.Sheets = []audit.Sheet{{Name: "회원별 평균", Rows: 10}, {Name: "시험 결과", Rows: 20}}
	if err := s.Append(ctx, done); err != nil {
		t.Fatal(err)
	}
	bad := record(5)
	bad.Outcome = audit.OutcomeStarted
	bad.Rows, bad.Bytes, bad.SHA256 = 0, 0, ""
	bad.Sheets = []audit.Sheet{{Name: "x", Rows: 1}}
	if err := s.Append(ctx, bad); err == nil {
		t.Error("a started record with rows in a sheet was appended")
	}
	if sum, err := s.Verify(ctx); err != nil || sum.Records != 4 {
		t.Fatalf("Verify = %+v, %v", sum, err)
	}
	var got [][]audit.Sheet
	if err := s.Records(ctx, time.Time{}, time.Now().Add(time.Hour), func(r *audit.Record) error {
		got = append(got, r.Sheets)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0] != nil || !slices.Equal(got[2], st.Sheets) || !slices.Equal(got[3], done.Sheets) {
		t.Fatalf("sheets read back: %v", got)
	}

	b.exec(t, "sheets", `UPDATE %[1]s SET sheets = replace(sheets, '"rows":20', '"rows":2') WHERE seq = 4`)
	_, err := s.Verify(ctx)
	wantBroken(t, err, 4, "MAC mismatch")
}
