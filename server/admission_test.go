package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

// stepSource holds each query of the items dataset before its first row
// until the test lets it go, by the query's min parameter, and reports
// every query it starts.
type stepSource struct {
	exportd.Source
	started chan int64 // the min of each query started

	mu    sync.Mutex
	gates map[int64]chan struct{}
}

func newStepSource(src exportd.Source) *stepSource {
	return &stepSource{Source: src, started: make(chan int64, 100), gates: map[int64]chan struct{}{}}
}

func (s *stepSource) gate(min int64) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.gates[min]
	if !ok {
		g = make(chan struct{})
		s.gates[min] = g
	}
	return g
}

// release lets the queries of min go.
func (s *stepSource) release(min int64) { close(s.gate(min)) }

func (s *stepSource) Query(ctx context.Context, q exportd.Query) (exportd.Rows, error) {
	min, _ := q.Params["min"].(int64)
	rows, err := s.Source.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	s.started <- min
	return &gateRows{Rows: rows, ctx: ctx, gate: s.gate(min)}, nil
}

// next returns the min of the next query started, failing the test if none
// starts within 10 s.
func (s *stepSource) next(t *testing.T) int64 {
	t.Helper()
	select {
	case m := <-s.started:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no query started")
		return 0
	}
}

// none fails the test if a query has started.
func (s *stepSource) none(t *testing.T) {
	t.Helper()
	select {
	case m := <-s.started:
		t.Fatalf("query min=%d started", m)
	default:
	}
}

// queueServer starts a server on f's data through src, with one slot and
// the addresses in X-Real-IP as clients.
func queueServer(t *testing.T, f *fixture, src exportd.Source, edit func(*server.Config)) *servertest.Server {
	return f.start(t, func(c *server.Config) {
		c.Sources = map[string]exportd.Source{"main": src}
		c.Slots = 1
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		if edit != nil {
			edit(c)
		}
	})
}

// open starts a download from the client at ip and returns once its
// headers have come.
func open(t *testing.T, c *http.Client, u, ip string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Real-IP", ip)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// readWithin reads len(p) bytes of body, failing the test if they have not
// come within d.
func readWithin(t *testing.T, body io.Reader, p []byte, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(body, p); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(d):
		t.Fatalf("%d bytes not read within %v", len(p), d)
	}
}

// Downloads beyond the slots are answered at once — status, headers, the
// file's first bytes, then keep-alives — while their queries wait; when
// the slot frees they run one after another to complete files.
func TestQueuedDownloadsStartAtOnce(t *testing.T) {
	f := newFixture(t, 100)
	src := newStepSource(f.src)
	srv := queueServer(t, f, src, func(c *server.Config) { c.KeepAlive = 20 * time.Millisecond })
	c := client(t)
	// Download k asks for the items from id 10k (ids are 10, 20, …).
	u := func(k int) string { return fmt.Sprintf("%s/v1/datasets/items/export.xlsx?min=%d", srv.URL, 10*k) }

	running := open(t, c, u(1), "10.0.0.1")
	if m := src.next(t); m != 10 {
		t.Fatalf("query min=%d", m)
	}
	var queued []*http.Response
	for min := 2; min <= 5; min++ {
		resp := open(t, c, u(min), "10.0.0.1")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Disposition") == "" {
			t.Fatalf("queued download: %d %v", resp.StatusCode, resp.Header)
		}
		head := make([]byte, 4)
		readWithin(t, resp.Body, head, 5*time.Second)
		if string(head) != "PK\x03\x04" {
			t.Fatalf("first bytes %q, want a ZIP local header", head)
		}
		queued = append(queued, resp)
	}
	// Keep-alives flow while a download waits: its body keeps growing.
	buf := make([]byte, 4096)
	var kept []byte // the bytes read from queued[0]
	for i := range 3 {
		done := make(chan int, 1)
		go func() { n, _ := queued[0].Body.Read(buf); done <- n }()
		select {
		case n := <-done:
			if n == 0 {
				t.Fatalf("keep-alive %d: nothing read", i)
			}
			kept = append(kept, buf[:n]...)
		case <-time.After(5 * time.Second):
			t.Fatalf("keep-alive %d: no bytes for 5 s while waiting", i)
		}
	}
	src.none(t)
	m := scrape(t, c, srv.URL)
	if m["exportd_waiting_exports"] != 4 || m["exportd_export_slots_in_use"] != 1 || m["exportd_export_slots"] != 1 {
		t.Errorf("waiting %v, slots in use %v of %v", m["exportd_waiting_exports"], m["exportd_export_slots_in_use"], m["exportd_export_slots"])
	}

	// The reference files, from a server without a queue.
	plain := f.start(t, nil)
	var want []string
	for min := 1; min <= 5; min++ {
		_, b, err := get(t, c, fmt.Sprintf("%s/v1/datasets/items/export.xlsx?min=%d", plain.URL, min*10))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, sheetRows(t, b))
	}
	for k := int64(1); k <= 5; k++ {
		src.release(10 * k)
	}
	var wg sync.WaitGroup
	for i, resp := range append([]*http.Response{running}, queued...) {
		wg.Go(func() {
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Errorf("download %d: %v", i+1, err)
				return
			}
			if i > 0 { // the bytes read above
				if i == 1 {
					body = append(kept, body...)
				}
				body = append([]byte("PK\x03\x04"), body...)
			}
			if got := sheetRows(t, body); got != want[i] {
				t.Errorf("download %d differs:\n%.200s\nwant\n%.200s", i+1, got, want[i])
			}
		})
	}
	wg.Wait()
	for range 4 {
		src.next(t) // each queued query ran once
	}
	m = scrape(t, c, srv.URL)
	if m["exportd_waiting_exports"] != 0 || m["exportd_export_slots_in_use"] != 0 || m["exportd_export_wait_seconds_count"] != 5 {
		t.Errorf("after: waiting %v, slots in use %v, waits observed %v", m["exportd_waiting_exports"], m["exportd_export_slots_in_use"], m["exportd_export_wait_seconds_count"])
	}
}

// Slots go to the client with the fewest exports running: a client's
// first download starts while another client's are queued, and its
// second goes before the other's third, which had waited longer.
func TestQueueFairBetweenClients(t *testing.T) {
	f := newFixture(t, 100)
	src := newStepSource(f.src)
	srv := queueServer(t, f, src, nil)
	c := client(t)
	u := func(min int) string { return fmt.Sprintf("%s/v1/datasets/items/export.csv?min=%d", srv.URL, min) }
	var resps []*http.Response
	for min := 1; min <= 4; min++ { // a: 1 runs, 2..4 wait
		resps = append(resps, open(t, c, u(min), "10.0.0.1"))
	}
	for min := 101; min <= 102; min++ { // b: 101 runs (nothing of b's running), 102 waits
		resps = append(resps, open(t, c, u(min), "10.0.0.2"))
	}
	// 1 and 101 start together, in either order.
	order := []int64{src.next(t), src.next(t)}
	slices.Sort(order)
	src.none(t)
	// Were slots handed out in arrival order, b's second (102) would
	// start after a's last (4).
	for _, min := range []int64{1, 101, 2} { // let one go at a time
		src.release(min)
		order = append(order, src.next(t))
	}
	// b's last ends: a's last still waits for a's third, which now runs.
	src.release(102)
	src.release(3)
	order = append(order, src.next(t))
	src.release(4)
	if got, want := fmt.Sprint(order), "[1 101 2 102 3 4]"; got != want {
		t.Errorf("queries started in order %s, want %s", got, want)
	}
	for i, resp := range resps {
		body, err := io.ReadAll(resp.Body)
		from := 0
		if i >= 4 {
			from = 10 // ids from 110
		}
		if resp.StatusCode != 200 || err != nil || string(body) != wantCSV(from, 100) {
			t.Errorf("download %d: %d %v %d bytes", i, resp.StatusCode, err, len(body))
		}
	}
}

// Beyond the bounds of exports running or waiting, per client and per
// server, a download is refused at once with a JSON 503 and Retry-After;
// the admitted ones complete, and then there is room again.
func TestQueueRefusesAtTheBound(t *testing.T) {
	f := newFixture(t, 100)
	src := newStepSource(f.src)
	srv := queueServer(t, f, src, func(c *server.Config) {
		c.MaxExports = 3
		c.MaxExportsPerClient = 2
	})
	c := client(t)
	u := fmt.Sprintf("%s/v1/datasets/items/export.csv?min=1", srv.URL)
	refused := func(resp *http.Response, why string) {
		t.Helper()
		body, _ := io.ReadAll(resp.Body)
		e := decodeError(t, body)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "5" || e.Error.Code != "too_many_exports" || e.Error.Suggest != "job" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d Retry-After %q %s", why, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	admitted := []*http.Response{open(t, c, u, "10.0.0.1"), open(t, c, u, "10.0.0.1")}
	refused(open(t, c, u, "10.0.0.1"), "third export of a client with a bound of two")
	admitted = append(admitted, open(t, c, u, "10.0.0.2"))
	refused(open(t, c, u, "10.0.0.3"), "fourth export on a server with a bound of three")
	src.release(1)
	for i, resp := range admitted {
		body, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || err != nil || string(body) != wantCSV(0, 100) {
			t.Errorf("admitted download %d: %d %v", i, resp.StatusCode, err)
		}
	}
	m := scrape(t, c, srv.URL)
	if got := m[`exportd_rejected_exports_total{reason="rejected"}`]; got != 2 {
		t.Errorf("rejected %v", got)
	}
	resp := open(t, c, u, "10.0.0.3")
	if body, err := io.ReadAll(resp.Body); resp.StatusCode != 200 || err != nil || string(body) != wantCSV(0, 100) {
		t.Errorf("after the downloads ended: %d %v", resp.StatusCode, err)
	}
}

// A client that leaves while its download waits frees its place: its
// query never starts, and the next download takes the slot.
func TestQueueClientLeavesWhileWaiting(t *testing.T) {
	f := newFixture(t, 100)
	src := newStepSource(f.src)
	srv := queueServer(t, f, src, nil)
	c := client(t)
	u := func(min int) string { return fmt.Sprintf("%s/v1/datasets/items/export.xlsx?min=%d", srv.URL, min) }
	running := open(t, c, u(1), "10.0.0.1")
	src.next(t)
	leaving := open(t, c, u(2), "10.0.0.1")
	readWithin(t, leaving.Body, make([]byte, 4), 5*time.Second)
	leaving.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := scrape(t, c, srv.URL)
		if m["exportd_waiting_exports"] == 0 && m[`exportd_cancelled_streams_total{dataset="items",format="xlsx"}`] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the waiting download did not end: %v", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
	src.release(1)
	if _, err := io.ReadAll(running.Body); err != nil {
		t.Fatal(err)
	}
	src.release(3)
	next := open(t, c, u(3), "10.0.0.1")
	if m := src.next(t); m != 3 {
		t.Fatalf("query min=%d started after the running download, want only the next download's (3)", m)
	}
	if _, err := io.ReadAll(next.Body); err != nil {
		t.Fatal(err)
	}
	src.none(t)
}

// On shutdown, waiting downloads may still run within the grace period;
// those left waiting when it is over end as failed downloads (the
// connection is aborted, never a complete-looking file) without starting
// their queries, and the server stops.
func TestQueueShutdown(t *testing.T) {
	t.Run("drained", func(t *testing.T) {
		f := newFixture(t, 100)
		src := newStepSource(f.src)
		srv := queueServer(t, f, src, func(c *server.Config) { c.ShutdownGrace = time.Minute })
		c := client(t)
		u := fmt.Sprintf("%s/v1/datasets/items/export.csv?min=1", srv.URL)
		resps := []*http.Response{open(t, c, u, "10.0.0.1"), open(t, c, u, "10.0.0.1")}
		src.next(t)
		closed := make(chan error, 1)
		go func() { closed <- srv.Close() }()
		time.Sleep(50 * time.Millisecond) // shutting down
		src.release(1)
		for i, resp := range resps {
			body, err := io.ReadAll(resp.Body)
			if err != nil || string(body) != wantCSV(0, 100) {
				t.Errorf("download %d during shutdown: %v, %d bytes", i, err, len(body))
			}
		}
		if err := <-closed; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	t.Run("grace over", func(t *testing.T) {
		f := newFixture(t, 100)
		src := newStepSource(f.src)
		srv := queueServer(t, f, src, func(c *server.Config) { c.ShutdownGrace = 300 * time.Millisecond })
		c := client(t)
		u := fmt.Sprintf("%s/v1/datasets/items/export.csv?min=1", srv.URL)
		resps := []*http.Response{open(t, c, u, "10.0.0.1"), open(t, c, u, "10.0.0.1"), open(t, c, u, "10.0.0.1")}
		src.next(t)
		err := srv.Close()
		if err == nil || !strings.Contains(err.Error(), "3 streams cancelled") {
			t.Errorf("shutdown: %v, want 3 streams cancelled", err)
		}
		for i, resp := range resps {
			body, err := io.ReadAll(resp.Body)
			if err == nil {
				t.Errorf("download %d: complete-looking after shutdown (%d bytes)", i, len(body))
			}
		}
		src.none(t)
	})
}

// Over HTTP/1.0 an uncompressed CSV download waits for its slot before
// the response starts (an end while waiting would otherwise look like a
// complete file), then streams as usual.
func TestQueueHTTP10WaitsBeforeTheResponse(t *testing.T) {
	f := newFixture(t, 100)
	src := newStepSource(f.src)
	srv := queueServer(t, f, src, nil)
	c := client(t)
	running := open(t, c, srv.URL+"/v1/datasets/items/export.csv?min=1", "10.0.0.1")
	src.next(t)
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/datasets/items/export.csv?min=1 HTTP/1.0\r\nHost: %s\r\nX-Real-IP: 10.0.0.1\r\n\r\n", srv.Addr)
	conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _ := conn.Read(make([]byte, 1)); n != 0 {
		t.Fatal("an HTTP/1.0 CSV response started while it waited for a slot")
	}
	src.release(1)
	if _, err := io.ReadAll(running.Body); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || err != nil || string(body) != wantCSV(0, 100) {
		t.Errorf("HTTP/1.0 download: %d %v %d bytes", resp.StatusCode, err, len(body))
	}
}

// A download waiting for a slot costs little memory: its headers and
// first bytes have left and its keep-alives flow, but it holds no
// compressor (about a MiB: XLSX's deflate, a text file's gzip) and no
// query. The bound, per waiting download and counting the test's client
// side too, is loose enough for any run and still far below one
// compressor.
func TestWaitingDownloadsCostLittle(t *testing.T) {
	for _, tc := range []struct{ format, magic, encoding string }{
		{"xlsx", "PK\x03\x04", ""},
		{"csv", "\x1f\x8b", "gzip"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			f := newFixture(t, 100)
			src := newStepSource(f.src)
			srv := queueServer(t, f, src, func(c *server.Config) { c.KeepAlive = 20 * time.Millisecond })
			c := client(t)
			get := func(k int) *http.Response {
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/datasets/items/export.%s?min=%d", srv.URL, tc.format, k), nil)
				req.Header.Set("X-Real-IP", "10.0.0.1")
				if tc.encoding != "" {
					req.Header.Set("Accept-Encoding", tc.encoding)
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { resp.Body.Close() })
				return resp
			}
			get(1) // runs, held before its first row
			src.next(t)
			live := func() uint64 {
				var m runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m)
				return m.HeapAlloc + m.StackInuse
			}
			before := live()
			const waiting = 32
			for k := range waiting {
				resp := get(2 + k)
				head := make([]byte, 32) // the first bytes, and more after keep-alives
				readWithin(t, resp.Body, head, 10*time.Second)
				if !strings.HasPrefix(string(head), tc.magic) {
					t.Fatalf("download %d: first bytes %q", k, head)
				}
			}
			src.none(t)
			after := live()
			if per := (int64(after) - int64(before)) / waiting; per > 256<<10 {
				t.Errorf("each waiting download holds %d KiB, want under 256 KiB", per>>10)
			} else {
				t.Logf("each waiting download holds %d KiB (server and client)", per>>10)
			}
		})
	}
}

// Background jobs run on the downloads' slots within their share, half
// the slots: with two slots and two jobs queued, one job runs and the
// other waits for it, and a download started meanwhile runs at once on
// the slot the jobs may not take; when the running job ends, the other
// one runs.
func TestJobsShareSlots(t *testing.T) {
	f := newFixture(t, 100)
	src := newStepSource(f.src)
	m := startJobs(t, t.TempDir(), f.cfg, src, nil)
	released := map[int64]bool{}
	release := func(min int64) { released[min] = true; src.release(min) }
	t.Cleanup(func() { // before the jobs stop: no job stays held
		for _, min := range []int64{100, 200, 300} {
			if !released[min] {
				src.release(min)
			}
		}
	})
	srv := queueServer(t, f, src, func(c *server.Config) {
		c.Slots = 2
		c.Jobs = m
	})
	c := client(t)
	for _, min := range []string{"100", "200"} {
		resp, body := do(t, c, "POST", srv.URL+"/v1/datasets/items/jobs", map[string]any{"format": "csv", "params": map[string]any{"min": min}})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("submit: %d %s", resp.StatusCode, body)
		}
	}
	first := src.next(t) // one job's query
	// Both jobs are taken by the node's two workers…
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, body := do(t, c, "GET", srv.URL+"/v1/jobs", nil)
		var list struct {
			Jobs []struct{ State string }
		}
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Jobs) == 2 && list.Jobs[0].State == "running" && list.Jobs[1].State == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the jobs are not both running: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	src.none(t) // … but the second waits: the jobs' share is full
	dl := open(t, c, srv.URL+"/v1/datasets/items/export.csv?min=300", "10.0.0.1")
	if m := src.next(t); m != 300 {
		t.Fatalf("query min=%d started, want the download's (300)", m)
	}
	release(300)
	if body, err := io.ReadAll(dl.Body); dl.StatusCode != 200 || err != nil || string(body) != wantCSV(29, 100) {
		t.Fatalf("download: %d %v %.100q", dl.StatusCode, err, body)
	}
	release(first)
	second := src.next(t)
	if first+second != 300 {
		t.Fatalf("job queries %d and %d, want 100 and 200", first, second)
	}
	release(second)
}

// A download named with queue= can be asked where it stands — by its own
// client only — and taken out of the queue while it waits.
func TestQueuePlace(t *testing.T) {
	f := newFixture(t, 100)
	src := newStepSource(f.src)
	srv := queueServer(t, f, src, func(c *server.Config) { c.KeepAlive = 20 * time.Millisecond })
	c := client(t)
	dl := func(min int, name, ip string) *http.Response {
		resp := open(t, c, fmt.Sprintf("%s/v1/datasets/items/export.csv?min=%d&queue=%s", srv.URL, min, name), ip)
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("download %s: %d %s", name, resp.StatusCode, b)
		}
		return resp
	}
	type place struct {
		State    string
		Position int
		Waiting  int
		Running  int
		Slots    int
	}
	ask := func(name, ip string) (int, place, []byte) {
		t.Helper()
		resp, body := do(t, c, "GET", srv.URL+"/v1/queue/"+name, nil, "X-Real-IP", ip)
		var p place
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, p, body
	}
	const a, b = "10.0.0.1", "10.0.0.2"
	a1 := dl(10, "a1", a) // runs
	src.next(t)
	b1 := dl(500, "b1", b) // runs beyond the slot: b had nothing running
	src.next(t)
	a2, a3 := dl(20, "a2", a), dl(30, "a3", a)
	b2 := dl(600, "b2", b)
	src.none(t)

	for _, tc := range []struct {
		name, ip string
		state    string
		position int
	}{
		{"a1", a, "running", 0},
		{"a2", a, "waiting", 2}, // after b2 or before it: b2 is b's first waiting
		{"a3", a, "waiting", 3},
		{"b2", b, "waiting", 2},
	} {
		status, p, body := ask(tc.name, tc.ip)
		if status != 200 || p.State != tc.state || p.Position != tc.position || p.Waiting != 3 || p.Running != 2 || p.Slots != 1 {
			t.Errorf("%s: %d %s, want %s at %d of 3 waiting, 2 running, 1 slot", tc.name, status, body, tc.state, tc.position)
		}
	}
	// Another client's download, or no such name: not found.
	for _, tc := range [][2]string{{"a2", b}, {"b2", a}, {"zz", a}} {
		if status, _, body := ask(tc[0], tc[1]); status != 404 || !strings.Contains(string(body), `"field":"id"`) {
			t.Errorf("%s asked by %s: %d %s, want 404 naming the field id", tc[0], tc[1], status, body)
		}
	}
	// A queue name must be plain.
	resp, body := do(t, c, "GET", srv.URL+"/v1/datasets/items/export.csv?queue=a%20b", nil)
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"field":"queue"`) {
		t.Errorf("queue=a b: %d %s, want 400 naming the field queue", resp.StatusCode, body)
	}

	// Taking a3 out of the queue ends its download (a failed one); a
	// running download cannot be taken out.
	if resp, body := do(t, c, "DELETE", srv.URL+"/v1/queue/a3", nil, "X-Real-IP", a); resp.StatusCode != 204 {
		t.Errorf("DELETE a3: %d %s", resp.StatusCode, body)
	}
	if _, err := io.ReadAll(a3.Body); err == nil {
		t.Error("a3's download ended cleanly after it left the queue, want a failed download")
	}
	if resp, _ := do(t, c, "DELETE", srv.URL+"/v1/queue/a1", nil, "X-Real-IP", a); resp.StatusCode != 404 {
		t.Errorf("DELETE a1 (running): %d, want 404", resp.StatusCode)
	}
	if status, _, _ := ask("a3", a); status != 404 {
		t.Errorf("a3 after it left: %d, want 404", status)
	}

	for _, min := range []int64{10, 500, 20, 600} {
		src.release(min)
	}
	for i, resp := range []*http.Response{a1, b1, a2, b2} {
		if _, err := io.ReadAll(resp.Body); err != nil {
			t.Errorf("download %d: %v", i, err)
		}
	}
	for range 2 {
		src.next(t) // a2's and b2's queries
	}
	if status, _, _ := ask("a2", a); status != 404 {
		t.Errorf("a2 after it ended: %d, want 404", status)
	}
}
