package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/exportd/exportd/audit"
)

// The form of a personal dataset asks for the purpose and offers only the
// columns the principal's roles may see, the masked ones labelled; the
// no-JavaScript submission checks both and passes them to the stream.
func TestUIPrivacyForm(t *testing.T) {
	f := newPrivacyFixture(t, privacyBackends()[0], false)
	support := f.token(t, "kim", "support")
	admin := f.token(t, "lee", "admin")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, body := do(t, noRedirect, "GET", f.url+"/ui/datasets/people", nil, support...)
	if resp.StatusCode != 200 {
		t.Fatalf("form: %s", resp.Status)
	}
	page := string(body)
	for _, want := range []string{
		`<select id="p-purpose" name="purpose" required`,
		`<option value="member_support">회원 문의 응대</option>`,
		`<option value="audit">내부 감사</option>`,
		`<input type="text" id="p-purpose_text" name="purpose_text" value="" minlength="10" maxlength="500" required`,
		`<p class="error" id="err-purpose_text" hidden></p>`,
		`<input type="hidden" name="columns" value="">`,
		`<input type="checkbox" name="columns" value="id" checked> id</label>`,
		`<input type="checkbox" name="columns" value="name" checked> name <span class="masked"`,
		`<input type="checkbox" name="columns" value="email" checked> email <span class="masked"`,
		`<input type="checkbox" name="columns" value="score" checked> score</label>`,
		`<p class="error" id="err-columns" hidden></p>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("support's form lacks %s", want)
		}
	}
	if strings.Contains(page, `value="phone"`) {
		t.Error("support's form offers the phone column, which the role may not see")
	}
	// Without jobs, no password-protected workbook is offered.
	if strings.Contains(page, `id="job-password"`) {
		t.Error("form without jobs offers a password")
	}
	// admin sees every column in full.
	_, body = do(t, noRedirect, "GET", f.url+"/ui/datasets/people", nil, admin...)
	if p := string(body); !strings.Contains(p, `value="phone" checked> phone</label>`) || strings.Contains(p, `class="masked"`) {
		t.Errorf("admin's columns:\n%s", regexp.MustCompile(`(?s)<fieldset class="columns.*?</fieldset>`).FindString(p))
	}

	form := func(v url.Values) (*http.Response, string) {
		resp, body := do(t, noRedirect, "GET", f.url+"/ui/datasets/people/download?"+v.Encode(), nil, support...)
		return resp, string(body)
	}
	good := url.Values{"purpose": {"member_support"}, "purpose_text": {"회원 문의 1234번 응대를 위한 확인"},
		"columns": {"", "id", "name"}, "format": {"csv"}}

	// A short purpose: 400, the message next to the field, the values kept.
	bad := url.Values{}
	for k, v := range good {
		bad[k] = v
	}
	bad.Set("purpose_text", "문의")
	resp, page = form(bad)
	if resp.StatusCode != 400 {
		t.Fatalf("short purpose = %s", resp.Status)
	}
	for _, want := range []string{
		`<p class="error" id="err-purpose_text">describe the purpose in at least 10 characters (got 2)</p>`,
		`<div class="field invalid" data-field="purpose_text">`,
		`<option value="member_support" selected>`,
		`value="id" checked>`, `value="name" checked>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("re-rendered form lacks %s", want)
		}
	}
	if strings.Contains(page, `value="email" checked>`) {
		t.Error("an unticked column came back ticked")
	}
	// No purpose at all names the category.
	resp, page = form(url.Values{"columns": {"", "id"}})
	if resp.StatusCode != 400 || !strings.Contains(page, `<p class="error" id="err-purpose">this dataset holds personal data`) {
		t.Errorf("no purpose = %s", resp.Status)
	}
	// No column ticked (only the hidden empty field): not "all columns".
	nocols := url.Values{"purpose": good["purpose"], "purpose_text": good["purpose_text"], "columns": {""}}
	resp, page = form(nocols)
	if resp.StatusCode != 400 || !strings.Contains(page, `<p class="error" id="err-columns">no column chosen</p>`) {
		t.Errorf("no column = %s\n%s", resp.Status, regexp.MustCompile(`(?s)<fieldset class="columns.*?</fieldset>`).FindString(page))
	}
	// A column the role may not see, put in the URL by hand: refused.
	forbidden := url.Values{"purpose": good["purpose"], "purpose_text": good["purpose_text"], "columns": {"id", "phone"}}
	if resp, _ = form(forbidden); resp.StatusCode != 403 {
		t.Errorf("forbidden column = %s", resp.Status)
	}

	// A good form redirects to the stream with the purpose and columns,
	// and the file there has those columns, masked for support.
	resp, _ = form(good)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("good form = %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Path != "/v1/datasets/people/export.csv" || q.Get("purpose") != "member_support" ||
		q.Get("purpose_text") != good.Get("purpose_text") || strings.Join(q["columns"], ",") != "id,name" {
		t.Fatalf("redirect to %s", loc)
	}
	resp, body = do(t, noRedirect, "GET", f.url+loc, nil, support...)
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %s %s", resp.Status, body)
	}
	want := "id,name\n1,김*준\n2,남**수\n3,J*** S****\n"
	if got := strings.ReplaceAll(strings.TrimPrefix(string(body), "\ufeff"), "\r\n", "\n"); got != want {
		t.Errorf("file:\n%s\nwant:\n%s", got, want)
	}
	rec := f.last(t)
	if rec.Principal != "token:kim" || rec.Purpose.Category != "member_support" || strings.Join(rec.Columns, ",") != "id,name" {
		t.Errorf("audit record %+v", rec)
	}
}

// With jobs, a dataset with encryption: offers the password-protected
// workbook on the job's done state.
func TestUIPrivacyFormEncryption(t *testing.T) {
	f := newPrivacyFixture(t, privacyBackends()[0], true)
	_, body := do(t, http.DefaultClient, "GET", f.url+"/ui/datasets/people", nil, f.token(t, "kim", "support")...)
	page := string(body)
	for _, want := range []string{
		`<section class="job" id="job" hidden aria-live="polite" data-encryption="optional">`,
		`<form class="password" id="job-password" method="post" hidden>`,
		`<input type="password" id="job-pw" name="password" minlength="8"`,
		`id="job-pw-generate"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("form lacks %s", want)
		}
	}
}

// The UI's refusals of a personal dataset, from the script's check and
// from the form's submission without JavaScript, are in the audit trail
// as the stream's are; a check that passes is not (the stream it leads to
// records the download).
func TestUIPrivacyAudit(t *testing.T) {
	f := newPrivacyFixture(t, privacyBackends()[0], false)
	support := f.token(t, "kim", "support")
	c := client(t)
	purpose := url.Values{"purpose": {"member_support"}, "purpose_text": {"회원 문의 1234번 응대를 위한 확인"}}
	query := func(extra ...string) string {
		q := url.Values{"format": {"csv"}}
		for i := 0; i+1 < len(extra); i += 2 {
			q.Add(extra[i], extra[i+1])
		}
		return q.Encode()
	}
	withPurpose := "&" + purpose.Encode()
	for _, tc := range []struct {
		path    string
		status  int
		purpose string   // the record's purpose category
		columns []string // the record's columns
	}{
		// A column the role may not see.
		{"/ui/datasets/people/check?" + query("columns", "id", "columns", "phone") + withPurpose, 403, "member_support", []string{"id", "phone"}},
		{"/ui/datasets/people/download?" + query("columns", "", "columns", "id", "columns", "phone") + withPurpose, 403, "member_support", []string{"id", "phone"}},
		// No purpose, or one too short (refused before the columns are
		// read, as on the stream).
		{"/ui/datasets/people/check?" + query("columns", "id"), 400, "", nil},
		{"/ui/datasets/people/download?" + query("columns", "", "columns", "id"), 400, "", nil},
		{"/ui/datasets/people/download?" + query("purpose", "audit", "purpose_text", "짧음"), 400, "audit", nil},
	} {
		n := len(f.records(t))
		resp, body := do(t, c, "GET", f.url+tc.path, nil, support...)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %s, want %d: %s", tc.path, resp.Status, tc.status, body)
		}
		recs := f.records(t)
		if len(recs) != n+1 {
			t.Errorf("%s: %d new audit records, want 1", tc.path, len(recs)-n)
			continue
		}
		r := recs[n]
		if r.Outcome != audit.OutcomeDenied || r.Principal != "token:kim" || r.Dataset != "people" || r.Format != "csv" ||
			!strings.HasPrefix(r.Error, fmt.Sprint(tc.status)+" ") || r.Purpose.Category != tc.purpose || !slices.Equal(r.Columns, tc.columns) {
			t.Errorf("%s: record %+v", tc.path, r)
		}
	}
	// A check that passes records nothing; the download it leads to does.
	n := len(f.records(t))
	resp, body := do(t, c, "GET", f.url+"/ui/datasets/people/check?"+query("columns", "id")+withPurpose, nil, support...)
	var sub struct{ URL string }
	if err := json.Unmarshal(body, &sub); err != nil || resp.StatusCode != 200 {
		t.Fatalf("good check: %s %s", resp.Status, body)
	}
	if recs := f.records(t); len(recs) != n {
		t.Errorf("a passing check added %d audit records", len(recs)-n)
	}
	if resp, body = do(t, c, "GET", f.url+sub.URL, nil, support...); resp.StatusCode != 200 {
		t.Fatalf("download: %s %s", resp.Status, body)
	}
	if rec := f.last(t); rec.Outcome != audit.OutcomeOK || !slices.Equal(rec.Columns, []string{"id"}) {
		t.Errorf("download record %+v", rec)
	}
	if sum, err := f.trail.Verify(t.Context()); err != nil || sum.Records != int64(len(f.records(t))) {
		t.Errorf("verify: %+v %v", sum, err)
	}
}
