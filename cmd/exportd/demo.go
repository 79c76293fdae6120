package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/exportd/exportd/server"

	_ "modernc.org/sqlite" // the embedded default database
)

type demoCmd struct {
	Dir     string `help:"Directory for demo.db and datasets.yaml." default:"exportd-demo" type:"path"`
	Rows    int    `help:"Rows in the large accounts table." default:"1000000"`
	Addr    string `help:"Address to serve the demo on." default:"127.0.0.1:8080"`
	NoServe bool   `help:"Prepare the data and the datasets file, then exit."`
}

func (c *demoCmd) Run(ctx context.Context) error {
	if c.Rows < 0 {
		return usageError{errors.New("--rows must not be negative")}
	}
	cfgPath, err := prepareDemo(ctx, c.Dir, c.Rows, os.Stderr)
	if err != nil {
		return err
	}
	if c.NoServe {
		fmt.Printf("Demo data is ready in %s.\n\n  exportd export --config %s --dataset accounts -o accounts.xlsx\n"+
			"  exportd export --config %[2]s --dataset member_scores --roles admin --purpose score_review --purpose-text 'demo: checking the scores export' -o 회원점수.xlsx\n",
			c.Dir, cfgPath)
		return nil
	}
	base := "http://" + c.Addr
	fmt.Printf(`Demo data is ready in %[1]s; serving it on %[2]s (Ctrl-C stops).
Open %[2]s/ in a browser, or:

  curl -s --compressed '%[2]s/v1/datasets/accounts/export.csv' | head
  curl -s %[2]s/v1/datasets

member_scores holds personal data: state a purpose (recorded in the audit trail).
From this machine you are the anonymous admin (names, e-mails and phones in full):

  curl -o 회원점수.xlsx '%[2]s/v1/datasets/member_scores/export.xlsx?from=2019-01-01&purpose=score_review&purpose_text=demo+of+a+personal+export'

To see them masked, export as the support role with a token:

  exportd token create --config %[3]s --name demo-support --roles support
  curl -o 회원점수_마스킹.csv -H 'Authorization: Bearer TOKEN' '%[2]s/v1/datasets/member_scores/export.csv?purpose=member_support&purpose_text=demo+of+masking+by+role'

Or without the server:  exportd export --config %[3]s --dataset accounts -o accounts.xlsx
`, c.Dir, base, cfgPath)
	serve := serveCmd{Config: cfgPath, Addr: c.Addr, KeepAlive: server.DefaultKeepAlive, WriteTimeout: time.Minute,
		MaxExports: 4096, MaxPerClient: 1024, ShutdownGrace: 30 * time.Second, LogFormat: "text", LogLevel: "info",
		jobFlags: jobFlags{Jobs: true, JobsStorage: "file://" + filepath.Join(c.Dir, "results"), JobsTTL: 24 * time.Hour,
			JobsWorkers: 2, JobsTimeout: 2 * time.Hour, JobsPoll: time.Second, JobsMaxAttempt: 3, JobsBackoff: time.Second},
		LinkSecretFile: filepath.Join(c.Dir, "jobs.secret")}
	return serve.Run(ctx)
}

// demoVersion changes whenever the demo schema or data change, so an old
// demo database is rebuilt rather than reused.
const demoVersion = 2

// prepareDemo creates dir/demo.db and dir/datasets.yaml unless a demo with
// the same version and row count is already there. It returns the
// datasets file's path.
func prepareDemo(ctx context.Context, dir string, rows int, log *os.File) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	dbPath := filepath.Join(dir, "demo.db")
	cfgPath := filepath.Join(dir, "datasets.yaml")
	if demoReady(ctx, dbPath, rows) {
		if _, err := os.Stat(cfgPath); err == nil {
			return cfgPath, nil
		}
	} else {
		start := time.Now()
		fmt.Fprintf(log, "creating demo data in %s (%d account rows)…\n", dbPath, rows)
		if err := createDemoDB(ctx, dbPath, rows); err != nil {
			return "", fmt.Errorf("demo: %w", err)
		}
		fmt.Fprintf(log, "demo data created in %s\n", time.Since(start).Round(time.Millisecond))
	}
	if err := os.WriteFile(cfgPath, []byte(demoDatasets), 0o644); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	if err := demoSecret(filepath.Join(dir, "audit.key"), "the demo's audit trail key (exportd audit verify needs it)"); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	if err := demoSecret(filepath.Join(dir, "jobs.secret"), ""); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return cfgPath, nil
}

// demoSecret writes a random 32-byte key in hex to path once, after a
// comment line when comment is given: the audit trail's HMAC key
// (privacy.audit.key_file of the demo's datasets file; a new key for an
// existing trail would make its records fail verification) and the
// key that signs job download links (--link-secret-file, which takes
// the file's one line; kept, links stay valid when the demo restarts).
func demoSecret(path, comment string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	rand.Read(key)
	if comment != "" {
		_, err = fmt.Fprintf(f, "# %s; generated once\n", comment)
	}
	if err == nil {
		_, err = fmt.Fprintf(f, "%s\n", hex.EncodeToString(key))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

func demoReady(ctx context.Context, path string, rows int) bool {
	if _, err := os.Stat(path); err != nil {
		return false
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return false
	}
	defer db.Close()
	var v, n int
	err = db.QueryRowContext(ctx, `SELECT version, account_rows FROM demo_meta`).Scan(&v, &n)
	return err == nil && v == demoVersion && n == rows
}

func createDemoDB(ctx context.Context, path string, rows int) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	db, err := sql.Open("sqlite", "file:"+tmp+"?_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	stmts := append([]string{}, demoSchema...)
	stmts = append(stmts, fmt.Sprintf(demoAccounts, rows), fmt.Sprintf(`INSERT INTO demo_meta VALUES (%d, %d)`, demoVersion, rows))
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("create demo database: %w", err)
		}
	}
	if err := db.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

var demoSchema = []string{
	`CREATE TABLE demo_meta (version INTEGER NOT NULL, account_rows INTEGER NOT NULL)`,
	`CREATE TABLE members (
		id        INTEGER PRIMARY KEY,
		name      TEXT NOT NULL,
		email     TEXT NOT NULL,
		phone     TEXT NOT NULL,
		branch    TEXT NOT NULL,
		grade     TEXT NOT NULL,
		joined_on DATE NOT NULL
	)`,
	`CREATE TABLE results (
		id        INTEGER PRIMARY KEY,
		member_id INTEGER NOT NULL REFERENCES members(id),
		subject   TEXT NOT NULL,
		score     REAL NOT NULL,
		taken_at  DATETIME NOT NULL
	)`,
	// 4,300 members: Korean names from syllable tables, like the story's admin page.
	`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 4299)
	INSERT INTO members
	SELECT i + 1,
		substr('김이박최정강조윤장임한오서신권황안송전홍', (i * 7) % 20 + 1, 1) ||
		substr('민서지하도예수시주현유은채윤승다', (i / 3) % 16 + 1, 1) ||
		substr('준윤호연아린원진우빈희은율현영성', (i * 13 / 7) % 16 + 1, 1),
		'member' || (i + 1) || '@example.com',
		'010-' || printf('%04d', (i * 7919) % 10000) || '-' || printf('%04d', (i * 104729) % 10000),
		CASE i % 5 WHEN 0 THEN '서울 본점' WHEN 1 THEN '부산 지점' WHEN 2 THEN '대구 지점' WHEN 3 THEN '광주 지점' ELSE '대전 지점' END,
		CASE WHEN i % 10 = 0 THEN 'gold' WHEN i % 10 < 4 THEN 'silver' ELSE 'bronze' END,
		date('2019-01-01', '+' || ((i * 37) % 2190) || ' days')
	FROM n`,
	// Ten test results per member: the average is computed by the database.
	`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 42999)
	INSERT INTO results
	SELECT i + 1, i / 10 + 1,
		CASE i % 5 WHEN 0 THEN '국어' WHEN 1 THEN '영어' WHEN 2 THEN '수학' WHEN 3 THEN '과학' ELSE '사회' END,
		40 + ((i * 7919) % 6001) / 100.0,
		datetime('2024-01-01 09:00:00', '+' || ((i * 7) % 365) || ' days', '+' || ((i * 13) % 480) || ' minutes')
	FROM n`,
	`CREATE INDEX results_member ON results(member_id)`,
	// The standard benchmark dataset (../shared/BENCHMARKS.md), row i = id - 1.
	`CREATE TABLE accounts (
		id        INTEGER PRIMARY KEY,
		name      TEXT NOT NULL,
		email     TEXT NOT NULL,
		signup_at DATETIME NOT NULL,
		score_avg REAL NOT NULL,
		visits    INTEGER NOT NULL,
		active    BOOLEAN NOT NULL,
		balance   REAL NOT NULL,
		note      TEXT,
		category  TEXT NOT NULL
	)`,
}

const demoAccounts = `WITH RECURSIVE n(i) AS (SELECT 0 WHERE %[1]d > 0 UNION ALL SELECT i + 1 FROM n WHERE i < %[1]d - 1)
	INSERT INTO accounts
	SELECT i + 1,
		substr('김이박최정강조윤장임한오서신권황안송전홍', i %% 20 + 1, 1) ||
		substr('민서지하도예수시주현유은채윤승다', (i / 20) %% 16 + 1, 1) ||
		substr('준윤호연아린원진우빈희은율현영성', (i / 320) %% 16 + 1, 1),
		'user' || i || '@example.com',
		datetime('2020-01-01 00:00:00', '+' || (i * 37) || ' minutes'),
		((i * 7919) %% 10000) / 100.0,
		(i * 31) %% 5000,
		i %% 3 != 0,
		((i * 104729) %% 10000000) / 100.0,
		CASE WHEN i %% 5 = 0 THEN NULL
			WHEN i %% 7 = 1 THEN 'R&D, priority ' || i
			WHEN i %% 11 = 2 THEN 'said "hi" #' || i
			WHEN i %% 13 = 3 THEN 'line1' || char(10) || 'line2 #' || i
			ELSE '메모 ' || i END,
		CASE (i / 7) %% 5 WHEN 0 THEN 'standard' WHEN 1 THEN 'silver' WHEN 2 THEN 'gold' WHEN 3 THEN 'platinum' ELSE 'dormant' END
	FROM n`

const demoDatasets = `# exportd demo datasets: written by "exportd demo"; edit freely.
timezone: Asia/Seoul
connections:
  demo:
    url: sqlite:demo.db
# Personal data (member_scores): every export states a purpose, is masked
# by role and is recorded in the audit trail (exportd-audit.db beside this
# file, signed with audit.key):
#   exportd audit verify --db sqlite:exportd-audit.db --key-file audit.key
privacy:
  purposes:
    member_support: 회원 문의 응대
    score_review: 성적 검토
    internal_audit: 내부 감사
    legal_request: 법적 요청 대응
  purpose_min_length: 10
  audit:
    key_file: audit.key

datasets:
  member_scores:
    title: 회원별 평균 점수
    description: Members who joined in a period, with their number of tests and average score, computed by the database in one aggregate query. Holds personal data.
    connection: demo
    personal: true
    encryption: optional         # password-protected XLSX from a background job
    marking: true                # downloader and time in the printed header/footer
    sql: |
      SELECT m.id, m.name, m.email, m.phone, m.branch, m.grade, m.joined_on,
             count(r.id) AS tests, avg(r.score) AS score_avg, max(r.taken_at) AS last_test
        FROM members m LEFT JOIN results r ON r.member_id = m.id
       WHERE m.joined_on BETWEEN :from AND :to
         AND m.grade IN (:grades)
       GROUP BY m.id
       ORDER BY m.id
    params:
      - {name: from, type: date, label: 가입일(부터), default: "2019-01-01"}
      - {name: to, type: date, label: 가입일(까지), default: "2030-12-31"}
      - {name: grades, type: enum, list: true, label: 등급, values: [gold, silver, bronze], default: [gold, silver, bronze]}
    columns:
      - {name: id, header: 회원번호, type: int, width: 10}
      - {name: name, header: 이름, type: string, width: 10, personal: true, mask: name}
      - {name: email, header: 이메일, type: string, width: 28, personal: true, mask: email}
      - {name: phone, header: 전화번호, type: string, width: 15, personal: true, mask: phone}
      - {name: branch, header: 지점, type: string, width: 12}
      - {name: grade, header: 등급, type: string, width: 8}
      - {name: joined_on, header: 가입일, type: date, format: yyyy-mm-dd, width: 12}
      - {name: tests, header: 응시 횟수, type: int, width: 10}
      - {name: score_avg, header: 평균 점수, type: float, format: "0.00", width: 10}
      - {name: last_test, header: 최근 응시, type: datetime, format: "yyyy-mm-dd hh:mm", width: 18}
    # name, email and phone are personal: admin sees them in full, support
    # masked (김*준, me****@example.com, 010-****-5678); other roles not at all.
    access:
      admin: {all: full}
      support: {all: masked}
    sheet: 회원 점수
    filename: 회원점수_{from}_{to}
    row_limit: 100000
    timeout: 60s

  results:
    title: 시험 결과
    description: Every test result taken in a period.
    connection: demo
    sql: |
      SELECT r.id, r.member_id, m.name, r.subject, r.score, r.taken_at
        FROM results r JOIN members m ON m.id = r.member_id
       WHERE r.taken_at >= :from AND r.taken_at < :to
       ORDER BY r.id
    params:
      - {name: from, type: datetime, label: 응시일시(부터), default: "2024-01-01 00:00"}
      - {name: to, type: datetime, label: 응시일시(까지), default: "2025-01-01 00:00"}
    columns:
      - {name: id, header: 번호, type: int, width: 8}
      - {name: member_id, header: 회원번호, type: int, width: 10}
      - {name: name, header: 이름, type: string, width: 10}
      - {name: subject, header: 과목, type: string, width: 8}
      - {name: score, header: 점수, type: float, format: "0.00", width: 8}
      - {name: taken_at, header: 응시일시, type: datetime, format: "yyyy-mm-dd hh:mm", width: 18}
    sheet: 시험 결과
    filename: 시험결과
    row_limit: 100000

  # Several sheets in one workbook: three queries, run one after the
  # other into one streamed file, with totals rows (SUBTOTAL formulas).
  # CSV, TSV and JSON Lines give a ZIP of one file per sheet; sheet=NAME
  # gives one sheet alone.
  score_report:
    title: 성적 보고서
    description: Averages per member, every test result and branch totals of a period, in one workbook of three sheets; CSV, TSV and JSON Lines give a ZIP of one file per sheet.
    connection: demo
    params:
      - {name: from, type: datetime, label: 응시일시(부터), default: "2024-01-01 00:00"}
      - {name: to, type: datetime, label: 응시일시(까지), default: "2025-01-01 00:00"}
    total_label: 합계
    sheets:
      - name: 회원별 평균
        sql: |
          SELECT m.id, m.branch, m.grade, count(r.id) AS tests, avg(r.score) AS score_avg
            FROM members m JOIN results r ON r.member_id = m.id
           WHERE r.taken_at >= :from AND r.taken_at < :to
           GROUP BY m.id
           ORDER BY m.id
        columns:
          - {name: id, header: 회원번호, type: int, width: 10}
          - {name: branch, header: 지점, type: string, width: 12}
          - {name: grade, header: 등급, type: string, width: 8}
          - {name: tests, header: 응시 횟수, type: int, width: 10, total: sum}
          - {name: score_avg, header: 평균 점수, type: float, format: "0.00", width: 10, total: average}
      - name: 시험 결과
        sql: |
          SELECT r.id, r.member_id, r.subject, r.score, r.taken_at
            FROM results r
           WHERE r.taken_at >= :from AND r.taken_at < :to
           ORDER BY r.id
        columns:
          - {name: id, header: 번호, type: int, width: 8}
          - {name: member_id, header: 회원번호, type: int, width: 10}
          - {name: subject, header: 과목, type: string, width: 8}
          - {name: score, header: 점수, type: float, format: "0.00", width: 8, total: average}
          - {name: taken_at, header: 응시일시, type: datetime, format: "yyyy-mm-dd hh:mm", width: 18}
      - name: 지점별 합계
        sql: |
          SELECT m.branch, count(DISTINCT m.id) AS members, count(r.id) AS tests, sum(r.score) AS score_sum
            FROM members m JOIN results r ON r.member_id = m.id
           WHERE r.taken_at >= :from AND r.taken_at < :to
           GROUP BY m.branch
           ORDER BY m.branch
        columns:
          - {name: branch, header: 지점, type: string, width: 12}
          - {name: members, header: 회원 수, type: int, width: 10, total: sum}
          - {name: tests, header: 응시 횟수, type: int, width: 10, total: sum}
          - {name: score_sum, header: 점수 합계, type: float, format: "#,##0.00", width: 14, total: sum}
    filename: 성적보고서
    row_limit: 200000

  accounts:
    title: Accounts (large)
    description: The large accounts table (the standard benchmark dataset), optionally filtered by category.
    connection: demo
    sql: |
      SELECT id, name, email, signup_at, score_avg, visits, active, balance, note, category
        FROM accounts
       WHERE category IN (:categories)
       ORDER BY id
    params:
      - {name: categories, type: enum, list: true, label: Category, values: [standard, silver, gold, platinum, dormant], default: [standard, silver, gold, platinum, dormant]}
    columns:
      - {name: id, type: int, width: 10}
      - {name: name, type: string, width: 10}
      - {name: email, type: string, width: 26}
      - {name: signup_at, type: datetime, format: "yyyy-mm-dd hh:mm:ss", width: 20}
      - {name: score_avg, type: float, width: 10}
      - {name: visits, type: int, width: 8}
      - {name: active, type: bool, width: 8}
      - {name: balance, type: float, format: "#,##0.00", width: 14}
      - {name: note, type: string, width: 24}
      - {name: category, type: string, width: 10}
    sheet: Sheet1
    filename: accounts
    row_limit: 2000000
    key: id

# Access control: without credentials, a request from this machine is the
# anonymous principal with the admin role; any other address gets 401.
# Add tokens with "exportd token create --config datasets.yaml --name NAME --roles admin".
auth:
  anonymous: {roles: [admin], from: [127.0.0.0/8, "::1/128"]}
`
