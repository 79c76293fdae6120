package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/audit"
)

// refuseAudit makes every insert into the trail fail (as a full disk or a
// lost database would) until the returned function is called.
func refuseAudit(t *testing.T, f *privacyFixture, backend string) (allow func()) {
	t.Helper()
	stmts := []string{`CREATE TRIGGER exportd_refuse BEFORE INSERT ON ` + f.table + ` BEGIN SELECT RAISE(ABORT, 'disk full'); END`}
	undo := []string{`DROP TRIGGER exportd_refuse`}
	if backend == "postgres" {
		fn := f.table + "_refuse"
		stmts = []string{
			`CREATE FUNCTION ` + fn + `() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER exportd_refuse BEFORE INSERT ON ` + f.table + ` FOR EACH ROW EXECUTE FUNCTION ` + fn + `()`,
		}
		undo = []string{`DROP TRIGGER exportd_refuse ON ` + f.table, `DROP FUNCTION ` + fn + `()`}
	}
	for _, s := range stmts {
		if _, err := f.db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	done := false
	allow = func() {
		if done {
			return
		}
		done = true
		for _, s := range undo {
			if _, err := f.db.Exec(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(allow)
	return allow
}

// A personal export whose record of intent cannot be written sends
// nothing: the stream answers 503 audit_unavailable in every format, a
// job's attempt fails and is retried, and once the trail takes records
// again both go through, each recorded as started and then ok.
func TestAuditFailsClosed(t *testing.T) {
	for _, b := range privacyBackends() {
		t.Run(b.name, func(t *testing.T) {
			f := newPrivacyFixture(t, b, true)
			ada := f.token(t, "ada", "admin")
			allow := refuseAudit(t, f, b.name)
			before := len(f.records(t))

			for _, format := range []string{"xlsx", "csv", "tsv", "jsonl"} {
				resp, body := do(t, http.DefaultClient, "GET", f.url+"/v1/datasets/people/export."+format+"?"+purposeQuery, nil, ada...)
				var e struct {
					Error struct{ Code string } `json:"error"`
				}
				if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil || e.Error.Code != "audit_unavailable" ||
					resp.Header.Get("Content-Disposition") != "" {
					t.Errorf("%s with the trail refusing records: %s %s %q", format, resp.Status, resp.Header.Get("Content-Disposition"), body)
				}
				if strings.Contains(string(body), "김민준") || strings.Contains(string(body), "@example") {
					t.Errorf("%s: personal data sent: %q", format, body)
				}
			}

			// A job: its attempt fails, and the job is retried.
			resp, body := do(t, http.DefaultClient, "POST", f.url+"/v1/datasets/people/jobs",
				map[string]any{"format": "csv", "params": map[string]string{"purpose": "member_support", "purpose_text": "회원 문의 1234번 응대를 위한 확인"}}, ada...)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("submit: %s %s", resp.Status, body)
			}
			var j struct {
				ID, State, Error string
				Attempt          int
			}
			json.Unmarshal(body, &j)
			poll := func(until func() bool) {
				t.Helper()
				for deadline := time.Now().Add(30 * time.Second); !until(); time.Sleep(50 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("job %+v", j)
					}
					_, body := do(t, http.DefaultClient, "GET", f.url+"/v1/jobs/"+j.ID, nil, ada...)
					json.Unmarshal(body, &j)
				}
			}
			poll(func() bool { return strings.Contains(j.Error, "audit trail") })
			if j.State == "succeeded" || strings.Contains(j.Error, "/") {
				t.Errorf("job with the trail refusing records: %+v", j)
			}
			if n := len(f.records(t)); n != before {
				t.Errorf("%d records appeared while the trail refused them", n-before)
			}

			allow()
			poll(func() bool { return j.State == "succeeded" })
			resp, body = do(t, http.DefaultClient, "GET", f.url+"/v1/datasets/people/export.csv?"+purposeQuery, nil, ada...)
			if resp.StatusCode != 200 || !strings.Contains(string(body), "김민준") {
				t.Fatalf("stream once the trail is back: %s %q", resp.Status, body)
			}
			var started, ok int
			refs := map[int64]bool{}
			for _, r := range f.records(t)[before:] {
				switch r.Outcome {
				case audit.OutcomeStarted:
					started++
					refs[r.Seq] = true
				case audit.OutcomeOK:
					if refs[r.Ref] {
						ok++
					}
				}
			}
			// The job's attempt and the stream (the job's download adds its own).
			if started != 2 || ok != 2 {
				t.Errorf("%d records of intent and %d completed after the trail came back, want 2 and 2", started, ok)
			}
		})
	}
}
