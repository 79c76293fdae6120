package audit_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/audit"
)

// problems returns every problem a Verify error names, as "seq: reason".
func problems(t *testing.T, err error) []string {
	t.Helper()
	if !errors.Is(err, audit.ErrTampered) {
		t.Fatalf("error %v, want one wrapping ErrTampered", err)
	}
	var list []*audit.ChainError
	var ces *audit.ChainErrors
	var ce *audit.ChainError
	switch {
	case errors.As(err, &ces):
		list = ces.Problems
	case errors.As(err, &ce):
		list = []*audit.ChainError{ce}
	}
	var out []string
	for _, p := range list {
		out = append(out, fmt.Sprintf("%d: %s", p.Seq, p.Reason))
	}
	return out
}

// wantProblems checks that the problems are exactly those named, in order:
// each want is "seq: part of the reason".
func wantProblems(t *testing.T, err error, want ...string) {
	t.Helper()
	got := problems(t, err)
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		seq, reason, _ := strings.Cut(want[i], ": ")
		ok = strings.HasPrefix(got[i], seq+": ") && strings.Contains(got[i], reason)
	}
	if !ok {
		t.Fatalf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

var farPast, farFuture = time.Unix(0, 0), time.Now().AddDate(1, 0, 0)

const copyCols = "time_us, principal, roles, client, dataset, params, cols, purpose_category, purpose, format, row_count, byte_count, sha256, outcome, error, key_id, prev_mac, mac, ref"

// Rows past the head are read and named, each: a record appended around
// the trail (a copy of the newest with the next seq and another principal).
func testPastHead(t *testing.T, b backend) {
	s, log := fill(t, b, "past-head", 10)
	b.exec(t, "past-head", `INSERT INTO %[1]s (seq, `+copyCols+`)
		SELECT 11, time_us, 'mallory', roles, client, dataset, params, cols, purpose_category, purpose, format,
			row_count, byte_count, sha256, outcome, error, key_id, mac, mac, ref FROM %[1]s WHERE seq = 10`)
	b.exec(t, "past-head", `INSERT INTO %[1]s (seq, `+copyCols+`)
		SELECT 12, `+copyCols+` FROM %[1]s WHERE seq = 11`)
	_, err := s.Verify(t.Context())
	wantProblems(t, err,
		"11: MAC mismatch", "11: after the head (record 10)",
		"12: MAC mismatch", "12: after the head (record 10)")
	// the log has nothing against them: it is Verify that must see them
	if _, err := s.VerifyAgainstLog(t.Context(), strings.NewReader(log.String())); err != nil {
		t.Logf("VerifyAgainstLog: %v", err)
	}
	// Export refuses to write the review of a trail that does not verify
	if _, err := s.Export(t.Context(), farPast, farFuture, &strings.Builder{}, "csv"); !errors.Is(err, audit.ErrTampered) {
		t.Fatalf("Export of a broken trail: %v, want ErrTampered", err)
	}
}

// Every gap is named, not only the first.
func testGaps(t *testing.T, b backend) {
	s, _ := fill(t, b, "gaps", 12)
	b.exec(t, "gaps", `DELETE FROM %[1]s WHERE seq IN (3, 7, 8, 12)`)
	_, err := s.Verify(t.Context())
	wantProblems(t, err,
		"3: missing (record 4 follows record 2)",
		"7: missing: records 7–8",
		"12: missing (the head is record 12)")
}

// A seq stored twice (the primary key dropped by someone who can write the
// database) is named: a forged copy as a duplicate, and a second genuine
// history (a backup restored and appended to, then merged) as a fork.
func testDuplicatesAndForks(t *testing.T, b backend) {
	ctx := t.Context()
	s, _ := fill(t, b, "fork", 5)
	// the layout without a primary key, and a backup of records 1–5
	b.exec(t, "fork", `CREATE TABLE %[1]s_bak AS SELECT * FROM %[1]s`)
	b.exec(t, "fork", `CREATE TABLE %[1]s_nopk AS SELECT * FROM %[1]s`)
	b.exec(t, "fork", `DROP TABLE %[1]s`)
	b.exec(t, "fork", `ALTER TABLE %[1]s_nopk RENAME TO `+b.table(t, "fork"))
	t.Cleanup(func() { b.exec(t, "fork", `DROP TABLE IF EXISTS %[1]s_bak`) })
	if err := s.Append(ctx, record(6)); err != nil { // history A: record 6
		t.Fatal(err)
	}
	// history B: record 6 appended to the backup, restored in place…
	b.exec(t, "fork", `CREATE TABLE %[1]s_a AS SELECT * FROM %[1]s WHERE seq = 6`)
	t.Cleanup(func() { b.exec(t, "fork", `DROP TABLE IF EXISTS %[1]s_a`) })
	b.exec(t, "fork", `DELETE FROM %[1]s WHERE seq = 6`)
	b.exec(t, "fork", `UPDATE %[1]s_head SET seq = 5, mac = (SELECT mac FROM %[1]s WHERE seq = 5)`)
	if err := s.Append(ctx, record(66)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx); err != nil {
		t.Fatalf("history B alone: %v", err)
	}
	// …and history A's record 6 merged back in, with a forged copy of 3
	b.exec(t, "fork", `INSERT INTO %[1]s SELECT * FROM %[1]s_a`)
	b.exec(t, "fork", `INSERT INTO %[1]s (seq, `+copyCols+`) SELECT seq, `+strings.Replace(copyCols, "principal", "'mallory'", 1)+` FROM %[1]s WHERE seq = 3`)
	_, err := s.Verify(ctx)
	wantProblems(t, err, "3: duplicate", "6: fork")
}
