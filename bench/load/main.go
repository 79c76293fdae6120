// Command load opens N concurrent downloads from a running exportd and
// reports, for each N, the aggregate rows per second, the time to first
// byte (p50, p99, max), the longest silence between two reads on any
// download, the server's peak RSS and the failures.
//
// Start exportd on the standard dataset (bench/load/datasets.yaml says
// how), then:
//
//	go run ./bench/load -url 'http://127.0.0.1:8080/v1/datasets/accounts/export.xlsx?rows=200000' \
//	    -rows 200000 -n 1,4,16,64,256 -pid "$EXPORTD_PID"
//
// Through nginx: -nginx /usr/sbin/nginx starts nginx with the shipped
// deploy/nginx/exportd.conf (proxy_read_timeout 3s, as the end-to-end
// tests run it) in front of -url's exportd, and the downloads go through it.
// nginx names the client itself (X-Real-IP), so there every download is
// from one client.
//
// A small download beside many large ones: -small URL times that small
// download alone (-small-runs times, one after another), then again from
// another client while one client has -large downloads of -url open
// (running or waiting), and reports the ratio of the medians (the target:
// within 3× its idle time). The large downloads are cancelled after.
//
// A download counts as failed unless it answers 200 and its body ends
// cleanly with a whole file: an XLSX must end with a ZIP end-of-central-
// directory record, a CSV with a newline.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "", "download URL (an export of the standard dataset)")
	rows := flag.Int("rows", 0, "rows in each download, for rows/s")
	ns := flag.String("n", "1,4,16,64", "comma-separated numbers of concurrent downloads")
	pid := flag.Int("pid", 0, "exportd's process id, for its peak RSS (Linux /proc)")
	clients := flag.Int("clients", 1, "spread the downloads over this many client addresses (X-Real-IP; needs --trusted-proxies on the server)")
	gzip := flag.Bool("gzip", true, "send Accept-Encoding: gzip (as browsers do)")
	timeout := flag.Duration("timeout", 30*time.Minute, "bound on one round")
	nginx := flag.String("nginx", "", "nginx binary: run the downloads through nginx with the shipped config")
	nginxConf := flag.String("nginx-conf", "deploy/nginx/exportd.conf", "the shipped nginx config (with -nginx)")
	small := flag.String("small", "", "URL of a small download to time alone and beside -large downloads of -url from another client")
	large := flag.Int("large", 32, "large downloads of one client beside the small one (with -small)")
	smallRuns := flag.Int("small-runs", 5, "times the small download is timed, alone and beside (with -small)")
	phases := flag.Bool("phases", false, "also print, per N, where the time to first byte went: connected, request sent, response headers (p50/p99)")
	flag.Parse()
	if *url == "" || *rows <= 0 {
		fmt.Fprintln(os.Stderr, "load: -url and -rows are required")
		os.Exit(2)
	}
	if *nginx != "" {
		through, stop, err := startNginx(*nginx, *nginxConf, *url)
		if err != nil {
			fmt.Fprintln(os.Stderr, "load: nginx:", err)
			os.Exit(1)
		}
		defer stop()
		*url = through
		fmt.Printf("through nginx (proxy_read_timeout 3s): %s\n\n", through)
	}
	if *small != "" {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		err := beside(ctx, *small, *url, *large, *smallRuns, *gzip)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(1)
		}
		return
	}
	var after []func() // the phases, after the table
	fmt.Printf("| N | failed | wall s | rows/s | TTFB p50 ms | TTFB p99 ms | TTFB max ms | longest silence ms | server peak RSS MiB |\n")
	fmt.Printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, f := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "load: bad -n entry %q\n", f)
			os.Exit(2)
		}
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		r := round(ctx, *url, n, *clients, *gzip, *pid)
		cancel()
		fmt.Printf("| %d | %d | %.2f | %.0f | %.1f | %.1f | %.1f | %.0f | %s |\n", n, r.failed, r.wall.Seconds(),
			float64(n-r.failed)*float64(*rows)/r.wall.Seconds(), ms(pct(r.ttfb, 50)), ms(pct(r.ttfb, 99)), ms(pct(r.ttfb, 100)),
			ms(r.silence), rss(r.peakKiB))
		for _, e := range r.errors {
			fmt.Fprintln(os.Stderr, "  ", e)
		}
		if *phases {
			after = append(after, func() { r.printPhases(n) })
		}
	}
	for _, f := range after {
		f()
	}
}

// phases are the moments of one download until its headers, from the
// start of the request.
type phases struct{ connected, sent, headers time.Duration }

// printPhases prints where the time to first byte went, after the table.
func (r result) printPhases(n int) {
	var conn, sent, hdr []time.Duration
	for _, p := range r.phases {
		conn, sent, hdr = append(conn, p.connected), append(sent, p.sent), append(hdr, p.headers)
	}
	slices.Sort(conn)
	slices.Sort(sent)
	slices.Sort(hdr)
	fmt.Printf("N=%d, ms p50/p99: connected %.1f/%.1f, request sent %.1f/%.1f, response headers %.1f/%.1f\n", n,
		ms(pct(conn, 50)), ms(pct(conn, 99)), ms(pct(sent, 50)), ms(pct(sent, 99)), ms(pct(hdr, 50)), ms(pct(hdr, 99)))
}

type result struct {
	wall    time.Duration
	ttfb    []time.Duration
	silence time.Duration
	failed  int
	errors  []string
	phases  []phases
	peakKiB int
}

// round runs n downloads at once and waits for all of them.
func round(ctx context.Context, url string, n, clients int, gz bool, pid int) result {
	tr := &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var mu sync.Mutex
	var res result
	stopRSS := watchRSS(pid, &res.peakKiB, &mu)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var ph phases
			ttfb, silence, err := download(ctx, c, url, fmt.Sprintf("10.77.%d.%d", (i%clients)/250, (i%clients)%250+1), gz, nil, &ph)
			mu.Lock()
			defer mu.Unlock()
			res.silence = max(res.silence, silence)
			if err != nil {
				res.failed++
				if len(res.errors) < 5 {
					res.errors = append(res.errors, fmt.Sprintf("download %d: %v", i, err))
				}
				return
			}
			res.ttfb = append(res.ttfb, ttfb)
			res.phases = append(res.phases, ph)
		})
	}
	wg.Wait()
	res.wall = time.Since(start)
	stopRSS()
	return res
}

// download reads one export to its end and returns the time to its first
// byte and the longest gap between two reads that returned bytes. It
// calls first, if set, at the first byte, and records the moments until
// the headers in ph, if set.
func download(ctx context.Context, c *http.Client, url, client string, gz bool, first func(), ph *phases) (ttfb, silence time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("X-Real-IP", client)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	start := time.Now()
	if ph != nil {
		req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn:              func(httptrace.GotConnInfo) { ph.connected = time.Since(start) },
			WroteRequest:         func(httptrace.WroteRequestInfo) { ph.sent = time.Since(start) },
			GotFirstResponseByte: func() { ph.headers = time.Since(start) },
		}))
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return 0, 0, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	buf := make([]byte, 64<<10)
	tail := make([]byte, 0, 128)
	last := start
	var total int64
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			now := time.Now()
			if total == 0 {
				ttfb = now.Sub(start)
				if first != nil {
					first()
				}
			} else {
				silence = max(silence, now.Sub(last))
			}
			last = now
			total += int64(n)
			tail = append(tail, buf[:n]...)
			if len(tail) > 64 {
				tail = append(tail[:0], tail[len(tail)-64:]...)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return ttfb, silence, fmt.Errorf("after %d bytes: %w", total, err)
		}
	}
	if err := whole(resp.Header, tail); err != nil {
		return ttfb, silence, fmt.Errorf("%d bytes: %w", total, err)
	}
	return ttfb, silence, nil
}

// beside times the small download alone, then beside n large downloads
// of one other client, and prints the table.
func beside(ctx context.Context, small, large string, n, runs int, gz bool) error {
	tr := &http.Transport{MaxIdleConnsPerHost: n + 1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	timeSmall := func() ([]time.Duration, error) {
		var ds []time.Duration
		for range runs {
			start := time.Now()
			if _, _, err := download(ctx, c, small, "10.77.200.1", gz, nil, nil); err != nil {
				return nil, fmt.Errorf("small download: %w", err)
			}
			ds = append(ds, time.Since(start))
		}
		return ds, nil
	}
	idle, err := timeSmall()
	if err != nil {
		return err
	}
	// The large downloads, all from one client, until the small ones are
	// timed; each has its first bytes (it runs or waits) before they are.
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	started := make(chan struct{}, n)
	var mu sync.Mutex
	var failed []string
	for i := range n {
		wg.Go(func() {
			_, _, err := download(lctx, c, large, "10.77.100.1", gz, func() { started <- struct{}{} }, nil)
			if err != nil && lctx.Err() == nil {
				mu.Lock()
				failed = append(failed, fmt.Sprintf("large download %d: %v", i, err))
				mu.Unlock()
			}
		})
	}
	for range n {
		select {
		case <-started:
		case <-ctx.Done():
			return fmt.Errorf("the large downloads did not all start: %w", ctx.Err())
		}
	}
	busy, err := timeSmall()
	if err != nil {
		return err
	}
	cancel()
	wg.Wait()
	for _, f := range failed {
		fmt.Fprintln(os.Stderr, "  ", f)
	}
	fmt.Printf("| small download | alone: median ms | beside %d large of one client: median ms | max ms | ratio of medians | large failed before the end |\n", n)
	fmt.Printf("|---|---:|---:|---:|---:|---:|\n")
	fmt.Printf("| %s | %.1f | %.1f | %.1f | %.2f× | %d |\n", small, ms(pct(idle, 50)), ms(pct(busy, 50)), ms(pct(busy, 100)),
		float64(pct(busy, 50))/float64(pct(idle, 50)), len(failed))
	return nil
}

// whole checks the end of a file: a ZIP's end-of-central-directory record
// (22 bytes, no comment), a gzip stream's trailer is checked by nothing
// here (the size is), a text file's last newline.
func whole(h http.Header, tail []byte) error {
	switch {
	case strings.Contains(h.Get("Content-Type"), "spreadsheetml"):
		if len(tail) < 22 || !bytes.Equal(tail[len(tail)-22:len(tail)-18], []byte("PK\x05\x06")) {
			return fmt.Errorf("no ZIP end record: the workbook is cut")
		}
	case h.Get("Content-Encoding") == "gzip":
		// the chunked body ended cleanly; a gzip stream cut by the server
		// would have ended with an error above
	case len(tail) == 0 || tail[len(tail)-1] != '\n':
		return fmt.Errorf("the text file does not end with a newline")
	}
	return nil
}

// watchRSS samples pid's resident set size every 20 ms into peak until
// the returned function is called.
func watchRSS(pid int, peak *int, mu *sync.Mutex) func() {
	if pid == 0 {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if kib := vmRSS(pid); kib > 0 {
				mu.Lock()
				*peak = max(*peak, kib)
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(stop); <-done }
}

func vmRSS(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kib, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return kib
		}
	}
	return 0
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func rss(kib int) string {
	if kib == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", float64(kib)/1024)
}
