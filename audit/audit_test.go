package audit_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/sourcetest"
)

var testKey = bytes.Repeat([]byte{0x5a}, 32)

func keys(t testing.TB, secrets ...[]byte) audit.Keys {
	t.Helper()
	if len(secrets) == 0 {
		secrets = [][]byte{testKey}
	}
	k, err := audit.NewKeys(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// backend opens trails in one database.
type backend struct {
	// open returns a new Store on a trail of its own each time it is
	// called with a new name; the same name opens the same trail (another
	// pool: another node).
	open func(t *testing.T, name string, opts audit.Options) *audit.Store
	// exec runs plain SQL on the database of trail name; %[1]s is its
	// records table, %[1]s_head its head.
	exec func(t *testing.T, name, query string)
	// table returns the (unqualified) records table of trail name.
	table func(t *testing.T, name string) string
}

func sqliteBackend(t *testing.T) backend {
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name+".db") }
	return backend{
		open: func(t *testing.T, name string, opts audit.Options) *audit.Store {
			s, err := audit.Open(t.Context(), "sqlite:"+path(name), opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		exec: func(t *testing.T, name, query string) {
			db, err := sql.Open("sqlite", path(name)+"?_pragma=busy_timeout(10000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(fmt.Sprintf(query, audit.DefaultTable)); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
		},
		table: func(*testing.T, string) string { return audit.DefaultTable },
	}
}

func postgresBackend(t *testing.T) backend {
	url := sourcetest.IntegrationURL(t, "EXPORTD_POSTGRES_URL")
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tables := map[string]string{}
	var mu sync.Mutex
	table := func(t *testing.T, name string) string {
		mu.Lock()
		defer mu.Unlock()
		if tables[name] == "" {
			tbl := sourcetest.UniqueName("exportd_audit")
			tables[name] = tbl
			t.Cleanup(func() {
				db.Exec("DROP TABLE IF EXISTS " + tbl)
				db.Exec("DROP TABLE IF EXISTS " + tbl + "_head")
			})
		}
		return tables[name]
	}
	return backend{
		open: func(t *testing.T, name string, opts audit.Options) *audit.Store {
			opts.Table = table(t, name)
			s, err := audit.Open(t.Context(), url, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		exec: func(t *testing.T, name, query string) {
			if _, err := db.Exec(fmt.Sprintf(query, table(t, name))); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
		},
		table: table,
	}
}

func TestSQLite(t *testing.T)     { run(t, sqliteBackend) }
func TestPostgreSQL(t *testing.T) { run(t, postgresBackend) }

func run(t *testing.T, newBackend func(*testing.T) backend) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, backend)
	}{
		{"ConcurrentAppend", testConcurrentAppend},
		{"Tamper", testTamper},
		{"Truncate", testTruncate},
		{"Prune", testPrune},
		{"PruneRefusesBrokenChain", testPruneRefusesBrokenChain},
		{"KeyRotation", testKeyRotation},
		{"Export", testExport},
		{"LogAmongText", testLogAmongText},
		{"LogUnreadable", testLogUnreadable},
		{"LogWriteFails", testLogWriteFails},
		{"Started", testStarted},
		{"MigrateRef", testMigrateRef},
		{"Sheets", testSheets},
		{"PastHead", testPastHead},
		{"Gaps", testGaps},
		{"DuplicatesAndForks", testDuplicatesAndForks},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newBackend(t)) })
	}
}

// syncBuffer is a log destination shared by several loggers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func record(i int) *audit.Record {
	return &audit.Record{
		Principal: fmt.Sprintf("user%d@example.com", i),
		Roles:     []string{"support", "billing"},
		Client:    "203.0.113.7",
		Dataset:   "members",
		Params:    json.RawMessage(fmt.Sprintf(`{"from": "2026-10-01", "n": %d}`, i)),
		Columns:   []string{"id", "name", "email"},
		Purpose:   audit.Purpose{Category: "고객 응대", Text: fmt.Sprintf("민원 처리 #%d", i)},
		Format:    "xlsx",
		Rows:      int64(i * 10),
		Bytes:     int64(i * 1000),
		SHA256:    strings.Repeat("ab", 32),
		Outcome:   audit.OutcomeOK,
	}
}

// fill appends n records to a new trail and returns its store and log.
func fill(t *testing.T, b backend, name string, n int) (*audit.Store, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	s := b.open(t, name, audit.Options{Keys: keys(t), Log: log})
	for i := 1; i <= n; i++ {
		if err := s.Append(t.Context(), record(i)); err != nil {
			t.Fatal(err)
		}
	}
	return s, log
}

func testConcurrentAppend(t *testing.T, b backend) {
	const nodes, workers, each = 2, 4, 25
	log := &syncBuffer{}
	var stores []*audit.Store
	for range nodes {
		// the same trail through two pools: two nodes
		stores = append(stores, b.open(t, "shared", audit.Options{Keys: keys(t), Log: log}))
	}
	var wg sync.WaitGroup
	errs := make(chan error, nodes*workers)
	for n := range nodes {
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					r := record(n*1000 + w*100 + i)
					if err := stores[n].Append(context.Background(), r); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sum, err := stores[0].Verify(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	const total = nodes * workers * each
	if sum.Records != total || sum.First != 1 || sum.Last != total {
		t.Fatalf("summary %+v, want %d records 1…%d", sum, total, total)
	}
	ls, err := stores[1].VerifyAgainstLog(t.Context(), strings.NewReader(log.String()))
	if err != nil || ls.Compared != total || ls.Logged != total {
		t.Fatalf("VerifyAgainstLog = %+v, %v; want %d compared", ls, err, total)
	}
}

func wantBroken(t *testing.T, err error, seq int64, reason string) {
	t.Helper()
	var ce *audit.ChainError
	if !errors.As(err, &ce) || !errors.Is(err, audit.ErrTampered) {
		t.Fatalf("error %v, want a ChainError at %d", err, seq)
	}
	if ce.Seq != seq || !strings.Contains(ce.Reason, reason) {
		t.Fatalf("error %q, want record %d: %s", err, seq, reason)
	}
}

func testTamper(t *testing.T, b backend) {
	const swapCols = "principal, roles, client, dataset, params, cols, purpose_category, purpose, format, row_count, byte_count, sha256, outcome, error, key_id, prev_mac, mac, time_us"
	tests := []struct {
		name   string
		sql    []string
		seq    int64
		reason string
	}{
		{"edit", []string{`UPDATE %[1]s SET purpose = '다른 목적' WHERE seq = 4`}, 4, "MAC mismatch"},
		{"edit-rows", []string{`UPDATE %[1]s SET row_count = row_count + 1 WHERE seq = 9`}, 9, "MAC mismatch"},
		{"edit-mac", []string{`UPDATE %[1]s SET mac = prev_mac WHERE seq = 2`}, 2, "MAC mismatch"},
		{"edit-prev", []string{`UPDATE %[1]s SET prev_mac = mac WHERE seq = 6`}, 6, "prev_mac"},
		{"delete", []string{`DELETE FROM %[1]s WHERE seq = 4`}, 4, "missing"},
		{"delete-first", []string{`DELETE FROM %[1]s WHERE seq = 1`}, 1, "missing"},
		{"renumber", []string{
			// hide the gap of a deleted record 8
			`DELETE FROM %[1]s WHERE seq = 8`,
			`UPDATE %[1]s SET seq = 8 WHERE seq = 9`,
			`UPDATE %[1]s SET seq = 9 WHERE seq = 10`,
			`UPDATE %[1]s_head SET seq = 9, mac = (SELECT mac FROM %[1]s WHERE seq = 9)`,
		}, 8, "MAC mismatch"},
		// swap the content of 3 and 7, MACs included
		{"swap", []string{
			`CREATE TABLE %[1]s_tmp AS SELECT * FROM %[1]s WHERE seq IN (3, 7)`,
			`DELETE FROM %[1]s WHERE seq IN (3, 7)`,
			`INSERT INTO %[1]s (seq, ` + swapCols + `) SELECT 10 - seq, ` + swapCols + ` FROM %[1]s_tmp`,
			`DROP TABLE %[1]s_tmp`,
		}, 3, "MAC mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := fill(t, b, tt.name, 10)
			if _, err := s.Verify(t.Context()); err != nil {
				t.Fatal(err)
			}
			for _, q := range tt.sql {
				b.exec(t, tt.name, q)
			}
			_, err := s.Verify(t.Context())
			wantBroken(t, err, tt.seq, tt.reason)
		})
	}
}

func testTruncate(t *testing.T, b backend) {
	s, log := fill(t, b, "truncate", 10)
	b.exec(t, "truncate", `DELETE FROM %[1]s WHERE seq > 7`)
	_, err := s.Verify(t.Context())
	wantBroken(t, err, 8, "missing")
	// someone who also rewinds the head goes unnoticed by Verify…
	b.exec(t, "truncate", `UPDATE %[1]s_head SET seq = 7, mac = (SELECT mac FROM %[1]s WHERE seq = 7)`)
	if sum, err := s.Verify(t.Context()); err != nil || sum.Records != 7 {
		t.Fatalf("Verify = %+v, %v", sum, err)
	}
	// …but not by the log
	_, err = s.VerifyAgainstLog(t.Context(), strings.NewReader(log.String()))
	wantBroken(t, err, 8, "not in the store")
	// an edit is found against the log too
	b.exec(t, "truncate", `UPDATE %[1]s SET mac = prev_mac WHERE seq = 5`)
	_, err = s.VerifyAgainstLog(t.Context(), strings.NewReader(log.String()))
	wantBroken(t, err, 5, "differs from the log")
}

func testPrune(t *testing.T, b backend) {
	log := &syncBuffer{}
	s := b.open(t, "prune", audit.Options{Keys: keys(t), Log: log})
	now := time.Now()
	for i := 1; i <= 10; i++ {
		r := record(i)
		r.Time = now.AddDate(-3, 0, i) // 1…5 are older than two years…
		if i > 5 {
			r.Time = now.AddDate(-1, 0, i)
		}
		if i == 7 {
			r.Time = now.AddDate(-3, 0, 0) // …and 7, out of order: it stays, as does 6
		}
		if err := s.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PruneExpired(t.Context(), now)
	if err != nil || n != 5 {
		t.Fatalf("Prune = %d, %v; want 5", n, err)
	}
	sum, err := s.Verify(t.Context())
	if err != nil || sum.Records != 5 || sum.First != 6 || sum.Checkpoint != 5 {
		t.Fatalf("Verify = %+v, %v", sum, err)
	}
	if err := s.Append(t.Context(), record(11)); err != nil {
		t.Fatal(err)
	}
	if sum, err := s.Verify(t.Context()); err != nil || sum.Last != 11 {
		t.Fatalf("Verify = %+v, %v", sum, err)
	}
	if ls, err := s.VerifyAgainstLog(t.Context(), strings.NewReader(log.String())); err != nil || ls.Compared != 6 || ls.Pruned != 5 || ls.Logged != 11 {
		t.Fatalf("VerifyAgainstLog = %+v, %v; want 6 compared, 5 pruned", ls, err)
	}
	// nothing more to prune
	if n, err := s.PruneExpired(t.Context(), now); err != nil || n != 0 {
		t.Fatalf("Prune again = %d, %v", n, err)
	}

	// the checkpoint is signed: moving it forward (to hide the deletion of
	// record 6) or editing it is found
	b.exec(t, "prune", `DELETE FROM %[1]s WHERE seq = 6`)
	b.exec(t, "prune", `UPDATE %[1]s_head SET ck_seq = 6, ck_mac = (SELECT prev_mac FROM %[1]s WHERE seq = 7)`)
	_, err = s.Verify(t.Context())
	wantBroken(t, err, 6, "signature mismatch")
	var ce *audit.ChainError
	if errors.As(err, &ce); !ce.Checkpoint {
		t.Errorf("%v: not a checkpoint error", err)
	}
}

func testPruneRefusesBrokenChain(t *testing.T, b backend) {
	s, _ := fill(t, b, "prune-broken", 6)
	b.exec(t, "prune-broken", `UPDATE %[1]s SET principal = 'mallory' WHERE seq = 2`)
	_, err := s.Prune(t.Context(), time.Now().Add(time.Hour))
	wantBroken(t, err, 2, "MAC mismatch")
	// nothing was deleted
	_, err = s.Verify(t.Context())
	wantBroken(t, err, 2, "MAC mismatch")
}

func testKeyRotation(t *testing.T, b backend) {
	old, next := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	s := b.open(t, "rotate", audit.Options{Keys: keys(t, old)})
	for i := range 3 {
		if err := s.Append(t.Context(), record(i)); err != nil {
			t.Fatal(err)
		}
	}
	s2 := b.open(t, "rotate", audit.Options{Keys: keys(t, old, next)})
	r := record(4)
	if err := s2.Append(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if r.KeyID != audit.KeyID(next) {
		t.Fatalf("key id %s, want the new key's", r.KeyID)
	}
	if sum, err := s2.Verify(t.Context()); err != nil || sum.Records != 4 {
		t.Fatalf("Verify = %+v, %v", sum, err)
	}
	// without the old key, the old records cannot be verified
	s3 := b.open(t, "rotate", audit.Options{Keys: keys(t, next)})
	if _, err := s3.Verify(t.Context()); !errors.Is(err, audit.ErrNoKey) {
		t.Fatalf("Verify without the old key = %v", err)
	}
	// and another key does not stand in for the right one
	wrong := b.open(t, "rotate", audit.Options{Keys: keys(t, testKey)})
	if _, err := wrong.Verify(t.Context()); !errors.Is(err, audit.ErrNoKey) {
		t.Fatalf("Verify with another key = %v", err)
	}
}
