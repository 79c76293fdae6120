package main

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/audit"
)

// auditTrail appends n records to a new SQLite trail and returns its URL
// and key file.
func auditTrail(t *testing.T, dir string, n int) (url, keyFile string) {
	t.Helper()
	keyFile = filepath.Join(dir, "audit.key")
	if err := os.WriteFile(keyFile, []byte("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := audit.LoadKeys(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	url = "sqlite:" + filepath.Join(dir, "audit.db")
	s, err := audit.Open(context.Background(), url, audit.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)
	for i := range n {
		r := &audit.Record{
			Time: start.Add(time.Duration(i) * 24 * time.Hour), Principal: "kim", Roles: []string{"manager"},
			Client: "10.0.0.1", Dataset: "member_scores", Params: json.RawMessage(`{"from":"2019-01-01"}`),
			Columns: []string{"id", "name"}, Purpose: audit.Purpose{Category: "support", Text: "회원 문의 처리 #" + strconv.Itoa(i)},
			Format: "xlsx", Rows: int64(100 + i), Bytes: 4096, SHA256: strings.Repeat("ab", 32), Outcome: audit.OutcomeOf(nil),
		}
		if err := s.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	return url, keyFile
}

func TestAuditVerifyAndExport(t *testing.T) {
	dir := t.TempDir()
	url, key := auditTrail(t, dir, 10)

	out, stderr, code := run(t, dir, "audit", "verify", "--db", url, "--key-file", key)
	if code != 0 || !strings.Contains(out, "10 records OK") {
		t.Fatalf("verify: exit %d, %q %q", code, out, stderr)
	}

	// The October review file holds the records of October, every field as stored.
	_, stderr, code = run(t, dir, "audit", "export", "--db", url, "--key-file", key, "--from", "2026-10-01", "--to", "2026-10-06",
		"--format", "csv", "--timezone", "UTC", "-o", "review.csv")
	if code != 0 {
		t.Fatalf("export: exit %d, %s", code, stderr)
	}
	data, err := os.ReadFile(filepath.Join(dir, "review.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(data), "\xEF\xBB\xBF"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 { // header + 5 days
		t.Fatalf("%d records in the review file, want header + 5:\n%s", len(recs), data)
	}
	if !strings.Contains(strings.Join(recs[1], "|"), "회원 문의 처리 #0") || !strings.Contains(strings.Join(recs[5], "|"), "회원 문의 처리 #4") {
		t.Fatalf("review rows: %q … %q", recs[1], recs[5])
	}

	// Someone with write access edits record 4: verify fails naming it.
	path := strings.TrimPrefix(url, "sqlite:")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE exportd_audit SET row_count = 1 WHERE seq = 4`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, stderr, code = run(t, dir, "audit", "verify", "--db", url, "--key-file", key)
	if code != 1 || !strings.Contains(stderr, "record 4") {
		t.Fatalf("verify after an edit: exit %d, %q", code, stderr)
	}
	if lines := strings.Count(strings.TrimSpace(stderr), "\n"); lines != 0 {
		t.Errorf("not one line: %q", stderr)
	}

	// A wrong key is bad input.
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, _, code := run(t, dir, "audit", "verify", "--db", url, "--key-file", bad); code != 2 {
		t.Errorf("bad key file: exit %d, want 2", code)
	}
}

// An export whose record of intent has no outcome record is listed by
// verify, record by record, with who, what and why; it is a fact to review,
// not tampering: exit 0.
func TestAuditVerifyStartedWithoutOutcome(t *testing.T) {
	dir := t.TempDir()
	url, keyFile := auditTrail(t, dir, 2)
	keys, err := audit.LoadKeys(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.Open(t.Context(), url, audit.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	intent := func(who string) *audit.Record {
		return &audit.Record{Principal: who, Roles: []string{"support"}, Client: "10.0.0.9", Dataset: "member_scores",
			Columns: []string{"id"}, Purpose: audit.Purpose{Category: "support", Text: "민원 처리 확인용"}, Format: "csv",
			Outcome: audit.OutcomeStarted}
	}
	done, cut := intent("lee"), intent("park")
	for _, r := range []*audit.Record{done, cut} {
		if err := s.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Append(t.Context(), &audit.Record{Principal: "lee", Dataset: "member_scores", Format: "csv", Rows: 3, Bytes: 10,
		SHA256: strings.Repeat("cd", 32), Outcome: audit.OutcomeOK, Ref: done.Seq}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	out, stderr, code := run(t, dir, "audit", "verify", "--db", url, "--key-file", keyFile)
	if code != 0 || !strings.Contains(out, "5 records OK") {
		t.Fatalf("verify: exit %d, %q %q", code, out, stderr)
	}
	if !strings.Contains(out, "1 started without outcome") || !strings.Contains(out, "record 4 started without outcome") ||
		!strings.Contains(out, "park") || !strings.Contains(out, "민원 처리 확인용") || strings.Contains(out, "record 3 started") {
		t.Fatalf("verify does not list record 4 (park's) alone as started without outcome:\n%s", out)
	}
}

// A record slipped in after the newest one (a copy with the next seq and
// another principal), and two records deleted: verify names each problem,
// with and without the log, and export writes no review of such a trail.
func TestAuditVerifyWholeStore(t *testing.T) {
	dir := t.TempDir()
	url, key := auditTrail(t, dir, 6)
	db, err := sql.Open("sqlite", strings.TrimPrefix(url, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO exportd_audit (seq, time_us, principal, roles, client, dataset, params, cols, purpose_category, purpose, format,
			row_count, byte_count, sha256, outcome, error, key_id, prev_mac, mac, ref)
		 SELECT 7, time_us, 'mallory', roles, client, dataset, params, cols, purpose_category, purpose, format,
			row_count, byte_count, sha256, outcome, error, key_id, mac, mac, ref FROM exportd_audit WHERE seq = 6`,
		`DELETE FROM exportd_audit WHERE seq IN (2, 4)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	log := filepath.Join(dir, "audit.jsonl")
	os.WriteFile(log, []byte(`{"time":"2026-10-01T09:00:00Z","level":"INFO","msg":"export audit","audit":{"seq":1,"mac":"`+strings.Repeat("00", 32)+`"}}`+"\n"), 0o600)
	for _, args := range [][]string{{}, {"--log", log}} {
		out, stderr, code := run(t, dir, append([]string{"audit", "verify", "--db", url, "--key-file", key}, args...)...)
		if code != 1 {
			t.Fatalf("verify %v: exit %d, %q %q", args, code, out, stderr)
		}
		for _, want := range []string{"audit record 2: missing", "audit record 4: missing", "audit record 7: MAC mismatch", "audit record 7: after the head (record 6)"} {
			if !strings.Contains(out, want+"") || !strings.Contains(stderr, want) {
				t.Errorf("verify %v does not name %q:\nstdout: %s\nstderr: %s", args, want, out, stderr)
			}
		}
	}
	_, stderr, code := run(t, dir, "audit", "export", "--db", url, "--key-file", key, "--from", "2026-10-01", "--to", "2026-11-01", "-o", "review.csv")
	if code != 1 || !strings.Contains(stderr, "does not verify") {
		t.Fatalf("export of a broken trail: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "review.csv")); !os.IsNotExist(err) {
		t.Fatalf("review file written: %v", err)
	}
}
