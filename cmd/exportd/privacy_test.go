package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/exportd/exportd/datasets"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
	"github.com/exportd/exportd/sqlite"
)

const privacyDatasets = `
connections:
  main: {url: "sqlite:people.db"}
privacy:
  purposes: {audit: 내부 감사}
  audit: {key_file: audit.key, log: audit.jsonl}
datasets:
  people:
    personal: true
    sql: SELECT id, name FROM people ORDER BY id
    columns: [{name: id, type: int}, {name: name, personal: true, mask: name}]
`

// privacyDir makes a directory with a people table, an audit key and the
// datasets file yaml, and returns it and the datasets file's path.
func privacyDir(t *testing.T, yaml string) (dir, cfgPath string) {
	t.Helper()
	dir = t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "people.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)`, `INSERT INTO people VALUES (1, '김민준'), (2, '이서연')`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	cfgPath = filepath.Join(dir, "datasets.yaml")
	if err := os.WriteFile(filepath.Join(dir, "audit.key"), []byte(strings.Repeat("cd", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, cfgPath
}

// End to end: exports through the server as serve builds it (the trail of
// the privacy: block, its JSON log), then `exportd audit verify` passes,
// and fails naming the record after a record is edited, deleted or two
// are swapped with plain SQL.
func TestAuditTrailEndToEnd(t *testing.T) {
	dir, cfgPath := privacyDir(t, privacyDatasets+"auth: {anonymous: {roles: [admin], from: [127.0.0.0/8]}}\n")
	cfg, err := datasets.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	src, err := sqlite.Open(context.Background(), filepath.Join(dir, "people.db"), exportd.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sc := server.Config{Sources: map[string]exportd.Source{"main": src},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	srv := servertest.Open(t, cfg, server.Options{Config: sc})
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer c.CloseIdleConnections()
	var sums []string
	for i, q := range []string{"", "&columns=id", "", "&columns=nope", ""} {
		resp, err := c.Get(srv.URL + "/v1/datasets/people/export.csv?purpose=audit&purpose_text=" + fmt.Sprintf("분기+감사+표본+%d번+확인", i) + q)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256(body)
		sums = append(sums, hex.EncodeToString(sum[:]))
	}
	if err := srv.Close(); err != nil { // the trail is closed too
		t.Fatal(err)
	}

	url, key := cfg.Privacy.AuditDB, cfg.Privacy.AuditKeyFile
	out, stderr, code := run(t, dir, "audit", "verify", "--db", url, "--key-file", key, "--log", cfg.Privacy.AuditLog)
	// Four exports (each a record of intent and its outcome) and a denial.
	if code != 0 || !strings.Contains(out, "9 records OK") || !strings.Contains(out, "the log agrees") {
		t.Fatalf("verify: exit %d, %q %q", code, out, stderr)
	}
	st, err := audit.Open(context.Background(), url, audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	started := map[int64]bool{}
	err = st.Records(context.Background(), time.Time{}, time.Now().Add(time.Hour), func(r *audit.Record) error {
		if r.Outcome == audit.OutcomeStarted {
			if r.SHA256 != "" || r.Bytes != 0 || r.Ref != 0 {
				t.Errorf("record %d: %+v, want a record of intent", r.Seq, r)
			}
			started[r.Seq] = true
			return nil
		}
		switch {
		case i == 3 && (r.Outcome != audit.OutcomeDenied || !strings.Contains(r.Error, "400")):
			t.Errorf("record %d: %+v, want the denial", r.Seq, r)
		case i != 3 && (r.Outcome != audit.OutcomeOK || r.SHA256 != sums[i] || !started[r.Ref]):
			t.Errorf("record %d: %+v, want the digest %s of the bytes received, completing a record of intent", r.Seq, r, sums[i])
		}
		i++
		return nil
	})
	st.Close()
	if err != nil || i != 5 || len(started) != 4 {
		t.Fatalf("%d records and %d of intent, %v", i, len(started), err)
	}

	// Each tampering on a fresh copy of the trail.
	data, err := os.ReadFile(strings.TrimPrefix(url, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, sql, want string }{
		{"edit", `UPDATE exportd_audit SET principal = 'someone else' WHERE seq = 2`, "record 2"},
		{"delete", `DELETE FROM exportd_audit WHERE seq = 3`, "record 4"},
		{"swap", `UPDATE exportd_audit SET seq = -1 WHERE seq = 2; UPDATE exportd_audit SET seq = 2 WHERE seq = 3; UPDATE exportd_audit SET seq = 3 WHERE seq = -1`, "record 2"},
	} {
		path := filepath.Join(dir, tc.name+".db")
		os.WriteFile(path, data, 0o600)
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		for s := range strings.SplitSeq(tc.sql, "; ") {
			if _, err := db.Exec(s); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
		db.Close()
		_, stderr, code := run(t, dir, "audit", "verify", "--db", "sqlite:"+path, "--key-file", key)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, %q; want 1 naming %s", tc.name, code, stderr, tc.want)
		}
	}
}

// The audit records of `exportd serve` without privacy.audit.log are JSON
// lines on stderr among the server's text log (--log-format text, the
// default), at any --log-level; `audit verify --log` reads them back from
// that log and says how many it compared. A log without audit records, or
// with records it cannot read (a text-format audit line), fails instead of
// agreeing after comparing nothing; the newest records cut off (with the
// head row rewound) are found against it.
func TestAuditServerLog(t *testing.T) {
	dir, cfgPath := privacyDir(t, strings.Replace(privacyDatasets, "audit: {key_file: audit.key, log: audit.jsonl}", "audit: {key_file: audit.key}", 1))

	for _, level := range []string{"info", "error"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		logf, err := os.OpenFile(filepath.Join(dir, "serve.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exportdBin, "serve", "--config", cfgPath, "--addr", addr, "--log-level", level)
		cmd.Dir, cmd.Stderr = dir, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			resp, err := c.Get("http://" + addr + "/healthz")
			if err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("serve did not start: %v", err)
			}
		}
		for _, q := range []string{"", "&columns=nope"} { // an export and a denial
			resp, err := c.Get("http://" + addr + "/v1/datasets/people/export.csv?purpose=audit&purpose_text=분기+감사+표본+확인+요청" + q)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		c.CloseIdleConnections()
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("serve --log-level %s: %v", level, err)
		}
		logf.Close()
	}

	log, err := os.ReadFile(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	var text, audits, textAudit []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(log)), "\n") {
		switch {
		case !strings.Contains(line, `"export audit"`):
			text = append(text, line)
		case json.Valid([]byte(line)):
			audits = append(audits, line)
			var l struct {
				Audit audit.Record `json:"audit"`
			}
			json.Unmarshal([]byte(line), &l)
			textAudit = append(textAudit, fmt.Sprintf("time=%s level=INFO msg=%q audit=\"%+v\"", l.Audit.Time.Format(time.RFC3339), "export audit", l.Audit))
		default:
			t.Errorf("an audit line that is not JSON: %s", line)
		}
	}
	if len(audits) != 4 || !strings.Contains(strings.Join(text, "\n"), "level=INFO msg=serving") {
		t.Fatalf("%d audit lines, want 4, among text lines:\n%s", len(audits), log)
	}

	key := filepath.Join(dir, "audit.key")
	trail := "sqlite:" + filepath.Join(dir, "exportd-audit.db")
	write := func(name string, lines []string) string {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
		return path
	}
	out, stderr, code := run(t, dir, "audit", "verify", "--db", trail, "--key-file", key, "--log", "serve.log")
	if code != 0 || !strings.Contains(out, "4 records OK") || !strings.Contains(out, "the log agrees: 4 logged records compared") {
		t.Fatalf("verify --log serve.log: exit %d, %q %q", code, out, stderr)
	}
	// rotated: an empty current file beside the older one is fine
	out, _, code = run(t, dir, "audit", "verify", "--db", trail, "--key-file", key, "--log", write("empty.log", nil), "--log", "serve.log")
	if code != 0 || !strings.Contains(out, "4 logged records compared") {
		t.Errorf("verify with an empty log beside: exit %d, %q", code, out)
	}
	for _, tc := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"text only", text, "holds no audit record"},
		{"empty", nil, "holds no audit record"},
		{"text-format audit lines", append(append([]string{}, text...), textAudit...), "look like audit records"},
		{"one audit line in text", append(append([]string{}, audits[:3]...), textAudit[3]), "line 4"},
	} {
		_, stderr, code := run(t, dir, "audit", "verify", "--db", trail, "--key-file", key, "--log", write("case.log", tc.lines))
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, %q; want 1 saying %q", tc.name, code, stderr, tc.want)
		}
	}

	// The newest record deleted and the head rewound: the chain alone
	// verifies, the log does not.
	db, err := sql.Open("sqlite", filepath.Join(dir, "exportd-audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DELETE FROM exportd_audit WHERE seq = 4`, `UPDATE exportd_audit_head SET seq = 3, mac = (SELECT mac FROM exportd_audit WHERE seq = 3)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if out, stderr, code := run(t, dir, "audit", "verify", "--db", trail, "--key-file", key); code != 0 || !strings.Contains(out, "3 records OK") {
		t.Fatalf("verify without the log: exit %d, %q %q", code, out, stderr)
	}
	_, stderr, code = run(t, dir, "audit", "verify", "--db", trail, "--key-file", key, "--log", "serve.log")
	if code != 1 || !strings.Contains(stderr, "record 4") || !strings.Contains(stderr, "not in the store") {
		t.Errorf("verify --log after cutting off record 4: exit %d, %q", code, stderr)
	}
}
