package server_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/datasets"

	"github.com/xuri/excelize/v2"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/connect"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/sourcetest"
)

const privacyYAML = `
connections:
  main: {url: "%s"}
privacy:
  purposes: {member_support: 회원 문의 응대, audit: 내부 감사}
  purpose_min_length: 10
  audit: {key_file: audit.key}
datasets:
  people:
    personal: true
    encryption: optional
    marking: true
    sql: SELECT id, name, email, phone, score FROM %s ORDER BY id
    columns:
      - {name: id, type: int}
      - {name: name, personal: true, mask: name}
      - {name: email, personal: true, mask: email}
      - {name: phone, personal: true, mask: phone}
      - {name: score, type: float}
    access:
      admin: {all: full}
      support: {name: masked, email: masked}
`

// The members of the privacy tests, as stored and as the support role
// sees them (name and email masked, phone left out).
var (
	peopleFull = [][]string{
		{"1", "김민준", "user12@example.com", "010-1234-5678", "87.5"},
		{"2", "남궁민수", "ab@example.org", "010-9876-5432", "92"},
		{"3", "John Smith", "john.smith@example.com", "02-555-0100", "70.25"},
	}
	peopleSupport = [][]string{
		{"1", "김*준", "us****@example.com", "87.5"},
		{"2", "남**수", "a*@example.org", "92"},
		{"3", "J*** S****", "jo********@example.com", "70.25"},
	}
)

// privacyFixture is a server with access control and an audit trail over
// a people table, on SQLite or PostgreSQL.
type privacyFixture struct {
	url    string
	trail  *audit.Store
	tokens *auth.Store
	db     *sql.DB // the trail's database, for the tampering tests
	table  string  // the trail's table
	keyDir string
}

type privacyBackend struct {
	name string
	// setup creates the people table and returns the connection URL and
	// the table's name, and the audit database URL and table.
	setup func(t *testing.T, dir string) (srcURL, people, auditURL, auditTable string, auditDB *sql.DB)
}

func privacyBackends() []privacyBackend {
	insert := func(t *testing.T, db *sql.DB, table string) {
		t.Helper()
		if _, err := db.Exec(`CREATE TABLE ` + table + ` (id INTEGER PRIMARY KEY, name TEXT, email TEXT, phone TEXT, score DOUBLE PRECISION)`); err != nil {
			t.Fatal(err)
		}
		for _, r := range peopleFull {
			if _, err := db.Exec(`INSERT INTO ` + table + ` VALUES (` + r[0] + `, '` + r[1] + `', '` + r[2] + `', '` + r[3] + `', ` + r[4] + `)`); err != nil {
				t.Fatal(err)
			}
		}
	}
	return []privacyBackend{
		{"sqlite", func(t *testing.T, dir string) (string, string, string, string, *sql.DB) {
			db, err := sql.Open("sqlite", filepath.Join(dir, "people.db"))
			if err != nil {
				t.Fatal(err)
			}
			insert(t, db, "people")
			db.Close()
			adb, err := sql.Open("sqlite", filepath.Join(dir, "audit.db")+"?_pragma=busy_timeout(10000)")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { adb.Close() })
			return "sqlite:people.db", "people", "sqlite:" + filepath.Join(dir, "audit.db"), audit.DefaultTable, adb
		}},
		{"postgres", func(t *testing.T, dir string) (string, string, string, string, *sql.DB) {
			u := sourcetest.IntegrationURL(t, "EXPORTD_POSTGRES_URL")
			db, err := sql.Open("pgx", u)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			people, trail := sourcetest.UniqueName("people"), sourcetest.UniqueName("exportd_audit")
			insert(t, db, people)
			t.Cleanup(func() {
				for _, tbl := range []string{people, trail, trail + "_head"} {
					db.Exec("DROP TABLE IF EXISTS " + tbl)
				}
			})
			return u, people, u, trail, db
		}},
	}
}

func newPrivacyFixture(t *testing.T, b privacyBackend, withJobs bool) *privacyFixture {
	t.Helper()
	return newPrivacyFixtureWith(t, b, privacyOptions{jobs: withJobs})
}

// privacyOptions change the server of newPrivacyFixtureWith.
type privacyOptions struct {
	jobs     bool
	datasets string                             // more datasets, appended to privacyYAML's ({people} is the people table)
	log      io.Writer                          // the server's and the jobs' text log and the trail's JSON lines; discarded when nil
	server   func(dir string, c *server.Config) // last changes to the server's Config
}

func newPrivacyFixtureWith(t *testing.T, b privacyBackend, o privacyOptions) *privacyFixture {
	t.Helper()
	dir := t.TempDir()
	srcURL, people, auditURL, auditTable, adb := b.setup(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "audit.key"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "datasets.yaml")
	yaml := fmt.Sprintf(privacyYAML, srcURL, people) + strings.ReplaceAll(o.datasets, "{people}", people)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	logger := discardLogger()
	if o.log == nil {
		o.log = io.Discard
	} else {
		logger = slog.New(slog.NewTextHandler(o.log, nil)) // serve's default, --log-format text
	}
	cfg, err := datasets.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	src, err := connect.Open(t.Context(), cfg.Connections["main"].URL, exportd.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	tokens, err := auth.OpenStore(t.Context(), cfg.Auth.TokensDB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tokens.Close() })
	keys, err := audit.LoadKeys(cfg.Privacy.AuditKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.Open(t.Context(), auditURL, audit.Options{Keys: keys, Table: auditTable, Log: o.log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	var m *jobs.Manager
	if o.jobs {
		m = startJobsOn(t, dir, cfg, src, logger, nil, trail)
	}
	srv := (&fixture{cfg: cfg, src: src}).start(t, func(c *server.Config) {
		c.Auth = auth.New(auth.Config{Tokens: tokens, Links: linkKeys})
		c.Audit = trail
		c.Jobs = m
		c.Logger = logger
		if o.server != nil {
			o.server(dir, c)
		}
	})
	return &privacyFixture{url: srv.URL, trail: trail, tokens: tokens, db: adb, table: auditTable, keyDir: dir}
}

func (f *privacyFixture) token(t *testing.T, name string, roles ...string) []string {
	t.Helper()
	tok, _, err := f.tokens.Create(t.Context(), name, roles, nil)
	if err != nil {
		t.Fatal(err)
	}
	return bearer(tok)
}

// records returns every record of the trail.
func (f *privacyFixture) records(t *testing.T) []audit.Record {
	t.Helper()
	var out []audit.Record
	err := f.trail.Records(t.Context(), time.Time{}, time.Now().Add(time.Hour), func(r *audit.Record) error {
		out = append(out, *r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// last returns the newest record.
func (f *privacyFixture) last(t *testing.T) audit.Record {
	t.Helper()
	recs := f.records(t)
	if len(recs) == 0 {
		t.Fatal("no audit record")
	}
	return recs[len(recs)-1]
}

const purposeQuery = "purpose=member_support&purpose_text=" + "회원+문의+1234번+응대를+위한+확인"

// readTable reads a file of any format back as rows of text (header first).
func readTable(t *testing.T, f exportd.Format, b []byte) [][]string {
	t.Helper()
	switch f {
	case exportd.FormatXLSX:
		x, err := excelize.OpenReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		rows, err := x.GetRows(x.GetSheetList()[0])
		if err != nil {
			t.Fatal(err)
		}
		return rows
	case exportd.FormatCSV, exportd.FormatTSV:
		b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		r := csv.NewReader(bytes.NewReader(b))
		if f == exportd.FormatTSV {
			r.Comma = '\t'
			r.LazyQuotes = true
		}
		rows, err := r.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	var rows [][]string
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	for dec.More() {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			t.Fatal(err)
		}
		// keys in column order: id, name, email, phone, score (those present)
		var row []string
		for _, k := range []string{"id", "name", "email", "phone", "score"} {
			if v, ok := obj[k]; ok {
				row = append(row, fmt.Sprint(v))
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func TestPrivacy(t *testing.T) {
	for _, b := range privacyBackends() {
		t.Run(b.name, func(t *testing.T) {
			f := newPrivacyFixture(t, b, false)
			support, admin := f.token(t, "sue", "support"), f.token(t, "ada", "admin")
			c := client(t)

			// A role sees masked values, every cell, every format; the
			// audit record's digest is that of the bytes received.
			for _, format := range exportd.Formats {
				for _, who := range []struct {
					hdr  []string
					want [][]string
				}{{support, peopleSupport}, {admin, peopleFull}} {
					hdr := who.hdr
					if format == exportd.FormatCSV {
						hdr = append(slices.Clone(hdr), "Accept-Encoding", "gzip") // the digest is of the gzip bytes
					}
					resp, body, err := get(t, c, f.url+"/v1/datasets/people/export."+string(format)+"?"+purposeQuery, hdr...)
					if err != nil || resp.StatusCode != 200 {
						t.Fatalf("%s: %v %v %s", format, err, resp.Status, body)
					}
					sum := sha256.Sum256(body)
					rec := f.last(t)
					if rec.SHA256 != hex.EncodeToString(sum[:]) || rec.Bytes != int64(len(body)) || rec.Outcome != audit.OutcomeOK || rec.Rows != 3 {
						t.Errorf("%s: record %+v; received %d bytes, sha256 %x", format, rec, len(body), sum)
					}
					if rec.Purpose.Category != "member_support" || !strings.Contains(rec.Purpose.Text, "1234번") || rec.Client != "127.0.0.1" {
						t.Errorf("%s: record purpose/client %+v %q", format, rec.Purpose, rec.Client)
					}
					if resp.Header.Get("Content-Encoding") == "gzip" {
						zr, err := gzip.NewReader(bytes.NewReader(body))
						if err != nil {
							t.Fatal(err)
						}
						body, _ = io.ReadAll(zr)
					} else if format == exportd.FormatCSV {
						t.Errorf("csv not gzip-encoded")
					}
					rows := readTable(t, format, body)
					if format != exportd.FormatJSONL {
						rows = rows[1:] // header
					}
					if !reflect.DeepEqual(rows, who.want) {
						t.Errorf("%s as %v:\n got %q\nwant %q", format, rec.Roles, rows, who.want)
					}
				}
			}

			// columns= can only take columns away.
			resp, body, _ := get(t, c, f.url+"/v1/datasets/people/export.csv?columns=score,name&"+purposeQuery, support...)
			if rows := readTable(t, exportd.FormatCSV, body); resp.StatusCode != 200 || !reflect.DeepEqual(rows, [][]string{{"name", "score"}, {"김*준", "87.5"}, {"남**수", "92"}, {"J*** S****", "70.25"}}) {
				t.Errorf("columns=score,name: %s %q", resp.Status, rows)
			}
			if rec := f.last(t); !reflect.DeepEqual(rec.Columns, []string{"name", "score"}) {
				t.Errorf("record columns %v", rec.Columns)
			}

			n := len(f.records(t))
			wantDenied := func(path string, status int, code, field string, hdr ...string) {
				t.Helper()
				resp, body, err := get(t, c, f.url+path, hdr...)
				if err != nil {
					t.Fatal(err)
				}
				e := decodeError(t, body)
				if resp.StatusCode != status || e.Error.Code != code || e.Error.Field != field {
					t.Errorf("GET %s: %d %+v, want %d %s %s", path, resp.StatusCode, e.Error, status, code, field)
				}
				recs := f.records(t)
				if len(recs) != n+1 {
					t.Errorf("GET %s: %d new audit records, want 1", path, len(recs)-n)
				} else if r := recs[n]; r.Outcome != audit.OutcomeDenied || !strings.Contains(r.Error, fmt.Sprint(status)) {
					t.Errorf("GET %s: record %+v", path, r)
				}
				n = len(recs)
			}
			// A column the role may not see: not through columns=, nor the
			// query string, nor a tampered signed link.
			wantDenied("/v1/datasets/people/export.csv?columns=name,phone&"+purposeQuery, 403, "forbidden_column", "columns", support...)
			wantDenied("/v1/datasets/people/export.csv?columns=nope&"+purposeQuery, 400, "unknown_column", "columns", support...)
			wantDenied("/v1/datasets/people/export.csv?phone=1&"+purposeQuery, 400, "bad_parameter", "phone", support...)
			// The purpose: missing, unknown, too short.
			wantDenied("/v1/datasets/people/export.csv", 400, "bad_purpose", "purpose", support...)
			wantDenied("/v1/datasets/people/export.csv?purpose=fun&purpose_text=long+enough+text", 400, "bad_purpose", "purpose", support...)
			wantDenied("/v1/datasets/people/export.csv?purpose=audit&purpose_text=short", 400, "bad_purpose", "purpose_text", support...)
			wantDenied("/v1/datasets/people/export.csv?password=x&"+purposeQuery, 400, "bad_parameter", "password", support...)
			// No credentials at all.
			wantDenied("/v1/datasets/people/export.csv?"+purposeQuery, 401, "unauthenticated", "")

			// A signed link carries the purpose the host collected.
			link := auth.SignLink(linkKeys, auth.Link{Dataset: "people", Format: "csv", Name: "sue", Roles: []string{"support"},
				Purpose: "audit", PurposeText: "분기 감사 표본 확인 요청", Params: url.Values{"columns": {"name,email"}}, Expires: time.Now().Add(time.Hour)})
			resp, body, _ = get(t, c, f.url+link)
			if rows := readTable(t, exportd.FormatCSV, body); resp.StatusCode != 200 || !reflect.DeepEqual(rows[1], []string{"김*준", "us****@example.com"}) {
				t.Errorf("signed link: %s %q", resp.Status, rows)
			}
			if rec := f.last(t); rec.Principal != "link:sue" || rec.Purpose != (audit.Purpose{Category: "audit", Text: "분기 감사 표본 확인 요청"}) {
				t.Errorf("signed link record %+v", rec)
			}
			n = len(f.records(t))
			// Tampered: the phone column added, or the role raised.
			wantDenied(strings.Replace(link, "columns=name%2Cemail", "columns=name%2Cemail%2Cphone", 1), 403, "bad_link", "")
			wantDenied(strings.Replace(link, "link.roles=support", "link.roles=admin", 1), 403, "bad_link", "")
			// A link without a purpose, for a personal dataset.
			nolink := auth.SignLink(linkKeys, auth.Link{Dataset: "people", Format: "csv", Name: "sue", Roles: []string{"support"}, Expires: time.Now().Add(time.Hour)})
			wantDenied(nolink, 400, "bad_purpose", "purpose")

			// The trail verifies.
			if sum, err := f.trail.Verify(t.Context()); err != nil || sum.Records != int64(n) {
				t.Errorf("verify: %+v %v (want %d records)", sum, err, n)
			}
		})
	}
}

// do sends a request with a body (JSON, or a form when body is
// url.Values) and returns the response and its body.
func do(t *testing.T, c *http.Client, method, u string, body any, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		j, _ := json.Marshal(b)
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// waitJob follows a job until it is final (by its event stream).
func waitJob(t *testing.T, c *http.Client, base, id string, hdr []string) jobs.Job {
	t.Helper()
	resp, body := do(t, c, "GET", base+"/v1/jobs/"+id+"/events", nil, hdr...)
	if resp.StatusCode != 200 {
		t.Fatalf("events: %s %s", resp.Status, body)
	}
	var j jobs.Job
	for line := range strings.SplitSeq(string(body), "\n") {
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			if err := json.Unmarshal([]byte(data), &j); err != nil {
				t.Fatal(err)
			}
		}
	}
	if j.State != jobs.StateSucceeded {
		t.Fatalf("job %s: %+v", id, j)
	}
	return j
}

// A job masks like a direct download; each download of its result is
// audited with the digest of the stored file, which is the digest of the
// bytes the client receives; a password-protected download is audited
// with the digest of the encrypted bytes sent.
func TestPrivacyJobs(t *testing.T) {
	for _, b := range privacyBackends() {
		t.Run(b.name, func(t *testing.T) {
			f := newPrivacyFixture(t, b, true)
			support := f.token(t, "sue", "support")
			c := client(t)

			// Purpose and columns are checked when the job is submitted.
			n := len(f.records(t))
			resp, body := do(t, c, "POST", f.url+"/v1/datasets/people/jobs", map[string]any{"format": "csv",
				"params": map[string]any{"columns": "name,phone", "purpose": "audit", "purpose_text": "분기 감사 표본 확인 요청"}}, support...)
			if e := decodeError(t, body); resp.StatusCode != 403 || e.Error.Field != "columns" {
				t.Errorf("job with a forbidden column: %s %s", resp.Status, body)
			}
			resp, body = do(t, c, "POST", f.url+"/v1/datasets/people/jobs", map[string]any{"format": "csv"}, support...)
			if e := decodeError(t, body); resp.StatusCode != 400 || e.Error.Field != "purpose" {
				t.Errorf("job without a purpose: %s %s", resp.Status, body)
			}
			if recs := f.records(t); len(recs) != n+2 || recs[n].Outcome != audit.OutcomeDenied || recs[n+1].Outcome != audit.OutcomeDenied {
				t.Errorf("denied jobs: %d records", len(recs)-n)
			}

			for _, format := range exportd.Formats {
				resp, body = do(t, c, "POST", f.url+"/v1/datasets/people/jobs", map[string]any{"format": string(format),
					"params": map[string]any{"purpose": "member_support", "purpose_text": "회원 문의 1234번 응대를 위한 확인"}}, support...)
				if resp.StatusCode != 202 {
					t.Fatalf("submit: %s %s", resp.Status, body)
				}
				var j jobs.Job
				json.Unmarshal(body, &j)
				j = waitJob(t, c, f.url, j.ID, support)
				for _, via := range []string{"owner", "signed link"} {
					u, hdr := f.url+"/v1/jobs/"+j.ID+"/download", support
					if via == "signed link" {
						u, hdr = f.url+j.DownloadURL, nil
					}
					resp, body = do(t, c, "GET", u, nil, hdr...)
					if resp.StatusCode != 200 {
						t.Fatalf("download: %s %s", resp.Status, body)
					}
					sum := sha256.Sum256(body)
					rec := f.last(t)
					if rec.SHA256 != hex.EncodeToString(sum[:]) || rec.SHA256 != j.SHA256 || rec.Bytes != int64(len(body)) || auth.NameOf(rec.Principal) != "sue" ||
						rec.Outcome != audit.OutcomeOK || rec.Purpose.Category != "member_support" || !reflect.DeepEqual(rec.Columns, []string{"id", "name", "email", "score"}) {
						t.Errorf("%s via %s: record %+v, received sha256 %x", format, via, rec, sum)
					}
					rows := readTable(t, format, body)
					if format != exportd.FormatJSONL {
						rows = rows[1:]
					}
					if !reflect.DeepEqual(rows, peopleSupport) {
						t.Errorf("%s job: got %q, want %q", format, rows, peopleSupport)
					}
				}
				if format != exportd.FormatXLSX {
					continue
				}
				// Password-protected: typed (form) and generated (JSON).
				resp, body = do(t, c, "POST", f.url+"/v1/jobs/"+j.ID+"/download", url.Values{"password": {"short"}}, support...)
				if e := decodeError(t, body); resp.StatusCode != 400 || e.Error.Field != "password" {
					t.Errorf("short password: %s %s", resp.Status, body)
				}
				resp, body = do(t, c, "POST", f.url+"/v1/jobs/"+j.ID+"/download", url.Values{"password": {"correct horse 42"}}, support...)
				if resp.StatusCode != 200 || resp.ContentLength != int64(len(body)) || !bytes.HasPrefix(body, []byte{0xd0, 0xcf, 0x11, 0xe0}) {
					t.Fatalf("encrypted download: %s, %d bytes, Content-Length %d", resp.Status, len(body), resp.ContentLength)
				}
				sum := sha256.Sum256(body)
				if rec := f.last(t); rec.SHA256 != hex.EncodeToString(sum[:]) || rec.Format != "xlsx+password" || rec.Bytes != int64(len(body)) {
					t.Errorf("encrypted download record %+v", rec)
				}
				_, plain := do(t, c, "GET", f.url+"/v1/jobs/"+j.ID+"/download", nil, support...)
				want := readTable(t, exportd.FormatXLSX, plain)
				if got := decryptXLSX(t, body, "correct horse 42"); !reflect.DeepEqual(got, want) {
					t.Errorf("decrypted workbook:\n got %q\nwant %q", got, want)
				}
				if got := decryptXLSX(t, body, "wrong horse 42"); got != nil {
					t.Errorf("a wrong password opened the workbook: %q", got)
				}
				resp, body = do(t, c, "POST", f.url+"/v1/jobs/"+j.ID+"/download", map[string]string{"password": "generate"}, support...)
				pw := resp.Header.Get(server.PasswordHeader)
				if resp.StatusCode != 200 || len(pw) < 12 {
					t.Fatalf("generated password: %s %q", resp.Status, pw)
				}
				if got := decryptXLSX(t, body, pw); !reflect.DeepEqual(got, want) {
					t.Errorf("decrypted with the generated password:\n got %q\nwant %q", got, want)
				}
			}
			if sum, err := f.trail.Verify(t.Context()); err != nil || sum.Records != int64(len(f.records(t))) {
				t.Errorf("verify: %+v %v", sum, err)
			}
		})
	}
}

// decryptXLSX decrypts a password-protected workbook with Debian's
// msoffcrypto-tool and reads every cell with openpyxl (as text, the way
// excelize shows them); nil when the password is refused.
func decryptXLSX(t *testing.T, b []byte, password string) [][]string {
	t.Helper()
	py := "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import msoffcrypto, openpyxl").CombinedOutput(); err != nil {
		// The reason is python's last line ("No module named
		// 'msoffcrypto'"), not just the exit status.
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if os.Getenv("EXPORTD_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("python3-msoffcrypto-tool and python3-openpyxl are needed: %v: %s", err, lines[len(lines)-1])
		}
		t.Skipf("python3-msoffcrypto-tool or python3-openpyxl missing: %s: %v", lines[len(lines)-1], err)
	}
	path := filepath.Join(t.TempDir(), "enc.xlsx")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	const script = `
import io, json, sys, msoffcrypto, openpyxl
f = msoffcrypto.OfficeFile(open(sys.argv[1], "rb"))
f.load_key(password=sys.argv[2], verify_password=True)
out = io.BytesIO()
try:
    f.decrypt(out, verify_integrity=True)
except Exception as e:
    print("refused:", e, file=sys.stderr)
    sys.exit(3)
ws = openpyxl.load_workbook(out, read_only=True).worksheets[0]
def text(v):
    if v is None: return ""
    if isinstance(v, float) and v.is_integer(): return str(int(v))
    return str(v)
print(json.dumps([[text(v) for v in row] for row in ws.iter_rows(values_only=True)]))
`
	cmd := exec.Command(py, "-c", script, path, password)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok && (ee.ExitCode() == 3 || strings.Contains(stderr.String(), "InvalidKeyError") || strings.Contains(stderr.String(), "password")) {
		return nil
	}
	if err != nil {
		t.Fatalf("msoffcrypto/openpyxl: %v: %s", err, stderr.String())
	}
	var rows [][]string
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}
