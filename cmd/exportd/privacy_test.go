package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// End to end: exports through the server as serve builds it (the trail of
// the privacy: block, its JSON log), then `exportd audit verify` passes,
// and fails naming the record after a record is edited, deleted or two
// are swapped with plain SQL.
func TestAuditTrailEndToEnd(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "people.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(`CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)`)
	db.Exec(`INSERT INTO people VALUES (1, '김민준'), (2, '이서연')`)
	db.Close()
	os.WriteFile(filepath.Join(dir, "audit.key"), []byte(strings.Repeat("cd", 32)+"\n"), 0o600)
	cfgPath := filepath.Join(dir, "datasets.yaml")
	os.WriteFile(cfgPath, []byte(privacyDatasets), 0o644)
	cfg, err := exportd.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	src, err := sqlite.Open(context.Background(), filepath.Join(dir, "people.db"), exportd.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sc := server.Config{Datasets: cfg, Sources: map[string]exportd.Source{"main": src},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	stop, err := openAudit(context.Background(), cfg, &sc, sc.Logger)
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, sc)
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
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	stop()

	url, key := cfg.Privacy.AuditDB, cfg.Privacy.AuditKeyFile
	out, stderr, code := run(t, dir, "audit", "verify", "--db", url, "--key-file", key, "--log", cfg.Privacy.AuditLog)
	if code != 0 || !strings.Contains(out, "5 records OK") || !strings.Contains(out, "the log agrees") {
		t.Fatalf("verify: exit %d, %q %q", code, out, stderr)
	}
	st, err := audit.Open(context.Background(), url, audit.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	err = st.Records(context.Background(), time.Time{}, time.Now().Add(time.Hour), func(r *audit.Record) error {
		switch {
		case i == 3 && (r.Outcome != audit.OutcomeDenied || !strings.Contains(r.Error, "400")):
			t.Errorf("record %d: %+v, want the denial", r.Seq, r)
		case i != 3 && (r.Outcome != audit.OutcomeOK || r.SHA256 != sums[i]):
			t.Errorf("record %d: %+v, want the digest %s of the bytes received", r.Seq, r, sums[i])
		}
		i++
		return nil
	})
	st.Close()
	if err != nil || i != 5 {
		t.Fatalf("%d records, %v", i, err)
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
