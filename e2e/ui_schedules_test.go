package e2e

// The scheduled exports page (/ui/schedules) in Chromium: a manager whose
// branch is the schedule owner's runs a schedule now, sees the page say
// so, waits for the row to show the run done and its webhook delivered;
// the webhook receiver got the signed payload whose link is the row's;
// the row's link downloads the file, whose values are the database's. A
// manager of another branch sees the schedule but no button, no link, and
// is refused a run; a principal without the dataset's roles sees nothing.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// uiScheduleDataset is added to the demo for this test: the members of a
// branch, which a manager may export for its own branch only, with a
// schedule for the branch 서울 본점 delivered to a webhook (%s: its URL).
// Its cron never ticks during the test (07:00 on the 1st of January).
const uiScheduleDataset = `
  branch_members:
    title: 지점 회원 목록
    connection: demo
    sql: |
      SELECT id, name, branch, grade, joined_on FROM members WHERE branch = :branch ORDER BY id
    params:
      - {name: branch, type: string, label: 지점, required: true}
    columns:
      - {name: id, header: 회원번호, type: int}
      - {name: name, header: 이름, type: string}
      - {name: branch, header: 지점, type: string}
      - {name: grade, header: 등급, type: string}
      - {name: joined_on, header: 가입일, type: date, format: yyyy-mm-dd}
    roles: [manager, admin]
    pin:
      manager: {branch: {attr: branch}}
    filename: 지점회원
    schedules:
      - name: yearly
        cron: "0 7 1 1 *"
        format: csv
        params: {branch: 서울 본점}
        owner: {name: kim, roles: [manager], attrs: {branch: 서울 본점}}
        webhook: [%q]
`

const (
	scheduleID       = "branch_members/yearly"
	scheduleBranch   = "서울 본점"
	webhookSecret    = "webhook-secret-of-the-ui-test-0123"
	webhookToken     = "hook-token-7f3a"
	scheduleRowSel   = `#schedules-table tr[data-schedule="` + scheduleID + `"]`
	scheduleRunPath  = "/ui/schedules/" + scheduleID + "/run"
	scheduleNoneText = "볼 수 있는 정기 내보내기가 없습니다."
)

// hookRequest is a request the webhook receiver got.
type hookRequest struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// scheduleRow is the schedule's row as the browser shows it.
type scheduleRow struct {
	Found      bool     `json:"found"`
	Cells      []string `json:"cells"`
	StateClass string   `json:"stateClass"`
	Deliveries []string `json:"deliveries"` // "class|text" of each
	Link       string   `json:"link"`       // the 내려받기 link's href
	LinkText   string   `json:"linkText"`
	Buttons    []string `json:"buttons"` // the text of each button
	Action     string   `json:"action"`  // the run form's action
	Empty      string   `json:"empty"`   // the page's "nothing to see" line
}

// The columns of the schedules table.
const (
	schedColData = iota
	schedColCron
	schedColTo
	schedColNext
	schedColLast
	schedColState
	schedColRows
	schedColDeliveries
	schedColActions
	schedNumCols
)

const readScheduleRowJS = `(() => {
	const empty = document.querySelector("p.empty");
	const tr = document.querySelector(` + "`" + scheduleRowSel + "`" + `);
	if (!tr) return {found: false, empty: empty ? empty.textContent.trim() : ""};
	const tds = Array.from(tr.children), state = tds[5], last = tds[tds.length - 1];
	const a = last.querySelector("a"), form = last.querySelector("form");
	return {found: true, cells: tds.map(td => td.textContent.trim().replace(/\s+/g, " ")),
		stateClass: state.className,
		deliveries: Array.from(tds[7].querySelectorAll("span"), s => s.className + "|" + s.textContent.trim()),
		link: a ? a.getAttribute("href") : "", linkText: a ? a.textContent.trim() : "",
		buttons: Array.from(last.querySelectorAll("button"), b => b.textContent.trim()),
		action: form ? form.getAttribute("action") : "", empty: ""};
})()`

// readScheduleRow opens (or reloads) the schedules page and returns the
// schedule's row.
func readScheduleRow(t *testing.T, ctx context.Context, base string) scheduleRow {
	t.Helper()
	c := within(t, ctx, 30*time.Second)
	if err := chromedp.Do(c,
		chromedp.Navigate(base+"/ui/schedules"),
		chromedp.WaitVisible(chromedp.CSS("h1")),
	); err != nil {
		t.Fatalf("schedules page: %v", err)
	}
	row, err := chromedp.Run(c, chromedp.Evaluate[scheduleRow](readScheduleRowJS))
	if err != nil {
		t.Fatalf("read the schedule's row: %v", err)
	}
	return row
}

// asPrincipal makes every request of the tab ctx carry token.
func asPrincipal(t *testing.T, ctx context.Context, token string) {
	t.Helper()
	c := within(t, ctx, 10*time.Second)
	if _, err := chromedp.Call(c, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(c, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Authorization": "Bearer " + token}}); err != nil {
		t.Fatal(err)
	}
}

// createToken makes a token of srv's datasets file.
func createToken(t *testing.T, srv *uiServer, name string, roles string, attrs ...string) string {
	t.Helper()
	args := []string{"token", "create", "--config", srv.Config, "--name", name, "--roles", roles}
	for _, a := range attrs {
		args = append(args, "--attr", a)
	}
	out, err := exec.Command(exportdBin(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("token create %s: %v\n%s", name, err, out)
	}
	tok := regexp.MustCompile(`exd_[A-Za-z0-9_-]+`).FindString(string(out))
	if tok == "" {
		t.Fatalf("no token in %s", out)
	}
	return tok
}

// postRun posts the run form from the page of tab ctx, as a page altered
// to show the button would; it returns the status and the page's error.
func postRun(t *testing.T, ctx context.Context) (int, string) {
	t.Helper()
	js := `fetch("` + scheduleRunPath + `", {method: "POST", redirect: "manual", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: ""})
		.then(r => r.text().then(b => {
			const e = new DOMParser().parseFromString(b, "text/html").querySelector("p.error");
			return {status: r.status, error: e ? e.textContent.trim() : ""};
		}))`
	res, err := chromedp.Run(within(t, ctx, 30*time.Second), chromedp.Evaluate[struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	}](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("POST %s: %v", scheduleRunPath, err)
	}
	return res.Status, res.Error
}

// lastJobID returns the id of the schedule's latest job, as the admin
// (the anonymous principal of this machine) reads it from the API.
func lastJobID(t *testing.T, base string) string {
	t.Helper()
	status, b := jobAPI{t: t, base: base}.do("GET", "/v1/schedules/"+scheduleID, nil)
	var st struct {
		LastJob *apiJob `json:"last_job"`
	}
	if err := json.Unmarshal(b, &st); status != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/schedules/%s: %d %s", scheduleID, status, b)
	}
	if st.LastJob == nil {
		return ""
	}
	return st.LastJob.ID
}

// branchMembers returns the rows of branch_members for branch, from the
// database, as the CSV file writes them.
func branchMembers(t *testing.T, db, branch string) [][]string {
	t.Helper()
	c, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// joined_on as stored (a DATE column would be read as a time).
	rs, err := c.Query(`SELECT id, name, branch, grade, CAST(joined_on AS TEXT) FROM members WHERE branch = ? ORDER BY id`, branch)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out [][]string
	for rs.Next() {
		var id int64
		var name, br, grade, joined string
		if err := rs.Scan(&id, &name, &br, &grade, &joined); err != nil {
			t.Fatal(err)
		}
		out = append(out, []string{fmt.Sprint(id), name, br, grade, joined})
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestUISchedules(t *testing.T) {
	ctx, dl := newBrowser(t)

	// The webhook receiver records what it gets.
	var (
		hookMu   sync.Mutex
		received []hookRequest
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		received = append(received, hookRequest{r.Method, r.URL.Path, r.URL.Query(), r.Header.Clone(), b})
		hookMu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	hooks := func() []hookRequest {
		hookMu.Lock()
		defer hookMu.Unlock()
		return append([]hookRequest(nil), received...)
	}
	hookURL := hook.URL + "/hooks/exportd?token=" + webhookToken

	// The public address recipients reach exportd at: a proxy in front of
	// it (as nginx would be), whose upstream is known once it runs.
	var upstream atomic.Pointer[url.URL]
	front := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(upstream.Load())
	}})
	t.Cleanup(front.Close)

	srv := startUIServerWith(t, 100, fmt.Sprintf(uiScheduleDataset, hookURL),
		"--public-url", front.URL, "--webhook-secret", webhookSecret)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	upstream.Store(u)

	kim := createToken(t, srv, "kim", "manager", "branch="+scheduleBranch)
	lee := createToken(t, srv, "lee", "manager", "branch=부산 지점")
	guest := createToken(t, srv, "guest", "viewer")

	want := branchMembers(t, srv.DB, scheduleBranch)
	if len(want) < 100 {
		t.Fatalf("only %d members of %s in the demo", len(want), scheduleBranch)
	}

	var (
		jobID string      // the run started from the page
		row   scheduleRow // its row once done
	)

	// kim, a manager of the owner's branch, runs the schedule now.
	t.Run("run now", func(t *testing.T) {
		asPrincipal(t, ctx, kim)
		before := readScheduleRow(t, ctx, srv.URL)
		if !before.Found {
			t.Fatalf("no row %s on kim's page (it says %q)", scheduleID, before.Empty)
		}
		if len(before.Cells) != schedNumCols {
			t.Fatalf("%d cells %q, want %d", len(before.Cells), before.Cells, schedNumCols)
		}
		if c := before.Cells[schedColData]; !strings.HasPrefix(c, "지점 회원 목록") || !strings.Contains(c, "yearly") || !strings.Contains(c, "schedule:kim") {
			t.Errorf("dataset cell %q, want the title, the name and the owner", c)
		}
		if c := before.Cells[schedColCron]; !strings.HasPrefix(c, "0 7 1 1 *") {
			t.Errorf("schedule cell %q", c)
		}
		// The webhook is shown by its host: its query holds a token.
		if c := before.Cells[schedColTo]; c != "웹훅 "+hook.URL || strings.Contains(c, webhookToken) {
			t.Errorf("recipients cell %q, want the webhook's host without its token", c)
		}
		if before.Cells[schedColLast] != "-" || before.Cells[schedColState] != "-" || before.Link != "" || len(before.Deliveries) != 0 {
			t.Errorf("before any run: last %q, state %q, link %q, deliveries %q; want none", before.Cells[schedColLast], before.Cells[schedColState], before.Link, before.Deliveries)
		}
		if len(before.Buttons) != 1 || before.Buttons[0] != "지금 실행" || before.Action != scheduleRunPath {
			t.Fatalf("buttons %q (form action %q), want 지금 실행 posting to %s", before.Buttons, before.Action, scheduleRunPath)
		}
		screenshot(t, ctx, "ui-schedules")

		c := within(t, ctx, time.Minute)
		if err := chromedp.Do(c,
			chromedp.Click(chromedp.CSS(scheduleRowSel+` button[type=submit]`), chromedp.NodeVisible),
			chromedp.WaitVisible(chromedp.CSS(`p.notice[role=status]`)),
		); err != nil {
			t.Fatal(err)
		}
		msg := text(t, ctx, `p.notice[role=status]`)
		m := regexp.MustCompile(`^실행을 시작했습니다 \(작업 ([^)]+)\)\.$`).FindStringSubmatch(msg)
		if m == nil {
			t.Fatalf("status message %q, want 실행을 시작했습니다 (작업 ID).", msg)
		}
		jobID = m[1]
		if loc, _ := chromedp.Run(c, chromedp.Location()); !strings.HasSuffix(loc, "/ui/schedules?ran="+jobID) {
			t.Errorf("after the run, at %q", loc)
		}
		if id := lastJobID(t, srv.URL); id != jobID {
			t.Errorf("the API's last job is %q, the page's %q", id, jobID)
		}

		// Reload until the row shows the run done (its deliveries are
		// made before the job is: then they are final).
		deadline := time.Now().Add(90 * time.Second)
		for {
			row = readScheduleRow(t, ctx, srv.URL)
			if !row.Found {
				t.Fatal("the row is gone")
			}
			if row.StateClass == "state-failed" || row.StateClass == "state-cancelled" {
				t.Fatalf("the run ended %s: %q", row.StateClass, row.Cells[schedColState])
			}
			if row.StateClass == "state-succeeded" && len(row.Deliveries) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the row never showed the run done and delivered: %+v", row)
			}
			time.Sleep(500 * time.Millisecond)
		}
		screenshot(t, ctx, "ui-schedules-done")
		if row.Cells[schedColState] != "완료" {
			t.Errorf("state %q, want 완료", row.Cells[schedColState])
		}
		if !strings.HasSuffix(row.Cells[schedColLast], "(수동)") {
			t.Errorf("last run %q, want a manual run", row.Cells[schedColLast])
		}
		if want := grouped(int64(len(want))); row.Cells[schedColRows] != want {
			t.Errorf("rows %q, want %s", row.Cells[schedColRows], want)
		}
		// The webhook is named by its scheme and host, without the token.
		wantDelivery := "ok|웹훅 " + hook.URL + " ✓"
		if len(row.Deliveries) != 1 || row.Deliveries[0] != wantDelivery {
			t.Errorf("deliveries %q, want [%q]", row.Deliveries, wantDelivery)
		}
		if row.LinkText != "내려받기" || !strings.HasPrefix(row.Link, "/v1/jobs/"+jobID+"/download?") {
			t.Errorf("link %q → %q, want 내려받기 → /v1/jobs/%s/download?…", row.LinkText, row.Link, jobID)
		}
	})
	if jobID == "" || row.Link == "" {
		t.Fatal("no run to check")
	}

	// The webhook got one signed POST whose payload tells the run and
	// carries the row's link at the public address.
	var payload struct {
		Event    string              `json:"event"`
		JobID    string              `json:"job_id"`
		Schedule string              `json:"schedule"`
		Dataset  string              `json:"dataset"`
		Manual   bool                `json:"manual"`
		Params   map[string][]string `json:"params"`
		Format   string              `json:"format"`
		FileName string              `json:"file_name"`
		Rows     int64               `json:"rows"`
		Size     int64               `json:"size"`
		SHA256   string              `json:"sha256"`
		Link     string              `json:"link"`
	}
	t.Run("webhook", func(t *testing.T) {
		got := hooks()
		if len(got) != 1 {
			t.Fatalf("the webhook got %d requests, want 1", len(got))
		}
		r := got[0]
		if r.Method != http.MethodPost || r.Path != "/hooks/exportd" || r.Query.Get("token") != webhookToken {
			t.Errorf("webhook request %s %s?%s", r.Method, r.Path, r.Query.Encode())
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if ev := r.Header.Get("X-Exportd-Event"); ev != "export.delivered" {
			t.Errorf("X-Exportd-Event %q", ev)
		}
		ts := r.Header.Get("X-Exportd-Timestamp")
		mac := hmac.New(sha256.New, []byte(webhookSecret))
		mac.Write([]byte(ts + "."))
		mac.Write(r.Body)
		if sig := r.Header.Get("X-Exportd-Signature"); ts == "" || sig != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			t.Errorf("signature %q over timestamp %q does not match the body under the webhook secret", sig, ts)
		}
		if err := json.Unmarshal(r.Body, &payload); err != nil {
			t.Fatalf("webhook body: %v\n%s", err, r.Body)
		}
		if payload.Event != "export.delivered" || payload.JobID != jobID || payload.Schedule != scheduleID ||
			payload.Dataset != "branch_members" || !payload.Manual || payload.Format != "csv" {
			t.Errorf("payload %s, want the manual run %s of %s as CSV", r.Body, jobID, scheduleID)
		}
		if b := payload.Params["branch"]; len(b) != 1 || b[0] != scheduleBranch {
			t.Errorf("payload params %v, want branch %s", payload.Params, scheduleBranch)
		}
		if payload.Rows != int64(len(want)) {
			t.Errorf("payload rows %d, want %d", payload.Rows, len(want))
		}
		if payload.Link != front.URL+row.Link {
			t.Errorf("payload link %q, want the public address and the row's link %q", payload.Link, front.URL+row.Link)
		}
	})

	// The row's link downloads the file: the database's rows, the bytes
	// the webhook's link gives.
	t.Run("download", func(t *testing.T) {
		path := download(t, ctx, dl, chromedp.Click(chromedp.CSS(scheduleRowSel+` a.button`), chromedp.NodeVisible))
		file, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(file)
		if payload.SHA256 != "" && (hex.EncodeToString(sum[:]) != payload.SHA256 || int64(len(file)) != payload.Size) {
			t.Errorf("downloaded %d bytes, sha256 %x; the webhook said %d bytes, %s", len(file), sum, payload.Size, payload.SHA256)
		}
		if payload.FileName != "" && !strings.HasSuffix(path, "/"+payload.FileName) {
			t.Errorf("saved as %s, the webhook's file name is %q", path, payload.FileName)
		}
		recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(file, []byte("\uFEFF")))).ReadAll()
		if err != nil {
			t.Fatalf("the file is not CSV: %v\n%s", err, tail(string(file), 500))
		}
		if len(recs) == 0 || strings.Join(recs[0], ",") != "회원번호,이름,지점,등급,가입일" {
			t.Fatalf("header %q", recs[:min(len(recs), 1)])
		}
		recs = recs[1:]
		if len(recs) != len(want) {
			t.Errorf("%d rows in the file, %d in the database", len(recs), len(want))
		}
		bad := 0
		for i := range min(len(recs), len(want)) {
			if strings.Join(recs[i], "\x00") != strings.Join(want[i], "\x00") {
				if bad++; bad <= 5 {
					t.Errorf("row %d: file %q, database %q", i+1, recs[i], want[i])
				}
			}
		}
		// The link the webhook sent reaches the same file through the
		// public address, without credentials: it is signed.
		if payload.Link == "" {
			return
		}
		resp, err := http.Get(payload.Link)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(b, file) {
			t.Errorf("the webhook's link: %d, %d bytes (%v); the page's link gave %d bytes", resp.StatusCode, len(b), err, len(file))
		}
	})

	// lee, a manager pinned to another branch, sees the schedule (the
	// dataset's role) but may not run it or download its file.
	t.Run("another branch", func(t *testing.T) {
		tab, cancel := chromedp.NewContext(ctx)
		defer cancel()
		asPrincipal(t, tab, lee)
		r := readScheduleRow(t, tab, srv.URL)
		if !r.Found {
			t.Fatalf("no row %s on lee's page (it says %q)", scheduleID, r.Empty)
		}
		if len(r.Buttons) != 0 || r.Action != "" {
			t.Errorf("lee's row has buttons %q (form %q), want none", r.Buttons, r.Action)
		}
		if r.Link != "" {
			t.Errorf("lee's row links to the file: %q", r.Link)
		}
		if r.StateClass != "state-succeeded" {
			t.Errorf("lee's row state class %q, want the last run's state", r.StateClass)
		}
		status, msg := postRun(t, tab)
		if status != http.StatusForbidden || !strings.HasPrefix(msg, "실행할 수 없습니다") {
			t.Errorf("lee's run: %d %q, want 403 실행할 수 없습니다…", status, msg)
		}
		if id := lastJobID(t, srv.URL); id != jobID {
			t.Errorf("after lee's refused run the last job is %q, want still %q", id, jobID)
		}
	})

	// guest has none of the dataset's roles: no schedule, and a run of it
	// is not found.
	t.Run("no role", func(t *testing.T) {
		tab, cancel := chromedp.NewContext(ctx)
		defer cancel()
		asPrincipal(t, tab, guest)
		r := readScheduleRow(t, tab, srv.URL)
		if r.Found || r.Empty != scheduleNoneText {
			t.Errorf("guest's page: row found %v, says %q; want no row and %q", r.Found, r.Empty, scheduleNoneText)
		}
		status, msg := postRun(t, tab)
		if status != http.StatusNotFound || !strings.HasPrefix(msg, "실행할 수 없습니다") {
			t.Errorf("guest's run: %d %q, want 404 실행할 수 없습니다…", status, msg)
		}
		if id := lastJobID(t, srv.URL); id != jobID {
			t.Errorf("after guest's refused run the last job is %q, want still %q", id, jobID)
		}
	})

	// No delivery came of the refused runs.
	if n := len(hooks()); n != 1 {
		t.Errorf("the webhook got %d requests in all, want 1", n)
	}
}
