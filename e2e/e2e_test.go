package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/xuri/excelize/v2"

	"github.com/exportd/exportd/bench/dataset"
)

// A 1M-row XLSX export takes longer than nginx's 3 s read timeout and
// still completes with 200 and a workbook whose every row reads back.
func TestMillionRowXLSXThroughNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("1M rows: not in -short")
	}
	e := startExportd(t, "--keepalive", "2s")
	base := startNginx(t, e.Addr)
	file := filepath.Join(t.TempDir(), "accounts.xlsx")
	start := time.Now()
	resp, err := http.Get(base + "/v1/datasets/accounts/export.xlsx")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	// Read at most 15 MiB/s (the workbook is about 76 MB), so that the
	// download lasts longer than nginx's 3 s read timeout however fast
	// this machine is.
	n, err := io.Copy(f, &pacedReader{r: resp.Body, start: start, rate: 15 << 20})
	resp.Body.Close()
	f.Close()
	took := time.Since(start)
	if resp.StatusCode != 200 || err != nil {
		t.Fatalf("status %d, %v after %d bytes", resp.StatusCode, err, n)
	}
	t.Logf("1M-row XLSX through nginx: %d bytes in %v", n, took)
	if took <= 3*time.Second {
		t.Fatalf("the download took %v: not longer than nginx's 3 s read timeout, so it proves nothing", took)
	}

	// Every row is read back by xlsxcheck (excelize's streaming reader),
	// built without the race detector.
	out, err := exec.Command(buildTool(t, "xlsxcheck", "./e2e/xlsxcheck"), "-rows", strconv.Itoa(tableRows), file).CombinedOutput()
	if err != nil {
		t.Fatalf("xlsxcheck: %v: %s", err, out)
	}
	t.Logf("read back: %s", bytes.TrimSpace(out))
}

// pacedReader reads from r at most rate bytes a second since start.
type pacedReader struct {
	r     io.Reader
	start time.Time
	rate  float64
	n     int64
}

func (p *pacedReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if due := time.Duration(float64(p.n) / p.rate * float64(time.Second)); due > time.Since(p.start) {
		time.Sleep(due - time.Since(p.start))
	}
	return n, err
}

// A query silent for 10 s before its first row completes through nginx
// (read timeout 3 s) with keep-alives every 2 s, and gets 504 without.
func TestSilentQueryKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		keepalive string
		status    int
	}{{"2s", 200}, {"0", 504}} {
		t.Run("keepalive="+tc.keepalive, func(t *testing.T) {
			t.Parallel()
			e := startExportd(t, "--keepalive", tc.keepalive)
			base := startNginx(t, e.Addr)
			resp, err := http.Get(base + "/v1/datasets/slow/export.xlsx?sleep=10")
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%v)", resp.StatusCode, tc.status, err)
			}
			if tc.status != 200 {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			x, err := excelize.OpenReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer x.Close()
			rows, err := x.GetRows("slow")
			if err != nil || len(rows) != 1001 || rows[1000][0] != "1000" {
				t.Fatalf("%d rows, %v", len(rows), err)
			}
		})
	}
}

// A client that disconnects mid-download: the query leaves
// pg_stat_activity within a second and the server's goroutines return to
// what they were.
func TestClientDisconnect(t *testing.T) {
	url := pgURL(t)
	e := startExportd(t)
	base := startNginx(t, e.Addr)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	running := func() int {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%e2e-crawl%' AND state = 'active' AND pid <> pg_backend_pid()`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := metric(t, e.URL, "go_goroutines")

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(base + "/v1/datasets/crawl/export.csv")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	if running() != 1 {
		t.Fatalf("the query is not running mid-download")
	}
	resp.Body.Close()
	tr.CloseIdleConnections()
	left := time.Now()
	for running() > 0 {
		if time.Since(left) > time.Second {
			t.Fatalf("the query still runs %v after the client left", time.Since(left))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("query gone from pg_stat_activity %v after the client left", time.Since(left))
	deadline := time.Now().Add(5 * time.Second)
	for {
		g := metric(t, e.URL, "go_goroutines")
		if g <= before && metric(t, e.URL, "exportd_active_streams") == 0 &&
			metric(t, e.URL, `exportd_cancelled_streams_total{dataset="crawl",format="csv"}`) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines %v (before %v), streams not ended", g, before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A database error mid-stream (division by zero at row 200,000) makes the
// client's download fail: curl through nginx exits non-zero, Go's client
// gets a read error, for CSV as for XLSX.
func TestDatabaseErrorMidStream(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		need(t, "curl: %v", err)
	}
	e := startExportd(t)
	base := startNginx(t, e.Addr)
	for _, format := range []string{"csv", "xlsx"} {
		for _, b := range []string{base, e.URL} {
			cmd := exec.Command("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", b+"/v1/datasets/failing/export."+format)
			out, err := cmd.Output()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 || string(out) != "200" {
				t.Errorf("curl %s via %s: status %s, %v; want 200 and a failure", format, b, out, err)
			} else {
				t.Logf("curl %s via %s: status %s, exit %d", format, b, out, exit.ExitCode())
			}
			resp, err := http.Get(b + "/v1/datasets/failing/export." + format)
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Errorf("Go client %s via %s: %d bytes and no error", format, b, n)
			}
		}
	}
	if got := metric(t, e.URL, `exportd_exports_total{dataset="failing",format="csv",outcome="error"}`); got != 4 {
		t.Errorf("failed csv exports counted: %v", got)
	}
}

// 40 concurrent downloads of 100k rows through nginx are all valid (the
// ones beyond the slots wait, with keep-alives under nginx's 3 s read
// timeout); while they are admitted, further downloads get 503 and nothing
// else.
func TestConcurrentDownloads(t *testing.T) {
	const streams, rows = 40, 100_000
	e := startExportd(t, "--max-exports", strconv.Itoa(streams), "--max-per-client=-1", "--keepalive", "1s")
	base := startNginx(t, e.Addr)
	url := fmt.Sprintf("%s/v1/datasets/accounts/export.csv?rows=%d", base, rows)

	// The reference file, checked row by row against the dataset.
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	want, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	checkCSV(t, want, rows)

	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: streams + 10}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	// Each download takes its slot and reads its body slowly (16 KiB
	// every 50 ms) until the barrier, so that all 40 stream at once while
	// the extra requests arrive, however long those take on a loaded
	// machine; then it reads the rest at full speed. A download must keep
	// reading: with proxy_buffering off, nginx's 3 s read timeout also runs
	// while its client does not read.
	start := time.Now()
	var ready, done sync.WaitGroup
	barrier := make(chan struct{})
	ready.Add(streams)
	for i := range streams {
		done.Go(func() {
			resp, err := c.Get(url)
			ready.Done()
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var got []byte
			buf := make([]byte, 16<<10)
			for paced := true; ; {
				if paced {
					select {
					case <-barrier:
						paced = false
					case <-time.After(50 * time.Millisecond):
					}
				}
				var n int
				n, err = resp.Body.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
			}
			if err == io.EOF {
				err = nil
			}
			if resp.StatusCode != 200 || err != nil || !bytes.Equal(got, want) {
				t.Errorf("download %d: status %d, %d bytes, %v; want 200 and %d identical bytes", i, resp.StatusCode, len(got), err, len(want))
			}
		})
	}
	ready.Wait()
	var extra sync.WaitGroup
	for range 10 {
		extra.Go(func() {
			resp, err := c.Get(url)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e struct {
				Error struct{ Code, Suggest string }
			}
			json.Unmarshal(body, &e)
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || e.Error.Code != "too_many_exports" || e.Error.Suggest != "job" {
				t.Errorf("beyond the limit: %d %.200s", resp.StatusCode, body)
			}
		})
	}
	extra.Wait()
	t.Logf("all slots held and 10 extra requests answered after %v", time.Since(start).Round(time.Millisecond))
	close(barrier)
	done.Wait()
	took := time.Since(start)
	rss := e.peakRSS(t)
	t.Logf("%d concurrent downloads of %d rows (CSV, %d bytes each) through nginx: %v, exportd peak RSS %d MiB",
		streams, rows, len(want), took.Round(time.Millisecond), rss/1024)
	if got := metric(t, e.URL, `exportd_rejected_exports_total{reason="rejected"}`); got != 10 {
		t.Errorf("rejected %v", got)
	}
}

// checkCSV compares a CSV export of the accounts dataset with the
// standard dataset, row by row.
func checkCSV(t *testing.T, b []byte, n int) {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\ufeff"))))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n+1 || strings.Join(recs[0], ",") != strings.Join(dataset.Columns, ",") {
		t.Fatalf("%d records, header %q", len(recs), recs[0])
	}
	for i, rec := range recs[1:] {
		d := dataset.Get(i)
		note := d.Note
		if d.NoteNull {
			note = ""
		}
		want := []string{strconv.FormatInt(d.ID, 10), d.Name, d.Email, d.SignupAt.Format(time.DateTime),
			strconv.FormatFloat(d.ScoreAvg, 'f', -1, 64), strconv.FormatInt(d.Visits, 10), strconv.FormatBool(d.Active),
			strconv.FormatFloat(d.Balance, 'f', 2, 64), note, d.Category}
		if strings.Join(rec, "|") != strings.Join(want, "|") {
			t.Fatalf("row %d: %q, want %q", i, rec, want)
		}
	}
}

// Bad input through nginx: clear JSON errors naming the field, and
// injection attempts bound as plain values.
func TestBadInput(t *testing.T) {
	e := startExportd(t)
	base := startNginx(t, e.Addr)
	for _, tc := range []struct {
		path        string
		status      int
		code, field string
	}{
		{"/v1/datasets/nope/export.xlsx", 404, "unknown_dataset", "name"},
		{"/v1/datasets/accounts/export.xls", 400, "unknown_format", "format"},
		{"/v1/datasets/accounts/export.csv?rows=abc", 400, "bad_parameter", "rows"},
		{"/v1/datasets/accounts/export.csv?rows=1%3BDROP%20TABLE%20e2e_accounts", 400, "bad_parameter", "rows"},
		{"/v1/datasets/accounts/export.csv?rows=1;DROP%20TABLE%20e2e_accounts", 400, "bad_query", ""},
		{"/v1/datasets/accounts/export.csv?rows=0", 400, "bad_parameter", "rows"},
		{"/v1/datasets/lookup/export.csv", 400, "bad_parameter", "email"},
		{"/v1/datasets/accounts/export.csv?x=" + strings.Repeat("a", 8200), 414, "", ""},
	} {
		for _, b := range []string{base, e.URL} {
			resp, err := http.Get(b + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("%.70s via %s: %d, want %d", tc.path, b, resp.StatusCode, tc.status)
				continue
			}
			if tc.status == 414 {
				continue // nginx answers an over-long request line itself
			}
			var e struct{ Error struct{ Code, Field string } }
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != tc.code || e.Error.Field != tc.field {
				t.Errorf("%.70s via %s: %s", tc.path, b, body)
			}
		}
	}
	for _, inj := range []string{`' OR '1'='1`, `x'; DROP TABLE e2e_accounts; --`, `user1@example.com' --`} {
		resp, err := http.Get(base + "/v1/datasets/lookup/export.csv?email=" + neturl.QueryEscape(inj))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "\ufeffid,email\n" {
			t.Errorf("injection %q: %d %q", inj, resp.StatusCode, body)
		}
	}
	resp, _ := http.Get(base + "/v1/datasets/lookup/export.csv?email=user1%40example.com")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "\ufeffid,email\n2,user1@example.com\n" {
		t.Errorf("lookup: %q", body)
	}
}

// metric returns one sample of exportd's /metrics (0 when absent).
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}
