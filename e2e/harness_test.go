package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/exportd/exportd/internal/nginxtest"
)

// nginxBin is the nginx binary, from EXPORTD_NGINX (.ci/run sets it to
// Debian's /usr/sbin/nginx).
var nginxBin = os.Getenv("EXPORTD_NGINX")

// need skips the test when a component is missing, or fails it when
// EXPORTD_REQUIRE_INTEGRATION=1.
func need(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("EXPORTD_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// pgURL returns EXPORTD_POSTGRES_URL, with the standard table ready.
func pgURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("EXPORTD_POSTGRES_URL")
	if u == "" {
		need(t, "EXPORTD_POSTGRES_URL is not set")
	}
	if nginxBin == "" {
		need(t, "EXPORTD_NGINX is not set")
	} else if _, err := os.Stat(nginxBin); err != nil {
		need(t, "nginx: %v", err)
	}
	tableOnce.Do(func() { tableErr = makeTable(u) })
	if tableErr != nil {
		t.Fatalf("postgres: %v", tableErr)
	}
	return u
}

var (
	tableOnce sync.Once
	tableErr  error
)

// tableRows is the size of e2e_accounts, the standard dataset of
// ../../shared/BENCHMARKS.md.
const tableRows = 1_000_000

func makeTable(url string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM e2e_accounts`).Scan(&n); err == nil && n == tableRows {
		return nil
	}
	_, err = conn.Exec(ctx, fmt.Sprintf(`
DROP TABLE IF EXISTS e2e_accounts;
CREATE TABLE e2e_accounts AS
SELECT i + 1 AS id,
       substr('김이박최정강조윤장임한오서신권황안송전홍', (i %% 20)::int + 1, 1) ||
       substr('민서지하도예수시주현유은채윤승다', ((i / 20) %% 16)::int + 1, 1) ||
       substr('준윤호연아린원진우빈희은율현영성', ((i / 320) %% 16)::int + 1, 1) AS name,
       'user' || i || '@example.com' AS email,
       timestamp '2020-01-01 00:00:00' + (i * 37) * interval '1 minute' AS signup_at,
       ((i * 7919) %% 10000) / 100.0::float8 AS score_avg,
       ((i * 31) %% 5000)::int AS visits,
       i %% 3 <> 0 AS active,
       (((i * 104729) %% 10000000) / 100.0)::numeric(12, 2) AS balance,
       CASE WHEN i %% 5 = 0 THEN NULL
            WHEN i %% 7 = 1 THEN 'R&D, priority ' || i
            WHEN i %% 11 = 2 THEN 'said "hi" #' || i
            WHEN i %% 13 = 3 THEN E'line1\nline2 #' || i
            ELSE '메모 ' || i END AS note,
       (ARRAY['standard', 'silver', 'gold', 'platinum', 'dormant'])[((i / 7) %% 5)::int + 1] AS category
  FROM generate_series(0::bigint, %d - 1) AS i;
ALTER TABLE e2e_accounts ADD PRIMARY KEY (id);
ANALYZE e2e_accounts;`, tableRows))
	return err
}

const datasetsYAML = `
timezone: UTC
# Requests from this machine (the tests, and nginx) need no credentials;
# e2e/auth_test.go replaces this block to test access control.
auth:
  anonymous: {roles: [admin], from: [127.0.0.0/8]}
connections:
  pg: {url: "${EXPORTD_E2E_PG}"}
datasets:
  accounts:
    sql: |
      SELECT id, name, email, signup_at, score_avg, visits, active, balance, note, category
        FROM e2e_accounts WHERE id <= :rows ORDER BY id
    params: [{name: rows, type: int, min: 1, default: 1000000}]
    columns:
      - {name: id, type: int}
      - {name: name, type: string}
      - {name: email, type: string}
      - {name: signup_at, type: datetime, format: "yyyy-mm-dd hh:mm:ss"}
      - {name: score_avg, type: float}
      - {name: visits, type: int}
      - {name: active, type: bool}
      - {name: balance, type: float, format: "#,##0.00"}
      - {name: note, type: string}
      - {name: category, type: string}
    sheet: Sheet1
    key: id
  lookup:
    sql: SELECT id, email FROM e2e_accounts WHERE email = :email ORDER BY id
    params: [{name: email, type: string, required: true}]
    columns: [{name: id, type: int}, {name: email, type: string}]
  slow:
    sql: SELECT n FROM (SELECT pg_sleep(:sleep)) AS s, generate_series(1, 1000) AS n
    params: [{name: sleep, type: float, default: 10}]
    columns: [{name: n, type: int}]
  failing:
    sql: SELECT id, 1 / (CASE WHEN id = 200000 THEN 0 ELSE 1 END) AS v FROM e2e_accounts ORDER BY id
    columns: [{name: id, type: int}, {name: v, type: int}]
  report:
    params:
      - {name: rows, type: int, min: 1, default: 1000}
      - {name: sleep, type: float, default: 5}
      - {name: fail_at, type: int, default: 0}
    sheets:
      - name: 회원
        sql: SELECT id, name, score_avg FROM e2e_accounts WHERE id <= :rows ORDER BY id
        columns: [{name: id, type: int}, {name: name, header: 이름}, {name: score_avg, header: 평균, type: float, total: average}]
      - name: 느린 합계
        sql: |
          SELECT n, 1 / (CASE WHEN n = :fail_at THEN 0 ELSE 1 END) AS one, n * 2 AS twice
            FROM (SELECT pg_sleep(:sleep)) AS s, generate_series(1, 1000) AS n
        columns: [{name: n, type: int}, {name: one, type: int, total: sum}, {name: twice, type: int, total: sum}]
      - name: 분류별
        sql: SELECT category, count(*) AS n FROM e2e_accounts WHERE id <= :rows GROUP BY category ORDER BY category
        columns: [{name: category}, {name: n, type: int, total: sum}]
  crawl:
    sql: |
      SELECT /* e2e-crawl */ n, pg_sleep(0.001)::text AS s FROM generate_series(1, 1000000) AS n
    columns: [{name: n, type: int}, {name: s, type: string}]
`

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{}
)

// buildTool builds the main package pkg (relative to the module root) once,
// without the race detector, and returns the binary's path.
func buildTool(t *testing.T, name, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "exportd-e2e-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = dir
	}
	p := filepath.Join(buildDir, name)
	cmd := exec.Command("go", "build", "-o", p, pkg)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	built[name] = p
	return p
}

// exportdBin builds the exportd binary once, without the race detector.
func exportdBin(t *testing.T) string { return buildTool(t, "exportd", "./cmd/exportd") }

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// exportd is a running exportd process.
type exportd struct {
	Addr string
	URL  string
	cmd  *exec.Cmd
	log  *os.File
}

// startExportd runs `exportd serve` on the e2e datasets with extra flags.
func startExportd(t *testing.T, flags ...string) *exportd {
	t.Helper()
	pgURL(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "datasets.yaml")
	if err := os.WriteFile(cfg, []byte(datasetsYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	logf, err := os.Create(filepath.Join(dir, "exportd.log"))
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--config", cfg, "--addr", addr, "--log-format", "json", "--trusted-proxies", "127.0.0.1/32"}, flags...)
	cmd := exec.Command(exportdBin(t), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// pgxpool's default of max(4, CPUs) connections would make all but
	// four of 40 concurrent exports wait, silent, for a connection.
	sep := "?"
	if strings.Contains(os.Getenv("EXPORTD_POSTGRES_URL"), "?") {
		sep = "&"
	}
	cmd.Env = append(os.Environ(), "EXPORTD_E2E_PG="+os.Getenv("EXPORTD_POSTGRES_URL")+sep+"pool_max_conns=48")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e := &exportd{Addr: addr, URL: "http://" + addr, cmd: cmd, log: logf}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("exportd log:\n%s", tail(string(b), 4000))
		}
	})
	waitHTTP(t, e.URL+"/healthz")
	return e
}

// peakRSS returns the process's peak resident set size in KiB.
func (e *exportd) peakRSS(t *testing.T) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	return 0
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not up: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startNginx runs nginx with the shipped deploy/nginx/exportd.conf,
// pointed at upstream and with proxy_read_timeout 3s for exports, and
// returns the base URL of exportd through it (…/exports).
func startNginx(t *testing.T, upstream string) string {
	t.Helper()
	n, err := nginxtest.Start(nginxtest.Options{
		Bin: nginxBin, Conf: "../deploy/nginx/exportd.conf", Upstream: upstream, Dir: t.TempDir(), AccessLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			t.Logf("nginx error.log:\n%s", n.ErrorLog(3000))
		}
	})
	base := "http://" + n.Addr + "/exports"
	waitHTTP(t, base+"/healthz")
	return base
}
