package main

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/audit"
)

// A local export of the demo's personal dataset needs a purpose and the
// roles whose masking applies, masks by those roles, can only leave
// columns out, and is recorded in the audit trail (refusals too) with the
// OS user and the digest of the file written.
func TestExportPersonalLocal(t *testing.T) {
	dir, cfg := demo(t)
	purpose := []string{"--purpose", "member_support", "--purpose-text", "회원 문의 1234번 응대를 위한 확인"}
	base := []string{"export", "--config", cfg, "--dataset", "member_scores", "--param", "from=2019-01-01", "--param", "to=2019-01-31", "-q"}
	args := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no purpose", args("--roles", "admin", "-o", "x.csv"), "--purpose: this dataset holds personal data"},
		{"short purpose", args("--roles", "admin", "--purpose", "member_support", "--purpose-text", "문의", "-o", "x.csv"), "--purpose-text: describe the purpose in at least 10 characters"},
		{"unknown purpose", args(append([]string{"--roles", "admin", "-o", "x.csv", "--purpose-text", "long enough text"}, "--purpose", "curiosity")...), `unknown purpose "curiosity"`},
		{"no roles", args(append(purpose, "-o", "x.csv")...), "--roles: dataset member_scores holds personal data"},
		{"a column the role may not see", args(append(purpose, "--roles", "viewer", "--columns", "id,name", "-o", "x.csv")...), `column "name": column not allowed for your roles`},
		{"an unknown column", args(append(purpose, "--roles", "support", "--columns", "id,salary", "-o", "x.csv")...), `column "salary": unknown column`},
	} {
		_, stderr, code := run(t, dir, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q (want 2, %q)", tc.name, code, stderr, tc.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "x.csv")); err == nil {
			t.Errorf("%s: a file was written", tc.name)
		}
	}

	// support: name, email and phone masked; columns chosen.
	_, stderr, code := run(t, dir, args(append(purpose, "--roles", "support", "--columns", "id,name,email,phone", "-o", "support.csv")...)...)
	if code != 0 {
		t.Fatalf("support export: exit %d: %s", code, stderr)
	}
	file, err := os.ReadFile(filepath.Join(dir, "support.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(file), "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 2 || strings.Join(rows[0], ",") != "회원번호,이름,이메일,전화번호" {
		t.Fatalf("support file: %q", rows)
	}
	if r := rows[1]; r[0] != "1" || r[1] != "김*준" || r[2] != "me*****@example.com" || r[3] != "010-****-0000" {
		t.Errorf("support row 1 = %q", r)
	}
	// viewer: no personal column at all.
	_, stderr, code = run(t, dir, args(append(purpose, "--roles", "viewer", "-o", "viewer.csv")...)...)
	if code != 0 {
		t.Fatalf("viewer export: exit %d: %s", code, stderr)
	}
	vb, _ := os.ReadFile(filepath.Join(dir, "viewer.csv"))
	if head, _, _ := strings.Cut(strings.TrimPrefix(string(vb), "\ufeff"), "\n"); head != "회원번호,지점,등급,가입일,응시 횟수,평균 점수,최근 응시" {
		t.Errorf("viewer header %q", head)
	}

	// The trail: six refusals (the unknown column too), then the two
	// exports with the OS user, the roles named, the columns of the file
	// and its digest; it verifies.
	demoDir := filepath.Dir(cfg)
	keys, err := audit.LoadKeys(filepath.Join(demoDir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := audit.Open(t.Context(), "sqlite:"+filepath.Join(demoDir, "exportd-audit.db"), audit.Options{Keys: keys, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var recs []audit.Record
	if _, err := st.Verify(t.Context()); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := st.Records(t.Context(), time.Time{}, time.Now().Add(time.Hour), func(r *audit.Record) error { recs = append(recs, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	// Six refusals, then two exports, each a record of intent before the
	// first byte and its outcome after the last.
	if len(recs) != 10 {
		t.Fatalf("%d records, want 10", len(recs))
	}
	for _, r := range recs[:6] {
		if r.Outcome != audit.OutcomeDenied || r.Principal != localUser() {
			t.Errorf("refusal recorded as %+v", r)
		}
	}
	sum := sha256.Sum256(file)
	for _, i := range []int{6, 8} {
		if in, out := recs[i], recs[i+1]; in.Outcome != audit.OutcomeStarted || in.Bytes != 0 || in.SHA256 != "" ||
			out.Ref != in.Seq || in.Principal != out.Principal || strings.Join(in.Columns, ",") != strings.Join(out.Columns, ",") {
			t.Errorf("record of intent %+v for %+v", in, out)
		}
	}
	r := recs[7]
	if r.Outcome != audit.OutcomeOK || r.Principal != localUser() || strings.Join(r.Roles, ",") != "support" ||
		!strings.HasPrefix(r.Client, "local:") || r.Purpose.Category != "member_support" ||
		strings.Join(r.Columns, ",") != "id,name,email,phone" || r.Format != "csv" ||
		r.SHA256 != hex.EncodeToString(sum[:]) || r.Bytes != int64(len(file)) || r.Rows != int64(len(rows)-1) {
		t.Errorf("support export recorded as %+v", r)
	}
	// The parameters as bound (the default grades filled in), as the
	// server records them.
	if string(r.Params) != `{"from":"2019-01-01","grades":"gold,silver,bronze","to":"2019-01-31"}` {
		t.Errorf("params %s", r.Params)
	}
	if recs[9].Outcome != audit.OutcomeOK || strings.Join(recs[9].Columns, ",") != "id,branch,grade,joined_on,tests,score_avg,last_test" {
		t.Errorf("viewer export recorded as %+v", recs[9])
	}

	// A dataset without personal data needs none of it; --columns still
	// leaves columns out.
	_, stderr, code = run(t, dir, "export", "--config", cfg, "--dataset", "accounts", "--columns", "id,category", "-o", "acc.csv", "-q")
	if code != 0 {
		t.Fatalf("accounts: exit %d: %s", code, stderr)
	}
	ab, _ := os.ReadFile(filepath.Join(dir, "acc.csv"))
	if !strings.HasPrefix(strings.TrimPrefix(string(ab), "\ufeff"), "id,category\n1,standard\n") {
		t.Errorf("accounts with --columns: %.60q", ab)
	}
}

// With privacy.audit.log set, a local export's record (and a refusal's)
// is one JSON line in that file too, and `audit verify --log` compares
// the trail with it.
func TestExportPersonalLocalAuditLog(t *testing.T) {
	dir, cfg := demo(t)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	withLog := strings.Replace(string(b), "  audit:\n    key_file: audit.key\n", "  audit:\n    key_file: audit.key\n    log: audit.log\n", 1)
	if withLog == string(b) {
		t.Fatal("the demo's privacy.audit block has changed: update this test")
	}
	if err := os.WriteFile(cfg, []byte(withLog), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"export", "--config", cfg, "--dataset", "member_scores", "--roles", "support", "-q", "-o", "x.csv"}
	if _, stderr, code := run(t, dir, append(base, "--purpose", "member_support")...); code != 2 {
		t.Fatalf("refusal: exit %d: %s", code, stderr)
	}
	if _, stderr, code := run(t, dir, append(base, "--purpose", "member_support", "--purpose-text", "회원 문의 응대를 위한 확인")...); code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	demoDir := filepath.Dir(cfg)
	log, err := os.ReadFile(filepath.Join(demoDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, l := range strings.Split(strings.TrimSpace(string(log)), "\n") {
		var rec struct {
			Msg    string `json:"msg"`
			Record struct {
				Outcome, Principal, Client string
			} `json:"audit"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("audit log line %q: %v", l, err)
		}
		if rec.Msg != "export audit" {
			t.Errorf("audit log line %q: not an audit record", l)
		}
		outcomes = append(outcomes, rec.Record.Outcome)
		if rec.Record.Principal != localUser() || !strings.HasPrefix(rec.Record.Client, "local:") {
			t.Errorf("record %+v: want the OS user and local:HOST", rec.Record)
		}
	}
	if strings.Join(outcomes, ",") != "denied,started,ok" {
		t.Errorf("audit log outcomes %v, want denied, started, ok:\n%s", outcomes, log)
	}
	out, stderr, code := run(t, dir, "audit", "verify", "--db", "sqlite:"+filepath.Join(demoDir, "exportd-audit.db"),
		"--key-file", filepath.Join(demoDir, "audit.key"), "--log", filepath.Join(demoDir, "audit.log"))
	if code != 0 || !strings.Contains(out+stderr, "3 logged records compared") {
		t.Errorf("audit verify --log: exit %d\n%s%s", code, out, stderr)
	}
}
