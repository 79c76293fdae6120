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
// Through nginx, point -url at the proxy (deploy/nginx/exportd.conf).
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
	flag.Parse()
	if *url == "" || *rows <= 0 {
		fmt.Fprintln(os.Stderr, "load: -url and -rows are required")
		os.Exit(2)
	}
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
	}
}

type result struct {
	wall    time.Duration
	ttfb    []time.Duration
	silence time.Duration
	failed  int
	errors  []string
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
			ttfb, silence, err := download(ctx, c, url, fmt.Sprintf("10.77.%d.%d", (i%clients)/250, (i%clients)%250+1), gz)
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
		})
	}
	wg.Wait()
	res.wall = time.Since(start)
	stopRSS()
	return res
}

// download reads one export to its end and returns the time to its first
// byte and the longest gap between two reads that returned bytes.
func download(ctx context.Context, c *http.Client, url, client string, gz bool) (ttfb, silence time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("X-Real-IP", client)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	start := time.Now()
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
