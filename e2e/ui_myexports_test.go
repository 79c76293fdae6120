package e2e

// The "My exports" page in Chromium: for each of the user's
// jobs, its dataset's title, its state, its rows, its size as the page
// writes it, when it was requested and when it expires, and for a
// finished one a link that downloads the result; a result past its time
// shows "expired" and no link; another principal's jobs are not listed.
// Every value is compared with the job API's.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// uiMyExportsDatasets are added to the demo for this test: a query that
// fails at run time (SQLite's integer overflow, at the 50th account) and
// one that runs for minutes (it is cancelled).
const uiMyExportsDatasets = `
  broken:
    title: 깨지는 쿼리
    connection: demo
    sql: SELECT id, CASE WHEN id < 50 THEN id ELSE abs(-9223372036854775807 - 1) END AS v FROM accounts ORDER BY id
    columns: [{name: id, type: int}, {name: v, type: int}]
  endless:
    title: 끝없는 목록
    connection: demo
    sql: WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000000000) SELECT n FROM c
    columns: [{name: n, type: int}]
`

// uiTimezone is the browser's time zone: the page writes times in it.
const uiTimezone = "Asia/Seoul"

// apiJob is a job as GET /v1/jobs/{id} returns it.
type apiJob struct {
	ID          string     `json:"id"`
	State       string     `json:"state"`
	Dataset     string     `json:"dataset"`
	Format      string     `json:"format"`
	Rows        int64      `json:"rows"`
	Bytes       int64      `json:"bytes"`
	Size        int64      `json:"size"`
	SHA256      string     `json:"sha256"`
	FileName    string     `json:"file_name"`
	DownloadURL string     `json:"download_url"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
	Error       string     `json:"error"`
}

// jobAPI calls a server's job API as one principal: the anonymous one of
// this machine (token ""), or a token's.
type jobAPI struct {
	t     *testing.T
	base  string
	token string
}

// do sends a request and returns the status and body.
func (a jobAPI) do(method, path string, body any) (int, []byte) {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// submit starts a job and returns its id.
func (a jobAPI) submit(dataset, format string) string {
	a.t.Helper()
	status, b := a.do("POST", "/v1/datasets/"+dataset+"/jobs", map[string]any{"format": format})
	var j apiJob
	if err := json.Unmarshal(b, &j); status != http.StatusAccepted || err != nil || j.ID == "" {
		a.t.Fatalf("submit %s: %d %s", dataset, status, b)
	}
	return j.ID
}

func (a jobAPI) get(id string) apiJob {
	a.t.Helper()
	status, b := a.do("GET", "/v1/jobs/"+id, nil)
	var j apiJob
	if err := json.Unmarshal(b, &j); status != http.StatusOK || err != nil {
		a.t.Fatalf("job %s: %d %s", id, status, b)
	}
	return j
}

// list returns the ids GET /v1/jobs lists.
func (a jobAPI) list() []string {
	a.t.Helper()
	status, b := a.do("GET", "/v1/jobs", nil)
	var l struct{ Jobs []apiJob }
	if err := json.Unmarshal(b, &l); status != http.StatusOK || err != nil {
		a.t.Fatalf("jobs: %d %s", status, b)
	}
	var ids []string
	for _, j := range l.Jobs {
		ids = append(ids, j.ID)
	}
	return ids
}

// wait polls job id until ok, for at most two minutes.
func (a jobAPI) wait(id, what string, ok func(apiJob) bool) apiJob {
	a.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		j := a.get(id)
		if ok(j) {
			return j
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("job %s (%s) is not %s: %+v", id, j.Dataset, what, j)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cancel cancels job id as the page's user would: a same-origin DELETE.
func (a jobAPI) cancel(id string) {
	a.t.Helper()
	c := &http.Client{}
	req, _ := http.NewRequest("DELETE", a.base+"/v1/jobs/"+id, nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("cancel %s: %d %s", id, resp.StatusCode, b)
	}
}

// pageRow is one row of the My exports table as the browser shows it.
type pageRow struct {
	Job      string   `json:"job"`
	Cells    []string `json:"cells"` // text of each cell
	DataHref string   `json:"dataHref"`
	Badge    string   `json:"badge"` // class of the state's badge
	Links    int      `json:"links"` // links in the last cell
	Href     string   `json:"href"`  // the download link's
	Title    string   `json:"title"` // and its title
}

// The columns of the table.
const (
	colDataset = iota
	colFormat
	colState
	colRows
	colSize
	colCreated
	colExpires
	colLink
	numCols
)

// readJobsPage opens base's My exports page and returns its rows once the
// list has loaded with none queued or running (the page reloads it every
// 2 s while a job is active; the tests' jobs are final by then).
func readJobsPage(t *testing.T, ctx context.Context, base string) []pageRow {
	t.Helper()
	c := within(t, ctx, 2*time.Minute)
	if err := chromedp.Do(c,
		chromedp.Navigate(base+"/ui/jobs"),
		chromedp.WaitVisible(chromedp.CSS("#jobs-table")),
	); err != nil {
		t.Fatalf("My exports: %v", err)
	}
	const js = `(() => {
		if (document.querySelector("#jobs-table .state-queued, #jobs-table .state-running")) return null;
		return Array.from(document.querySelectorAll("#jobs-table tbody tr"), tr => {
			const tds = Array.from(tr.children), last = tds[tds.length - 1];
			const a = last.querySelector("a"), ds = tds[0].querySelector("a"), badge = tr.querySelector(".state");
			return {job: tr.dataset.job, cells: tds.map(td => td.textContent.trim()),
				dataHref: ds ? ds.getAttribute("href") : "", badge: badge ? badge.className : "",
				links: last.querySelectorAll("a").length, href: a ? a.getAttribute("href") : "", title: a ? a.title : ""};
		});
	})()`
	rows, err := chromedp.Run(c, chromedp.Poll[[]pageRow](js, chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		shown, _ := chromedp.Run(within(t, ctx, 10*time.Second), chromedp.Evaluate[string](`document.getElementById("jobs").textContent`))
		t.Fatalf("My exports still shows an active job: %v; it shows %q", err, shown)
	}
	return rows
}

// pageTime is how the page writes a time (app.js's when(): ko-KR, month,
// day, 24-hour time) in uiTimezone.
func pageTime(t *testing.T, tm time.Time) string {
	t.Helper()
	loc, err := time.LoadLocation(uiTimezone)
	if err != nil {
		t.Fatal(err)
	}
	tm = tm.In(loc)
	return fmt.Sprintf("%d. %d. %02d:%02d", tm.Month(), tm.Day(), tm.Hour(), tm.Minute())
}

// checkShownSize reports whether shown, a size as the page writes it
// ("812 B", "4.2 KB", "37 MB": binary units, one decimal below 10), is
// size bytes.
func checkShownSize(shown string, size int64) error {
	m := regexp.MustCompile(`^([0-9]+)(?:\.([0-9]))? (B|KB|MB|GB|TB)$`).FindStringSubmatch(shown)
	if m == nil {
		return fmt.Errorf("size %q is not a number and a unit", shown)
	}
	if m[3] == "B" {
		if shown != fmt.Sprintf("%d B", size) {
			return fmt.Errorf("size %q, want %d B", shown, size)
		}
		return nil
	}
	k := slices.Index([]string{"B", "KB", "MB", "GB", "TB"}, m[3])
	v := float64(size) / math.Pow(1024, float64(k))
	if v < 1 || (v >= 1024 && m[3] != "TB") {
		return fmt.Errorf("size %q for %d bytes: the wrong unit", shown, size)
	}
	shownV, _ := strconv.ParseFloat(m[1]+"."+m[2]+"0", 64)
	decimals, half := 0, 0.5
	if m[2] != "" {
		decimals, half = 1, 0.05
	}
	if (decimals == 1) != (v < 10) {
		return fmt.Errorf("size %q for %d bytes (%.3f %s): one decimal below 10, none above", shown, size, v, m[3])
	}
	if math.Abs(v-shownV) > half+1e-9 {
		return fmt.Errorf("size %q for %d bytes (%.3f %s)", shown, size, v, m[3])
	}
	return nil
}

func TestUIMyExports(t *testing.T) {
	ctx, dl := newBrowser(t)
	// A job's result is kept for a day (the default) here; the second
	// server keeps it for 3 s, and its job is submitted first so that it
	// has long expired when it is looked at.
	srv := startUIServerWith(t, 5000, uiMyExportsDatasets, "--jobs-max-attempts", "1")
	short := startUIServerWith(t, 100, "", "--jobs-ttl", "3s")
	shortAPI := jobAPI{t: t, base: short.URL}
	expiring := shortAPI.submit("results", "csv")

	me := jobAPI{t: t, base: srv.URL}
	out, err := exec.Command(exportdBin(t), "token", "create", "--config", srv.Config, "--name", "park", "--roles", "admin").CombinedOutput()
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	other := jobAPI{t: t, base: srv.URL, token: regexp.MustCompile(`exd_[A-Za-z0-9_-]+`).FindString(string(out))}
	if other.token == "" {
		t.Fatalf("no token in %s", out)
	}

	// A cancelled job: the endless query, cancelled once it writes rows.
	cancelled := me.submit("endless", "csv")
	me.wait(cancelled, "running with rows", func(j apiJob) bool { return j.State == "running" && j.Rows > 0 })
	me.cancel(cancelled)
	me.wait(cancelled, "cancelled", func(j apiJob) bool { return j.State == "cancelled" })

	// Two finished ones, a failed one, and another principal's.
	mine := map[string]string{ // id → the state it ends in
		cancelled:                     "cancelled",
		me.submit("accounts", "xlsx"): "succeeded",
		me.submit("results", "csv"):   "succeeded",
		me.submit("broken", "csv"):    "failed",
	}
	theirs := other.submit("results", "jsonl")
	jobs := map[string]apiJob{}
	final := func(j apiJob) bool { return j.State != "queued" && j.State != "running" }
	for id, state := range mine {
		if jobs[id] = me.wait(id, "final", final); jobs[id].State != state {
			t.Fatalf("job %s (%s) is %s (%s), want %s", id, jobs[id].Dataset, jobs[id].State, jobs[id].Error, state)
		}
	}
	if j := other.wait(theirs, "final", final); j.State != "succeeded" {
		t.Fatalf("the other principal's job is %s (%s)", j.State, j.Error)
	}
	if ids := me.list(); len(ids) != len(mine) || slices.ContainsFunc(ids, func(id string) bool { return mine[id] == "" }) {
		t.Errorf("GET /v1/jobs lists %q, want the %d jobs submitted", ids, len(mine))
	}

	titles := map[string]string{"accounts": "Accounts (large)", "results": "시험 결과", "broken": "깨지는 쿼리", "endless": "끝없는 목록"}
	stateNames := map[string]string{"succeeded": "완료", "failed": "실패", "cancelled": "취소됨", "expired": "만료됨"}
	if _, err := chromedp.Call(within(t, ctx, 10*time.Second), emulation.SetTimezoneOverride,
		emulation.SetTimezoneOverrideParams{TimezoneID: uiTimezone}); err != nil {
		t.Fatal(err)
	}

	// checkRow compares a row of the page with the job's API.
	checkRow := func(t *testing.T, r pageRow, j apiJob) {
		t.Helper()
		if len(r.Cells) != numCols {
			t.Fatalf("job %s: %d cells %q, want %d", j.ID, len(r.Cells), r.Cells, numCols)
		}
		if r.Cells[colDataset] != titles[j.Dataset] || r.DataHref != "/ui/datasets/"+j.Dataset {
			t.Errorf("job %s: dataset %q → %q, want %q → /ui/datasets/%s", j.ID, r.Cells[colDataset], r.DataHref, titles[j.Dataset], j.Dataset)
		}
		if r.Cells[colFormat] != j.Format {
			t.Errorf("job %s: format %q, want %q", j.ID, r.Cells[colFormat], j.Format)
		}
		if r.Cells[colState] != stateNames[j.State] || r.Badge != "state state-"+j.State {
			t.Errorf("job %s: state %q (class %q), want %q (%s)", j.ID, r.Cells[colState], r.Badge, stateNames[j.State], j.State)
		}
		if want := grouped(j.Rows); r.Cells[colRows] != want {
			t.Errorf("job %s: rows %q, want %s", j.ID, r.Cells[colRows], want)
		}
		size := j.Bytes
		if j.State == "succeeded" || j.State == "expired" {
			if j.Size <= 0 {
				t.Errorf("job %s: the API's size is %d", j.ID, j.Size)
			}
			size = j.Size
		}
		if err := checkShownSize(r.Cells[colSize], size); err != nil {
			t.Errorf("job %s: %v", j.ID, err)
		}
		if want := pageTime(t, j.CreatedAt); r.Cells[colCreated] != want {
			t.Errorf("job %s: requested %q, want %q (%s)", j.ID, r.Cells[colCreated], want, j.CreatedAt)
		}
		want := ""
		if j.ExpiresAt != nil {
			want = pageTime(t, *j.ExpiresAt)
		}
		if (j.State == "succeeded" || j.State == "expired") && want == "" {
			t.Errorf("job %s: %s without expires_at", j.ID, j.State)
		}
		if r.Cells[colExpires] != want {
			t.Errorf("job %s: expires %q, want %q (%v)", j.ID, r.Cells[colExpires], want, j.ExpiresAt)
		}
		if j.State != "succeeded" {
			if r.Links != 0 || r.Cells[colLink] != "" {
				t.Errorf("job %s (%s): the last cell has %d links, text %q; want none", j.ID, j.State, r.Links, r.Cells[colLink])
			}
			return
		}
		if r.Links != 1 || r.Href != j.DownloadURL || r.Title != j.FileName || r.Cells[colLink] != "받기" {
			t.Errorf("job %s: link %d × %q %q (title %q), want the API's %q titled %q", j.ID, r.Links, r.Cells[colLink], r.Href, r.Title, j.DownloadURL, j.FileName)
		}
	}

	t.Run("mine", func(t *testing.T) {
		rows := readJobsPage(t, ctx, srv.URL)
		seen := map[string]bool{}
		for _, r := range rows {
			if r.Job == theirs {
				t.Errorf("another principal's job %s is listed: %q", theirs, r.Cells)
				continue
			}
			j, ok := jobs[r.Job]
			if !ok {
				t.Errorf("row of an unknown job %q: %q", r.Job, r.Cells)
				continue
			}
			seen[r.Job] = true
			checkRow(t, r, j)
		}
		for id, j := range jobs {
			if !seen[id] {
				t.Errorf("job %s (%s, %s) is not listed", id, j.Dataset, j.State)
			}
		}
	})

	// Each finished job's link downloads its result: the same bytes as
	// the API's download, under the job's file name.
	t.Run("download", func(t *testing.T) {
		for id, j := range jobs {
			if j.State != "succeeded" {
				continue
			}
			path := download(t, ctx, dl, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#jobs-table tr[data-job="%s"] a.button`, id)), chromedp.NodeVisible))
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			status, want := me.do("GET", "/v1/jobs/"+id+"/download", nil)
			if status != http.StatusOK {
				t.Fatalf("API download of %s: %d %s", id, status, want)
			}
			sum := sha256.Sum256(got)
			if !bytes.Equal(got, want) || int64(len(got)) != j.Size || hex.EncodeToString(sum[:]) != j.SHA256 {
				t.Errorf("job %s: the page's link gave %d bytes (sha256 %x), the API %d; the job says %d bytes, sha256 %s",
					id, len(got), sum, len(want), j.Size, j.SHA256)
			}
			if filepath.Base(path) != j.FileName {
				t.Errorf("job %s: saved as %q, want %q", id, filepath.Base(path), j.FileName)
			}
		}
	})

	// The other principal's page lists its job, and none of the first's.
	t.Run("another principal", func(t *testing.T) {
		tab, cancel := chromedp.NewContext(ctx)
		defer cancel()
		c := within(t, tab, time.Minute)
		if _, err := chromedp.Call(c, network.Enable, network.EnableParams{}); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Call(c, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Authorization": "Bearer " + other.token}}); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Call(c, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: uiTimezone}); err != nil {
			t.Fatal(err)
		}
		rows := readJobsPage(t, tab, srv.URL)
		if len(rows) != 1 || rows[0].Job != theirs {
			t.Fatalf("the other principal's page lists %+v, want only its job %s", rows, theirs)
		}
		checkRow(t, rows[0], other.get(theirs))
	})

	// A result past its time: "expired", still with its size and expiry,
	// and no link; the API refuses its download (410).
	t.Run("expired", func(t *testing.T) {
		j := shortAPI.wait(expiring, "expired", func(j apiJob) bool { return j.State == "expired" })
		if j.DownloadURL != "" || j.ExpiresAt == nil || !j.ExpiresAt.Before(time.Now()) {
			t.Errorf("expired job: download_url %q, expires_at %v", j.DownloadURL, j.ExpiresAt)
		}
		rows := readJobsPage(t, ctx, short.URL)
		if len(rows) != 1 || rows[0].Job != expiring {
			t.Fatalf("the page lists %+v, want job %s", rows, expiring)
		}
		checkRow(t, rows[0], j)
		if status, b := shortAPI.do("GET", "/v1/jobs/"+expiring+"/download", nil); status != http.StatusGone {
			t.Errorf("download of the expired job: %d %s, want 410", status, b)
		}
	})
}

// grouped writes n as the page does (ko-KR): 300000 → 300,000.
func grouped(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
