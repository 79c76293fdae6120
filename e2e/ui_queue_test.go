package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The month-end rush in the browser, on a server with one slot and room
// for two downloads: a download refused at the bound (503) is offered as
// a background job; a download that waits for its turn shows its place in
// the queue, and after a while the job is offered; choosing it takes the
// waiting download out of the queue, and the job runs once the slot
// frees.
func TestUIQueue(t *testing.T) {
	ctx, _ := newBrowser(t)
	srv := startUIServerWith(t, 300_000, "", "--slots", "1", "--max-exports", "2")
	// Downloads from this test (the same address as the browser: one
	// client) that are not read: once the socket's buffers are full the
	// running one holds the slot.
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	hold := func() *http.Response {
		t.Helper()
		resp, err := hc.Get(srv.URL + "/v1/datasets/accounts/export.csv")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("holding download: %d", resp.StatusCode)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	running, waiting := hold(), hold()

	c := within(t, ctx, 2*time.Minute)
	if err := chromedp.Do(c,
		chromedp.Navigate(srv.URL+"/ui/datasets/member_lookup"),
		chromedp.WaitVisible(chromedp.CSS("#p-from_id")),
		chromedp.SetValue(chromedp.CSS("#p-from_id"), "1"),
		chromedp.SetValue(chromedp.CSS("#p-to_id"), "900"),
		chromedp.Click(chromedp.CSS("#download"), chromedp.NodeVisible),
	); err != nil {
		t.Fatal(err)
	}
	// Refused at the bound: the job is offered.
	waitNotice(t, c, "서버가 지금 바쁩니다")
	if cls := evalString(t, c, `document.getElementById("background").className`); cls != "suggested" {
		t.Errorf("background button class %q after a 503, want suggested", cls)
	}

	// Room for one more: the download waits, and shows its place.
	waiting.Body.Close()
	waitMetric(t, hc, srv.URL, "exportd_waiting_exports 0")
	if err := chromedp.Do(c,
		chromedp.WaitEnabled(chromedp.CSS("#download")), // disabled for a second after a click
		chromedp.Click(chromedp.CSS("#download"), chromedp.NodeVisible),
	); err != nil {
		t.Fatal(err)
	}
	msg := waitNotice(t, c, "차례를 기다리고 있습니다")
	if !strings.Contains(msg, "대기 1번째") {
		t.Errorf("notice %q, want the place (1)", msg)
	}
	screenshot(t, ctx, "ui-queue")
	// After 10 s of waiting the job is offered.
	waitNotice(t, within(t, ctx, 30*time.Second), "백그라운드에서 준비할 수 있습니다")
	if cls := evalString(t, c, `document.getElementById("background").className`); cls != "suggested" {
		t.Errorf("background button class %q after a long wait, want suggested", cls)
	}
	// Choosing it takes the waiting download out of the queue; the job
	// waits for the slot too, and runs when the holder leaves.
	if err := chromedp.Do(c,
		chromedp.Click(chromedp.CSS("#background"), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS("#job-bar")),
	); err != nil {
		t.Fatal(err)
	}
	running.Body.Close()
	if err := chromedp.Do(c, chromedp.WaitVisible(chromedp.CSS("#job-download"))); err != nil {
		t.Fatalf("job did not finish: %v (status %q)", err, text(t, ctx, "#job-status"))
	}
	log, err := os.ReadFile(filepath.Join(filepath.Dir(srv.Config), "exportd.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "taken out of the queue by its client") {
		t.Errorf("no export taken out of the queue in the log:\n%s", tail(string(log), 3000))
	}
}

// waitNotice waits until the form's notice shows text, and returns it.
func waitNotice(t *testing.T, ctx context.Context, want string) string {
	t.Helper()
	var got string
	for ctx.Err() == nil {
		got, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const n = document.getElementById("notice"); return n && !n.hidden ? n.textContent : "" })()`))
		if strings.Contains(got, want) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the notice never said %q (last: %q)", want, got)
	return ""
}

func evalString(t *testing.T, ctx context.Context, js string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitMetric waits until the server's /metrics has the line want.
func waitMetric(t *testing.T, c *http.Client, base, want string) {
	t.Helper()
	var body []byte
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := c.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, l := range strings.Split(string(body), "\n") {
			if l == want {
				return
			}
		}
	}
	t.Fatalf("metrics never had %q", want)
}
