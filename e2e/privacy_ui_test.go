package e2e

// The web UI of a personal dataset in Chromium: the purpose
// field, the column checkboxes (only the columns the principal's roles may
// see, masked ones labelled), the message next to the field for a short
// purpose, and a masked download as the support role, read back with
// excelize and compared cell by cell with the masking rules applied to
// the database's values.

import (
	"database/sql"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	domain "github.com/exportd/exportd"
	"github.com/exportd/exportd/mask"
)

func TestUIPrivacyBrowser(t *testing.T) {
	ctx, dl := newBrowser(t)
	srv := startUIServer(t, 1000)
	cfg := filepath.Join(filepath.Dir(srv.DB), "datasets.yaml")

	// The support role, by an API token the browser sends with every
	// request (from this machine, without one, it would be the demo's
	// anonymous admin).
	out, err := exec.Command(exportdBin(t), "token", "create", "--config", cfg, "--name", "kim", "--roles", "support").CombinedOutput()
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	tok := regexp.MustCompile(`exd_[A-Za-z0-9_-]+`).FindString(string(out))
	if tok == "" {
		t.Fatalf("no token in %s", out)
	}
	c := within(t, ctx, 2*time.Minute)
	if err := chromedp.Do(c, chromedp.Navigate(srv.URL+"/healthz")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(c, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(c, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Authorization": "Bearer " + tok}}); err != nil {
		t.Fatal(err)
	}

	t.Run("form", func(t *testing.T) {
		if err := chromedp.Do(c,
			chromedp.Navigate(srv.URL+"/ui/datasets/member_scores"),
			chromedp.WaitVisible(chromedp.CSS("#p-purpose")),
		); err != nil {
			t.Fatal(err)
		}
		if got := text(t, ctx, `label[for="p-purpose"]`); !strings.HasPrefix(got, "목적") {
			t.Errorf("purpose label %q", got)
		}
		options, err := chromedp.Run(c, chromedp.Evaluate[string](
			`[...document.querySelectorAll("#p-purpose option")].map(o => o.value + "=" + o.textContent).join("|")`))
		if err != nil || options != "=선택하세요|member_support=회원 문의 응대|score_review=성적 검토|internal_audit=내부 감사|legal_request=법적 요청 대응" {
			t.Errorf("purpose options %q (%v)", options, err)
		}
		// The columns support may see, each with its header; name, email
		// and phone labelled as masked.
		cols, err := chromedp.Run(c, chromedp.Evaluate[string](
			`[...document.querySelectorAll("label.column")].map(l => l.querySelector("input").value + (l.querySelector(".masked") ? "*" : "") + (l.querySelector("input").checked ? "" : "-")).join(",")`))
		if err != nil || cols != "id,name*,email*,phone*,branch,grade,joined_on,tests,score_avg,last_test" {
			t.Errorf("column checkboxes %q (%v)", cols, err)
		}
	})

	t.Run("short purpose", func(t *testing.T) {
		if err := chromedp.Do(c,
			chromedp.SetValue(chromedp.CSS("#p-purpose"), "member_support"),
			chromedp.SendKeys(chromedp.CSS("#p-purpose_text"), "문의 응대"),
			chromedp.Click(chromedp.CSS("#download"), chromedp.NodeVisible),
			chromedp.WaitVisible(chromedp.CSS("#err-purpose_text")),
		); err != nil {
			t.Fatal(err)
		}
		if msg := text(t, ctx, "#err-purpose_text"); msg == "" {
			t.Error("no message next to the purpose")
		}
		cls, err := chromedp.Run(c, chromedp.Evaluate[string](`document.querySelector('[data-field="purpose_text"]').className`))
		if err != nil || !strings.Contains(cls, "invalid") {
			t.Errorf("purpose field class %q (%v)", cls, err)
		}
		screenshot(t, ctx, "ui-privacy-validation")
		// The server says the same when the browser's check is taken
		// away (its message, next to the same field).
		if err := chromedp.Do(c,
			chromedp.RemoveAttribute(chromedp.CSS("#p-purpose_text"), "minlength"),
			chromedp.Click(chromedp.CSS("#download"), chromedp.NodeVisible),
		); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(c, chromedp.Poll[bool](`document.getElementById("err-purpose_text").textContent.startsWith("describe the purpose")`)); err != nil {
			t.Fatalf("server message: %v (shown %q)", err, text(t, ctx, "#err-purpose_text"))
		}
	})

	t.Run("masked download", func(t *testing.T) {
		if err := chromedp.Do(c,
			chromedp.Navigate(srv.URL+"/ui/datasets/member_scores"),
			chromedp.WaitVisible(chromedp.CSS("#p-purpose")),
			chromedp.SetValue(chromedp.CSS("#p-from"), "2019-01-01"),
			chromedp.SetValue(chromedp.CSS("#p-to"), "2019-03-31"),
			chromedp.SetValue(chromedp.CSS("#p-purpose"), "member_support"),
			chromedp.SendKeys(chromedp.CSS("#p-purpose_text"), "회원 문의 1234번 응대를 위한 연락처 확인"),
			// Only what the purpose needs: no scores.
			chromedp.Click(chromedp.CSS(`input[name=columns][value=tests]`)),
			chromedp.Click(chromedp.CSS(`input[name=columns][value=score_avg]`)),
			chromedp.Click(chromedp.CSS(`input[name=columns][value=last_test]`)),
		); err != nil {
			t.Fatal(err)
		}
		screenshot(t, ctx, "ui-privacy-form")
		path := download(t, ctx, dl, chromedp.Click(chromedp.CSS("#download"), chromedp.NodeVisible))
		rows := sheetRows(t, path)
		if len(rows) == 0 || strings.Join(rows[0], ",") != "회원번호,이름,이메일,전화번호,지점,등급,가입일" {
			t.Fatalf("header %v", rows)
		}
		// Every row equals the database's, masked by support's rules.
		db, err := sql.Open("sqlite", "file:"+srv.DB+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		q, err := db.Query(`SELECT id, name, email, phone, branch, grade, joined_on FROM members
			WHERE joined_on BETWEEN '2019-01-01' AND '2019-03-31' ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		name, email, phone := mask.MustParse(domain.MaskSpec{Rule: "name"}), mask.MustParse(domain.MaskSpec{Rule: "email"}), mask.MustParse(domain.MaskSpec{Rule: "phone"})
		i := 1
		for ; q.Next(); i++ {
			var id, n, e, p, branch, grade, joined string
			if err := q.Scan(&id, &n, &e, &p, &branch, &grade, &joined); err != nil {
				t.Fatal(err)
			}
			want := []string{id, name.ApplyString(n), email.ApplyString(e), phone.ApplyString(p), branch, grade, joined[:10]}
			if i >= len(rows) || strings.Join(rows[i], "|") != strings.Join(want, "|") {
				t.Fatalf("row %d = %v, want %v", i, rows[min(i, len(rows)-1)], want)
			}
			if rows[i][1] == n || rows[i][2] == e || rows[i][3] == p {
				t.Fatalf("row %d is not masked: %v", i, rows[i])
			}
		}
		if i < 2 || i != len(rows) {
			t.Errorf("%d rows in the file, %d in the database", len(rows)-1, i-1)
		}
	})

	// When the audit trail takes no record, nothing is sent, and the
	// page says why next to the button (the download starts in a hidden
	// frame, where the server's JSON error lands instead of a file).
	t.Run("audit unavailable", func(t *testing.T) {
		trail, err := sql.Open("sqlite", filepath.Join(filepath.Dir(srv.DB), "exportd-audit.db")+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer trail.Close()
		if _, err := trail.Exec(`CREATE TRIGGER refuse BEFORE INSERT ON exportd_audit BEGIN SELECT RAISE(ABORT, 'disk full'); END`); err != nil {
			t.Fatal(err)
		}
		defer trail.Exec(`DROP TRIGGER refuse`)
		if err := chromedp.Do(c,
			chromedp.Navigate(srv.URL+"/ui/datasets/member_scores"),
			chromedp.WaitVisible(chromedp.CSS("#p-purpose")),
			chromedp.SetValue(chromedp.CSS("#p-purpose"), "member_support"),
			chromedp.SendKeys(chromedp.CSS("#p-purpose_text"), "회원 문의 1234번 응대를 위한 연락처 확인"),
			chromedp.Click(chromedp.CSS("#download"), chromedp.NodeVisible),
		); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(c, chromedp.Poll[bool](`(n => !n.hidden && n.textContent.includes("audit trail cannot be written"))(document.getElementById("notice"))`)); err != nil {
			t.Fatalf("no notice of the unavailable trail: %v (shown %q)", err, text(t, ctx, "#notice"))
		}
		if url, err := chromedp.Run(c, chromedp.Evaluate[string](`location.pathname`)); err != nil || url != "/ui/datasets/member_scores" {
			t.Errorf("the page was left for %q (%v)", url, err)
		}
		screenshot(t, ctx, "ui-privacy-audit-unavailable")
	})
}
