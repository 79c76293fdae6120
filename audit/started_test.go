package audit_test

import (
	"errors"
	"testing"
	"time"

	"github.com/exportd/exportd/audit"
)

// started returns a record of intent: an allowed export before its first byte.
func started(i int) *audit.Record {
	r := record(i)
	r.Outcome, r.Rows, r.Bytes, r.SHA256 = audit.OutcomeStarted, 0, 0, ""
	return r
}

// outcome returns the outcome record completing the started record seq.
func outcome(i int, seq int64) *audit.Record {
	r := record(i)
	r.Ref = seq
	return r
}

func testStarted(t *testing.T, b backend) {
	ctx := t.Context()
	s := b.open(t, "started", audit.Options{Keys: keys(t)})
	add := func(r *audit.Record) *audit.Record {
		t.Helper()
		if err := s.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := add(started(1))       // 1: completed by 3
	add(record(2))             // 2: a denial or a record without intent
	add(outcome(1, a.Seq))     // 3
	open := add(started(4))    // 4: never completed
	c := add(started(5))       // 5: completed by 7
	running := add(started(6)) // 6: still running
	add(outcome(5, c.Seq))     // 7
	sum, err := s.Verify(ctx)
	if err != nil || sum.Records != 7 {
		t.Fatalf("Verify = %+v, %v", sum, err)
	}
	var seqs []int64
	for _, r := range sum.StartedWithoutOutcome {
		seqs = append(seqs, r.Seq)
	}
	if len(seqs) != 2 || seqs[0] != open.Seq || seqs[1] != running.Seq {
		t.Fatalf("started without outcome: %v, want [%d %d]", seqs, open.Seq, running.Seq)
	}
	if r := sum.StartedWithoutOutcome[0]; r.Principal != open.Principal || r.Dataset != "members" || r.Purpose != open.Purpose {
		t.Errorf("started record as read back: %+v", r)
	}

	// what Append refuses: a second outcome, a ref to no started record,
	// a started record with results, a started record with a ref
	if err := s.Append(ctx, outcome(8, a.Seq)); !errors.Is(err, audit.ErrCompleted) {
		t.Errorf("second outcome of record %d: %v, want ErrCompleted", a.Seq, err)
	}
	for _, bad := range []*audit.Record{outcome(9, 2), outcome(9, 99), outcome(9, -1)} {
		if err := s.Append(ctx, bad); err == nil || bad.Seq != 0 {
			t.Errorf("outcome with ref %d appended (seq %d)", bad.Ref, bad.Seq)
		}
	}
	withRows := started(10)
	withRows.Rows = 3
	withRef := started(11)
	withRef.Ref = open.Seq
	for _, bad := range []*audit.Record{withRows, withRef} {
		if err := s.Append(ctx, bad); err == nil {
			t.Errorf("started record %+v appended", bad)
		}
	}
	// completing 4 late (the outcome retried) leaves only 6 open
	add(outcome(12, open.Seq))
	if sum, err := s.Verify(ctx); err != nil || len(sum.StartedWithoutOutcome) != 1 || sum.StartedWithoutOutcome[0].Seq != running.Seq {
		t.Fatalf("Verify = %+v, %v", sum, err)
	}

	// the ref is covered by the MAC: an outcome moved to another started record is found
	b.exec(t, "started", `UPDATE %[1]s SET ref = 6 WHERE seq = 7`)
	_, err = s.Verify(ctx)
	wantBroken(t, err, 7, "MAC mismatch")
	// and a ref cleared, to make an outcome look like an export without intent
	b.exec(t, "started", `UPDATE %[1]s SET ref = 5 WHERE seq = 7`)
	if _, err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	b.exec(t, "started", `UPDATE %[1]s SET ref = 0 WHERE seq = 3`)
	_, err = s.Verify(ctx)
	wantBroken(t, err, 3, "MAC mismatch")
}

// A trail created before refs existed is migrated in place when opened for
// writing (its records verify as before), and read as it is when opened
// read-only.
func testMigrateRef(t *testing.T, b backend) {
	ctx := t.Context()
	fill(t, b, "old", 3)
	// the layout before refs: no ref column, no index on it
	b.exec(t, "old", `DROP INDEX %[1]s_ref`)
	b.exec(t, "old", `ALTER TABLE %[1]s DROP COLUMN ref`)

	ro := b.open(t, "old", audit.Options{Keys: keys(t), ReadOnly: true})
	if sum, err := ro.Verify(ctx); err != nil || sum.Records != 3 {
		t.Fatalf("read-only Verify of the old layout = %+v, %v", sum, err)
	}
	n := 0
	if err := ro.Records(ctx, time.Time{}, time.Now().Add(time.Hour), func(r *audit.Record) error {
		if n++; r.Ref != 0 {
			t.Errorf("record %d: ref %d", r.Seq, r.Ref)
		}
		return nil
	}); err != nil || n != 3 {
		t.Fatalf("read-only Records of the old layout: %d, %v", n, err)
	}

	s := b.open(t, "old", audit.Options{Keys: keys(t)})
	st := started(4)
	if err := s.Append(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, outcome(5, st.Seq)); err != nil {
		t.Fatal(err)
	}
	sum, err := s.Verify(ctx)
	if err != nil || sum.Records != 5 || len(sum.StartedWithoutOutcome) != 0 {
		t.Fatalf("Verify after the migration = %+v, %v", sum, err)
	}
	// opening it again finds the column there
	again := b.open(t, "old", audit.Options{Keys: keys(t)})
	if sum, err := again.Verify(ctx); err != nil || sum.Records != 5 {
		t.Fatalf("Verify = %+v, %v", sum, err)
	}
}
