package e2e

// Browser tests of the web UI: Debian's Chromium (EXPORTD_CHROMIUM) driven
// by chromedp against the exportd binary serving the demo data (SQLite).
// EXPORTD_SCREENSHOTS=DIR saves the pages as PNG files into DIR (the
// README's are made with EXPORTD_SCREENSHOTS=../docs).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/xuri/excelize/v2"

	_ "modernc.org/sqlite"
)

// uiExtraDataset is added to the demo's datasets: parameters with rules
// to break (the demo's own have none a form can violate), and a row limit
// below its 4,300 members.
const uiExtraDataset = `
  member_lookup:
    title: 회원 찾기
    description: 회원번호 범위와 이름으로 회원을 찾습니다.
    connection: demo
    sql: |
      SELECT id, name, email, branch FROM members
       WHERE id BETWEEN :from_id AND :to_id AND (:name IS NULL OR name = :name)
       ORDER BY id
    params:
      - {name: from_id, type: int, label: 회원번호(부터), min: 1, max: 4300, required: true}
      - {name: to_id, type: int, label: 회원번호(까지), min: 1, max: 4300, default: 4300}
      - {name: name, type: string, label: 이름, max_length: 5}
    columns:
      - {name: id, header: 회원번호, type: int}
      - {name: name, header: 이름, type: string}
      - {name: email, header: 이메일, type: string}
      - {name: branch, header: 지점, type: string}
    filename: 회원찾기
    row_limit: 1000
`

// uiServer is exportd serving the demo data.
type uiServer struct {
	URL    string
	DB     string // the demo database
	Config string // its datasets file
}

// startUIServer prepares the demo data (rows accounts) and serves it with
// `exportd serve`.
func startUIServer(t *testing.T, rows int) *uiServer {
	t.Helper()
	return startUIServerWith(t, rows, "")
}

// startUIServerWith is startUIServer with more datasets (YAML indented as
// uiExtraDataset) and more flags for `exportd serve`.
func startUIServerWith(t *testing.T, rows int, datasets string, flags ...string) *uiServer {
	t.Helper()
	bin := exportdBin(t)
	dir := t.TempDir()
	if out, err := exec.Command(bin, "demo", "--no-serve", "--dir", dir, "--rows", fmt.Sprint(rows)).CombinedOutput(); err != nil {
		t.Fatalf("exportd demo: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "datasets.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The extra dataset goes first under "datasets:" (other blocks may follow).
	before, after, ok := strings.Cut(string(b), "\ndatasets:\n")
	if !ok {
		t.Fatalf("no datasets block in\n%s", b)
	}
	yaml := before + "\ndatasets:" + uiExtraDataset + datasets + after
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	logf, err := os.Create(filepath.Join(dir, "exportd.log"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"serve", "--config", cfg, "--addr", addr,
		"--jobs", "--link-secret", "ui-test-secret-0123456789", "--jobs-storage", "file://" + filepath.Join(dir, "results"), "--jobs-poll", "100ms"}
	cmd := exec.Command(bin, append(args, flags...)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("exportd log:\n%s", tail(string(b), 4000))
		}
	})
	s := &uiServer{URL: "http://" + addr, DB: filepath.Join(dir, "demo.db"), Config: cfg}
	waitHTTP(t, s.URL+"/healthz")
	return s
}

// newBrowser starts a headless Chromium whose downloads go to the
// returned directory.
func newBrowser(t *testing.T) (context.Context, string) {
	t.Helper()
	bin := os.Getenv("EXPORTD_CHROMIUM")
	if bin == "" {
		need(t, "EXPORTD_CHROMIUM is not set (e.g. /usr/bin/chromium)")
	}
	if _, err := os.Stat(bin); err != nil {
		need(t, "chromium: %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", "ko-KR"),
		chromedp.WindowSize(1000, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	dl := t.TempDir()
	yes := true
	if _, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dl, EventsEnabled: &yes,
	}); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return ctx, dl
}

// within returns ctx bounded to d, for one step (the browser lives on).
func within(t *testing.T, ctx context.Context, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(ctx, d)
	t.Cleanup(cancel)
	return c
}

// download runs click and waits for the download it starts; it returns
// the saved file's path.
func download(t *testing.T, ctx context.Context, dir string, click chromedp.Action[chromedp.Void]) string {
	t.Helper()
	ctx = within(t, ctx, time.Minute)
	begin := chromedp.Events(ctx, browser.DownloadWillBegin)
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	if err := chromedp.Do(ctx, click); err != nil {
		t.Fatal(err)
	}
	var name string
	for ev, err := range begin {
		if err != nil {
			t.Fatalf("download did not begin: %v", err)
		}
		name = ev.SuggestedFilename
		break
	}
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("download: %v", err)
		}
		switch ev.State {
		case browser.DownloadProgressStateCompleted:
			return filepath.Join(dir, name)
		case browser.DownloadProgressStateCanceled:
			t.Fatalf("download of %s cancelled", name)
		}
	}
	t.Fatal("no download")
	return ""
}

// screenshot saves the page as name.png into EXPORTD_SCREENSHOTS.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("EXPORTD_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(within(t, ctx, 30*time.Second), chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(within(t, ctx, 10*time.Second), chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// sheetRows opens an XLSX file with excelize and returns its first sheet.
func sheetRows(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	rows, err := f.GetRows(f.GetSheetName(0))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func countMembers(t *testing.T, db, where string, args ...any) int {
	t.Helper()
	c, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var n int
	if err := c.QueryRow("SELECT count(*) FROM members WHERE "+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// selectOnly selects exactly the given options of a <select multiple>.
func selectOnly(sel string, values ...string) chromedp.Action[chromedp.Void] {
	js := fmt.Sprintf(`(() => { const want = %q.split(","); for (const o of document.querySelector(%q).options) o.selected = want.includes(o.value); return true })()`,
		strings.Join(values, ","), sel)
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](js)(ctx, tg)
		return err
	})
}

func TestUIBrowser(t *testing.T) {
	ctx, dl := newBrowser(t)
	const accounts = 300_000
	srv := startUIServer(t, accounts)
	if err := chromedp.Do(within(t, ctx, time.Minute), chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}

	t.Run("datasets", func(t *testing.T) {
		if got := text(t, ctx, `a[href="/ui/datasets/member_scores"] .card-title`); got != "회원별 평균 점수" {
			t.Errorf("first dataset %q", got)
		}
		screenshot(t, ctx, "ui-datasets")
	})

	t.Run("download", func(t *testing.T) {
		c := within(t, ctx, time.Minute)
		if err := chromedp.Do(c,
			chromedp.Click(chromedp.CSS(`a[href="/ui/datasets/member_scores"]`), chromedp.NodeVisible),
			chromedp.WaitVisible(chromedp.CSS("#p-from")),
			chromedp.SetValue(chromedp.CSS("#p-from"), "2019-01-01"),
			chromedp.SetValue(chromedp.CSS("#p-to"), "2019-12-31"),
			selectOnly("#p-grades", "gold", "silver"),
			// member_scores holds personal data: the purpose is asked for.
			chromedp.SetValue(chromedp.CSS("#p-purpose"), "score_review"),
			chromedp.SetValue(chromedp.CSS("#p-purpose_text"), "2019년 가입 회원의 성적 검토"),
		); err != nil {
			t.Fatal(err)
		}
		if got := text(t, ctx, `label[for="p-from"]`); got != "가입일(부터)" {
			t.Errorf("label %q", got)
		}
		screenshot(t, ctx, "ui-form")
		path := download(t, ctx, dl, chromedp.Click(chromedp.CSS("#download"), chromedp.NodeVisible))
		if filepath.Base(path) != "회원점수_2019-01-01_2019-12-31.xlsx" {
			t.Errorf("file name %q", filepath.Base(path))
		}
		rows := sheetRows(t, path)
		want := countMembers(t, srv.DB, "joined_on BETWEEN '2019-01-01' AND '2019-12-31' AND grade IN ('gold', 'silver')")
		if want == 0 || len(rows) != want+1 || rows[0][0] != "회원번호" || rows[0][1] != "이름" {
			t.Errorf("%d rows (want %d + header), header %v", len(rows), want, rows[0])
		}
	})

	t.Run("validation", func(t *testing.T) {
		c := within(t, ctx, time.Minute)
		// In the browser: the HTML constraints, shown next to the field.
		if err := chromedp.Do(c,
			chromedp.Navigate(srv.URL+"/ui/datasets/member_lookup"),
			chromedp.SetValue(chromedp.CSS("#p-from_id"), "0"),
			chromedp.Click(chromedp.CSS("#download"), chromedp.NodeVisible),
			chromedp.WaitVisible(chromedp.CSS("#err-from_id")),
		); err != nil {
			t.Fatal(err)
		}
		if msg := text(t, ctx, "#err-from_id"); msg == "" {
			t.Error("no client-side message")
		}
		// On the server: without the constraint in the page, the server's
		// check names the field and its rule.
		if err := chromedp.Do(c,
			chromedp.Reload(),
			chromedp.WaitVisible(chromedp.CSS("#p-from_id")),
			chromedp.RemoveAttribute(chromedp.CSS("#p-from_id"), "min"),
			chromedp.SetValue(chromedp.CSS("#p-from_id"), "0"),
			chromedp.SetValue(chromedp.CSS("#p-to_id"), "5000"),
			chromedp.RemoveAttribute(chromedp.CSS("#p-to_id"), "max"),
			chromedp.Click(chromedp.CSS("#download"), chromedp.NodeVisible),
			chromedp.WaitVisible(chromedp.CSS("#err-to_id")),
		); err != nil {
			t.Fatal(err)
		}
		if msg := text(t, ctx, "#err-from_id"); msg != "must be at least 1" {
			t.Errorf("from_id message %q", msg)
		}
		if msg := text(t, ctx, "#err-to_id"); msg != "must be at most 4300" {
			t.Errorf("to_id message %q", msg)
		}
		screenshot(t, ctx, "ui-validation")
	})

	t.Run("without JavaScript", func(t *testing.T) {
		c := within(t, ctx, time.Minute)
		if _, err := chromedp.Call(c, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatal(err)
		}
		defer chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false})
		// A bad value: the server shows the form again, the message next
		// to the field.
		if err := chromedp.Do(c,
			chromedp.Navigate(srv.URL+"/ui/datasets/member_lookup"),
			chromedp.WaitVisible(chromedp.CSS("#p-name")),
			chromedp.SetValue(chromedp.CSS("#p-from_id"), "1"),
			chromedp.RemoveAttribute(chromedp.CSS("#p-name"), "maxlength"),
			chromedp.SetValue(chromedp.CSS("#p-name"), "가나다라마바"),
			chromedp.Click(chromedp.CSS("#download"), chromedp.NodeVisible),
			chromedp.WaitVisible(chromedp.CSS("#err-name")),
		); err != nil {
			t.Fatal(err)
		}
		if msg := text(t, ctx, "#err-name"); msg != "longer than 5 characters" {
			t.Errorf("name message %q", msg)
		}
		// The browser itself submitted the form: the page is the server's
		// answer at the form's action (the script would have asked
		// /check and stayed on the form).
		loc, err := chromedp.Run(c, chromedp.Location())
		if u, _ := url.Parse(loc); err != nil || u == nil || u.Path != "/ui/datasets/member_lookup/download" || u.Query().Get("name") != "가나다라마바" {
			t.Errorf("at %q (%v), want the form's action: scripts ran", loc, err)
		}
		// A good one: the form's GET is redirected to the stream.
		// (Values in the form's URL pre-fill it; SetValue needs scripts.)
		var (
			mu        sync.Mutex
			requested []string
		)
		lctx, stop := context.WithCancel(ctx)
		defer stop()
		if err := chromedp.Listen(lctx, func(ev any) {
			if e, ok := ev.(*network.EventRequestWillBeSent); ok {
				mu.Lock()
				requested = append(requested, e.Request.URL)
				mu.Unlock()
			}
		}); err != nil {
			t.Fatal(err)
		}
		path := download(t, ctx, dl, chromedp.Steps(
			chromedp.Navigate(srv.URL+"/ui/datasets/member_lookup?from_id=11&to_id=20"),
			chromedp.Click(chromedp.CSS("#download"), chromedp.NodeVisible),
		))
		rows := sheetRows(t, path)
		if len(rows) != 11 || rows[1][0] != "11" || rows[10][0] != "20" {
			t.Errorf("rows %v", rows)
		}
		// The download went through the form's action and its redirect,
		// never through the script's check.
		mu.Lock()
		defer mu.Unlock()
		submitted := false
		for _, r := range requested {
			u, err := url.Parse(r)
			if err != nil {
				continue
			}
			switch u.Path {
			case "/ui/datasets/member_lookup/download":
				submitted = submitted || u.Query().Get("from_id") == "11"
			case "/ui/datasets/member_lookup/check":
				t.Errorf("the script checked the form: %s", r)
			}
		}
		if !submitted {
			t.Errorf("no request to the form's action among %q", requested)
		}
	})

	t.Run("too large", func(t *testing.T) {
		c := within(t, ctx, 2*time.Minute)
		// 1,500 members and a row limit of 1,000: the check counts them
		// (SQLite has no estimate) and the page offers the job.
		if err := chromedp.Do(c,
			chromedp.Navigate(srv.URL+"/ui/datasets/member_lookup?from_id=1&to_id=1500"),
			chromedp.Click(chromedp.CSS("#download"), chromedp.NodeVisible),
			chromedp.WaitVisible(chromedp.CSS("#notice")),
		); err != nil {
			t.Fatal(err)
		}
		if msg := text(t, ctx, "#notice"); !strings.Contains(msg, "백그라운드에서 준비하세요") || !strings.Contains(msg, "more than 1000 rows") {
			t.Errorf("notice %q", msg)
		}
		state, err := chromedp.Run(c, chromedp.Evaluate[string](
			`location.pathname + "|" + document.getElementById("background").className + "|" + document.activeElement.id`))
		if err != nil || state != "/ui/datasets/member_lookup|suggested|background" {
			t.Errorf("page|background class|focus = %q (%v), want the form with the background button suggested and focused", state, err)
		}
		// The job it offers has every row.
		if err := chromedp.Do(c,
			chromedp.Click(chromedp.CSS("#background"), chromedp.NodeVisible),
			chromedp.WaitVisible(chromedp.CSS("#job-download")),
		); err != nil {
			t.Fatalf("job: %v (status %q)", err, text(t, ctx, "#job-status"))
		}
		os.Remove(filepath.Join(dl, "회원찾기.xlsx")) // the download without JavaScript had the name
		rows := sheetRows(t, download(t, ctx, dl, chromedp.Click(chromedp.CSS("#job-download"), chromedp.NodeVisible)))
		if want := countMembers(t, srv.DB, "id BETWEEN 1 AND 1500"); want <= 1000 || len(rows) != want+1 || rows[1][0] != "1" {
			t.Errorf("job's file: %d rows (want %d + header)", len(rows), want)
		}
	})

	t.Run("background job", func(t *testing.T) {
		c := within(t, ctx, 2*time.Minute)
		if err := chromedp.Do(c,
			chromedp.Navigate(srv.URL+"/ui/datasets/accounts"),
			chromedp.WaitVisible(chromedp.CSS("#background")),
			chromedp.Click(chromedp.CSS(`input[name=format][value=xlsx]`)),
			chromedp.Click(chromedp.CSS("#background"), chromedp.NodeVisible),
			chromedp.WaitVisible(chromedp.CSS("#job-bar")),
		); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(c, chromedp.WaitVisible(chromedp.CSS("#job-download"))); err != nil {
			t.Fatalf("job did not finish: %v (status %q)", err, text(t, ctx, "#job-status"))
		}
		pct, err := chromedp.Run(c, chromedp.Evaluate[float64](`document.getElementById("job-bar").value`))
		if err != nil || pct != 100 {
			t.Errorf("progress bar at %v (%v)", pct, err)
		}
		status := text(t, ctx, "#job-status")
		if !strings.Contains(status, "300,000") || !strings.Contains(status, "100%") {
			t.Errorf("status %q", status)
		}
		screenshot(t, ctx, "ui-done")
		path := download(t, ctx, dl, chromedp.Click(chromedp.CSS("#job-download"), chromedp.NodeVisible))
		// The demo's accounts are the standard dataset: xlsxcheck (built
		// without the race detector) checks every row's values.
		if out, err := exec.Command(buildTool(t, "xlsxcheck", "./e2e/xlsxcheck"), "-rows", fmt.Sprint(accounts), path).CombinedOutput(); err != nil {
			t.Errorf("xlsxcheck: %v: %s", err, out)
		}
		// My exports lists it, with its link.
		if err := chromedp.Do(c,
			chromedp.Navigate(srv.URL+"/ui/jobs"),
			chromedp.WaitVisible(chromedp.CSS("#jobs-table tbody tr a.button")),
		); err != nil {
			t.Fatal(err)
		}
		screenshot(t, ctx, "ui-jobs")
	})

	t.Run("phone", func(t *testing.T) {
		c := within(t, ctx, time.Minute)
		if err := chromedp.Do(c,
			chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
			chromedp.Navigate(srv.URL+"/ui/datasets/member_scores"),
			chromedp.WaitVisible(chromedp.CSS("#download")),
		); err != nil {
			t.Fatal(err)
		}
		// Nothing is wider than the screen.
		w, err := chromedp.Run(c, chromedp.Evaluate[float64](`document.documentElement.scrollWidth`))
		if err != nil || w > 390 {
			t.Errorf("page is %v px wide on a 390 px screen (%v)", w, err)
		}
		screenshot(t, ctx, "ui-phone")
		if err := chromedp.Do(c, chromedp.EmulateReset()); err != nil && !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	})
}

// uiPacedDataset is added to the e2e datasets: 2,000 rows, each 2 ms
// apart, which the planner counts exactly (generate_series with constant
// bounds), so a job runs for seconds with a known total.
const uiPacedDataset = `
  paced:
    title: 천천히
    sql: SELECT n, pg_sleep(0.002)::text AS s FROM generate_series(1, 2000) AS n
    columns: [{name: n, type: int}, {name: s, type: string}]
`

// On PostgreSQL the source estimates the rows, so the progress bar shows
// a percentage and the time left.
func TestUIJobProgressPostgres(t *testing.T) {
	ctx, dl := newBrowser(t)
	pg := pgURL(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "datasets.yaml")
	yaml := strings.Replace(datasetsYAML, "${EXPORTD_E2E_PG}", pg, 1) + uiPacedDataset
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startNode(t, "exportd", cfg, "--jobs-storage", "file://"+filepath.Join(dir, "results"), "--jobs-poll", "100ms")

	t.Run("accounts", func(t *testing.T) {
		const rows = 500_000
		c := within(t, ctx, 3*time.Minute)
		if err := chromedp.Do(c,
			chromedp.Navigate(fmt.Sprintf("%s/ui/datasets/accounts?rows=%d", e.URL, rows)),
			chromedp.Click(chromedp.CSS("#background"), chromedp.NodeVisible),
		); err != nil {
			t.Fatal(err)
		}
		// A picture while it runs (the paced job below asserts the
		// running state).
		status, _ := chromedp.Run(c, chromedp.Poll[string](
			`(s => s.includes("남은 시간") || !document.getElementById("job-download").hidden ? s : "")(document.getElementById("job-status").textContent)`,
			chromedp.WithPollingInterval(20*time.Millisecond)))
		if strings.Contains(status, "남은 시간") {
			t.Logf("running: %s", status)
			screenshot(t, ctx, "ui-progress")
		}
		if err := chromedp.Do(c, chromedp.WaitVisible(chromedp.CSS("#job-download"))); err != nil {
			t.Fatalf("job did not finish: %v (status %q)", err, text(t, ctx, "#job-status"))
		}
		status = text(t, ctx, "#job-status")
		if !strings.HasPrefix(status, "완료 · 500,000 / ") || !strings.Contains(status, "행 · 100%") {
			t.Errorf("status %q (want the estimated total and 100%%)", status)
		}
		path := download(t, ctx, dl, chromedp.Click(chromedp.CSS("#job-download"), chromedp.NodeVisible))
		if out, err := exec.Command(buildTool(t, "xlsxcheck", "./e2e/xlsxcheck"), "-rows", fmt.Sprint(rows), path).CombinedOutput(); err != nil {
			t.Errorf("xlsxcheck: %v: %s", err, out)
		}
	})

	// The paced job lasts seconds and its progress is saved and sent
	// several times a second, so the page shows it running: every state
	// the page shows is recorded (a MutationObserver, not a poll that
	// could miss one), and one of them has a percentage below 100 and the
	// time left.
	t.Run("running", func(t *testing.T) {
		c := within(t, ctx, 2*time.Minute)
		if err := chromedp.Do(c,
			chromedp.Navigate(e.URL+"/ui/datasets/paced"),
			chromedp.WaitVisible(chromedp.CSS("#background")),
		); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(c, chromedp.Evaluate[bool](`(() => {
			window.seen = [];
			const bar = document.getElementById("job-bar"), status = document.getElementById("job-status");
			new MutationObserver(() => window.seen.push(bar.value + "|" + status.textContent))
				.observe(document.getElementById("job"), {subtree: true, childList: true, characterData: true});
			return true;
		})()`)); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(c,
			chromedp.Click(chromedp.CSS("#background"), chromedp.NodeVisible),
			chromedp.WaitVisible(chromedp.CSS("#job-download")),
		); err != nil {
			t.Fatalf("job did not finish: %v (status %q)", err, text(t, ctx, "#job-status"))
		}
		seen, err := chromedp.Run(c, chromedp.Evaluate[[]string](`window.seen`))
		if err != nil {
			t.Fatal(err)
		}
		running := regexp.MustCompile(`^([0-9.]+)\|진행 중 · ([0-9,]+) / 2,000행 · ([0-9]+)%(?: · [^·]+)? · 남은 시간 약 [0-9]+(?:초|분 [0-9]+초)$`)
		mid := ""
		for _, s := range seen {
			m := running.FindStringSubmatch(s)
			if m == nil {
				continue
			}
			bar, _ := strconv.ParseFloat(m[1], 64)
			pct, _ := strconv.Atoi(m[3])
			if pct >= 1 && pct <= 99 && bar >= float64(pct) && bar < 100 {
				mid = s
				break
			}
		}
		if mid == "" {
			t.Errorf("no running state with a percentage below 100 and the time left among %q", seen)
		} else {
			t.Logf("running: %s (%d states seen)", mid, len(seen))
		}
		if len(seen) == 0 || !strings.HasPrefix(seen[len(seen)-1], "100|완료 · 2,000 / 2,000행 · 100%") {
			t.Errorf("states seen %q, want the last one done at 100%%", seen)
		}
		rows := sheetRows(t, download(t, ctx, dl, chromedp.Click(chromedp.CSS("#job-download"), chromedp.NodeVisible)))
		if len(rows) != 2001 || rows[2000][0] != "2000" {
			t.Errorf("%d rows", len(rows))
		}
	})
}
