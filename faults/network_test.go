package faults

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/exportd/exportd/sourcetest"
)

// faultProxy is toxiproxy, in this process, between exportd and the
// shared PostgreSQL server.
type faultProxy struct {
	t     *testing.T
	proxy *toxiproxy.Proxy
}

// startFaultProxy starts a TCP proxy to upstream (host:port) on a free
// loopback port; it is stopped when the test ends.
func startFaultProxy(t *testing.T, upstream string) *faultProxy {
	t.Helper()
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(api, "db", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return &faultProxy{t: t, proxy: p}
}

// add adds a toxic (toxiproxy's JSON: type, stream, attributes).
func (f *faultProxy) add(toxic string) {
	f.t.Helper()
	if _, err := f.proxy.Toxics.AddToxicJson(strings.NewReader(toxic)); err != nil {
		f.t.Fatalf("toxic %s: %v", toxic, err)
	}
}

// clear removes every toxic.
func (f *faultProxy) clear() { f.proxy.Toxics.ResetToxics(f.t.Context()) }

const pgNetworkDatasets = `
datasets:
  crawl:
    sql: SELECT n, pg_sleep(0.002)::text AS s FROM generate_series(1, 1500) AS n
    columns: [{name: n, type: int}, {name: s, type: string}]
    timeout: 4s
  small:
    sql: SELECT n FROM generate_series(1, 1000) AS n
    columns: [{name: n, type: int}]
    timeout: 4s
`

// mariaNetworkDatasets pads the rows, so that MariaDB's 16 KiB network
// buffer fills, and sends, every few dozen rows.
const mariaNetworkDatasets = `
datasets:
  crawl:
    sql: SELECT seq AS n, SLEEP(0.002) AS s, REPEAT('x', 200) AS pad FROM seq_1_to_1500
    columns: [{name: n, type: int}, {name: s, type: int}, {name: pad, type: string}]
    timeout: 4s
  small:
    sql: SELECT seq AS n FROM seq_1_to_1000
    columns: [{name: n, type: int}]
    timeout: 4s
`

// The network between exportd and the database (PostgreSQL, MariaDB)
// through a real TCP fault proxy: latency only slows an export down; a reset connection fails the
// stream at once; a black hole (bytes dropped, the connection left open)
// fails it within the dataset's timeout plus a few seconds, and /readyz
// answers 503 meanwhile. Every failure reaches the client as a failed
// download; afterwards exports succeed again, and no goroutine or
// connection is left behind.
func TestNetworkFaults(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		testNetworkFaults(t, sourcetest.IntegrationURL(t, "EXPORTD_POSTGRES_URL"), pgNetworkDatasets)
	})
	t.Run("mariadb", func(t *testing.T) {
		testNetworkFaults(t, sourcetest.IntegrationURL(t, "EXPORTD_MYSQL_URL"), mariaNetworkDatasets)
	})
}

func testNetworkFaults(t *testing.T, dbURL, datasets string) {
	// Checked last: after the server, the source and the proxy have
	// stopped (cleanups run in reverse).
	// A toxic's pipe of the fault proxy (the test's harness, not
	// exportd) can stay blocked on its link's channel for a while after
	// the proxy stopped.
	ignore := []goleak.Option{goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*ToxicStub).Run")}
	t.Cleanup(func() { goleak.VerifyNone(t, ignore...) })
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	fp := startFaultProxy(t, u.Host)
	u.Host = fp.proxy.Listen
	// PostgreSQL: the sessions of this test's pool, told apart in
	// pg_stat_activity.
	app := sourcetest.UniqueName("exportd_faults")
	postgres := u.Scheme == "postgres"
	if postgres {
		qv := u.Query()
		qv.Set("application_name", app)
		u.RawQuery = qv.Encode()
	}
	r := startRig(t, u.String(), datasets, "")

	// stream starts a CSV download of crawl and reads its first rows.
	stream := func(t *testing.T) (*bufio.Reader, func()) {
		t.Helper()
		resp, err := http.Get(r.srv.URL + "/v1/datasets/crawl/export.csv")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		br := bufio.NewReader(resp.Body)
		for i := range 50 {
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatalf("after %d lines: %v", i, err)
			}
		}
		return br, func() { resp.Body.Close() }
	}
	// fails reads the rest of a download and checks that it fails within d.
	fails := func(t *testing.T, br *bufio.Reader, d time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		done := make(chan error, 1)
		go func() { _, err := io.Copy(io.Discard, br); done <- err }()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("the download ended cleanly: a truncated file looks complete")
			}
			t.Logf("the download failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
		case <-time.After(d):
			t.Fatalf("the download neither ended nor failed within %v", d)
		}
		return time.Since(start)
	}
	whole := func(t *testing.T) time.Duration {
		t.Helper()
		start := time.Now()
		code, body := r.get(t, "/v1/datasets/small/export.csv")
		if code != 200 || strings.Count(string(body), "\n") != 1001 {
			t.Fatalf("export: %d, %d lines", code, strings.Count(string(body), "\n"))
		}
		return time.Since(start)
	}

	t.Run("latency", func(t *testing.T) {
		fp.add(`{"type": "latency", "stream": "downstream", "attributes": {"latency": 300}}`)
		defer fp.clear()
		if took := whole(t); took < 300*time.Millisecond {
			t.Fatalf("the export took %v under 300 ms of latency: the proxy is not in the way", took)
		} else {
			t.Logf("export under 300 ms latency: whole in %v", took.Round(time.Millisecond))
		}
	})

	t.Run("reset", func(t *testing.T) {
		br, closeBody := stream(t)
		defer closeBody()
		fp.add(`{"type": "reset_peer", "stream": "downstream", "attributes": {"timeout": 0}}`)
		fails(t, br, 5*time.Second)
		fp.clear()
		whole(t)
	})

	t.Run("black hole", func(t *testing.T) {
		br, closeBody := stream(t)
		defer closeBody()
		// Bytes are dropped both ways and connections stay open, as when
		// a firewall drops packets or the database's host is gone.
		fp.add(`{"name": "down", "type": "timeout", "stream": "downstream", "attributes": {"timeout": 0}}`)
		fp.add(`{"name": "up", "type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}}`)
		// The dataset's timeout is 4 s: the statement timeout the database
		// cannot report, plus 2 s of grace, plus the 3 s the cancel
		// request is given before the connection is closed.
		took := fails(t, br, 15*time.Second)
		start := time.Now()
		code := r.readyz(t)
		t.Logf("/readyz during the black hole: %d after %v", code, time.Since(start).Round(time.Millisecond))
		if code != 503 {
			t.Fatalf("/readyz: %d during the black hole", code)
		}
		if v := r.metric(t, `exportd_exports_total{dataset="crawl",format="csv",outcome="timeout"}`); v != 1 {
			t.Errorf("exportd_exports_total{crawl,csv,timeout} = %v, want 1 (the stream failed after %v)", v, took)
		}
		fp.clear()
		whole(t)
		if code := r.readyz(t); code != 200 {
			t.Fatalf("/readyz: %d after the black hole", code)
		}
	})

	if !postgres {
		r.srv.Close()
		r.src.Close()
		return // goleak checks that the driver's goroutines have ended
	}
	// No query is left running on the database, and once the server and
	// its source are closed, no session of theirs either.
	sessions := func(where string) int {
		t.Helper()
		conn, err := pgx.Connect(t.Context(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		var n int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`+where, app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor(t, 10*time.Second, "no query of ours left running", func() bool { return sessions(" AND state = 'active'") == 0 })
	r.srv.Close()
	r.src.Close()
	waitFor(t, 10*time.Second, "no session of ours left", func() bool { return sessions("") == 0 })
}
