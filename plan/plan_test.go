package plan_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/datasets"
	"github.com/exportd/exportd/mask"
	"github.com/exportd/exportd/plan"
	"github.com/exportd/exportd/sqlite"
)

const datasetsYAML = `
timezone: Asia/Seoul
connections:
  main: {url: "sqlite:people.db"}
privacy:
  purposes: {member_support: 회원 문의 응대}
  purpose_min_length: 10
  audit: {key_file: audit.key}
datasets:
  people:
    title: 회원
    connection: main
    personal: true
    marking: true
    roles: [admin, support]
    sql: SELECT id, name, branch FROM people WHERE branch = :branch ORDER BY id
    params:
      - {name: branch, type: string}
    pin:
      support: {branch: 부산}
    columns:
      - {name: id, type: int}
      - {name: name, type: string, personal: true, mask: name}
      - {name: branch, type: string}
    access:
      admin: {all: full}
      support: {all: masked}
    row_limit: 2
  plain:
    connection: main
    sql: SELECT id FROM people ORDER BY id
    columns:
      - {name: id, type: int}
`

type fixture struct {
	cfg   *exportd.Config
	src   exportd.Source
	trail *audit.Store
	db    *sql.DB // the trail's database
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "people.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, branch TEXT)`,
		`INSERT INTO people VALUES (1, '김민준', '부산'), (2, '이서윤', '부산'), (3, '박지호', '부산'), (4, '최하은', '서울')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if err := os.WriteFile(filepath.Join(dir, "audit.key"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := datasets.ParseConfig(filepath.Join(dir, "datasets.yaml"), []byte(datasetsYAML))
	if err != nil {
		t.Fatal(err)
	}
	src, err := sqlite.Open(t.Context(), filepath.Join(dir, "people.db"), exportd.SourceOptions{Location: cfg.Location})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	keys, err := audit.LoadKeys(cfg.Privacy.AuditKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.Open(t.Context(), "sqlite:"+filepath.Join(dir, "audit.db"), audit.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	adb, err := sql.Open("sqlite", filepath.Join(dir, "audit.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adb.Close() })
	return &fixture{cfg: cfg, src: src, trail: trail, db: adb}
}

func (f *fixture) records(t *testing.T) []audit.Record {
	t.Helper()
	var out []audit.Record
	if err := f.trail.Records(t.Context(), time.Time{}, time.Now().Add(time.Hour), func(r *audit.Record) error {
		out = append(out, *r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

var purpose = audit.Purpose{Category: "member_support", Text: "회원 문의 1234번 응대를 위한 확인"}

// The plan decides in a fixed order: access and pins before the fields,
// every field at fault reported together, then the columns.
func TestNewOrder(t *testing.T) {
	f := newFixture(t)
	support := plan.Principal{Name: "kim", Roles: []string{"support"}, Enforce: true}
	for _, tc := range []struct {
		name   string
		req    plan.Request
		check  func(error) bool
		fields []string
	}{
		{"a role the dataset does not grant", plan.Request{Principal: plan.Principal{Name: "lee", Roles: []string{"viewer"}, Enforce: true},
			Params: url.Values{"nope": {"x"}}}, func(err error) bool { return errors.Is(err, auth.ErrForbidden) }, nil},
		{"a pinned parameter overridden, before the missing purpose", plan.Request{Principal: support, Params: url.Values{"branch": {"서울"}}},
			func(err error) bool { var pe *exportd.PinError; return errors.As(err, &pe) && pe.Param == "branch" }, nil},
		{"a reserved name, an unknown parameter and no purpose, all at once", plan.Request{Principal: support,
			Params: url.Values{"columns": {"id"}, "nope": {"1"}}}, nil, []string{"purpose", "columns", "nope"}},
		{"a column the role may not choose", plan.Request{Principal: plan.Principal{Name: "x", Roles: []string{"viewer"}},
			Purpose: purpose, Params: url.Values{"branch": {"부산"}}, Columns: []string{"name"}},
			func(err error) bool { return errors.Is(err, mask.ErrForbiddenColumn) }, nil},
		{"no column chosen", plan.Request{Principal: support, Purpose: purpose, Columns: []string{}},
			func(err error) bool { var pe *exportd.ParamError; return errors.As(err, &pe) && pe.Param == "columns" }, nil},
	} {
		_, err := plan.New(f.cfg, "people", tc.req)
		if err == nil {
			t.Errorf("%s: planned", tc.name)
			continue
		}
		if tc.check != nil && !tc.check(err) {
			t.Errorf("%s: %v", tc.name, err)
		}
		if tc.fields != nil {
			var got []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var pe *exportd.ParamError
				var pu *exportd.PurposeError
				switch {
				case errors.As(e, &pu):
					got = append(got, pu.Field)
				case errors.As(e, &pe):
					got = append(got, pe.Param)
				}
			}
			if !slices.Equal(got, tc.fields) {
				t.Errorf("%s: fields %v, want %v (%v)", tc.name, got, tc.fields, err)
			}
		}
	}
	if _, err := plan.New(f.cfg, "nope", plan.Request{}); !errors.Is(err, exportd.ErrUnknownDataset) {
		t.Errorf("unknown dataset: %v", err)
	}
}

// A plan fills in the pinned parameters and decides the writer's options
// (sheet named after the dataset, title, marking), the file name and the
// audit record.
func TestNewDecides(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 3, 1, 0, 30, 0, 0, time.UTC)
	p, err := plan.New(f.cfg, "people", plan.Request{Format: exportd.FormatCSV, Purpose: purpose, Now: now,
		Principal: plan.Principal{Name: "kim", Roles: []string{"support"}, Client: "10.0.0.7", Enforce: true}})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Raw.Get("branch"); got != "부산" {
		t.Errorf("pinned branch %q", got)
	}
	if p.Options.Sheet != "people" || p.Options.Properties.Title != "회원" || !p.Options.BOM ||
		!strings.Contains(p.Options.HeaderFooter.OddHeader, "kim") || !strings.Contains(p.Options.HeaderFooter.OddHeader, "2026-03-01 09:30") {
		t.Errorf("options %+v", p.Options)
	}
	if p.FileName != "people.csv" {
		t.Errorf("file name %q", p.FileName)
	}
	rec := p.Record()
	if rec.Principal != "kim" || rec.Client != "10.0.0.7" || rec.Dataset != "people" || rec.Format != "csv" ||
		string(rec.Params) != `{"branch":"부산"}` || strings.Join(rec.Columns, ",") != "id,name,branch" || rec.Purpose != purpose {
		t.Errorf("record %+v", rec)
	}
}

// A personal export's record of intent is in the trail before the first
// byte leaves; its outcome, after the last, completes it with the rows,
// bytes and digest of what was written.
func TestRunAudited(t *testing.T) {
	f := newFixture(t)
	p, err := plan.New(f.cfg, "people", plan.Request{Format: exportd.FormatCSV, Purpose: purpose, Params: url.Values{"branch": {"서울"}},
		Principal: plan.Principal{Name: "ada", Roles: []string{"admin"}, Enforce: true}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	seenBefore := -1
	res, err := p.Run(t.Context(), plan.Options{Source: f.src, Audit: f.trail,
		Output: writerFunc(func(b []byte) (int, error) {
			if seenBefore < 0 {
				seenBefore = len(f.records(t))
			}
			return out.Write(b)
		})})
	if err != nil {
		t.Fatal(err)
	}
	if seenBefore != 1 {
		t.Errorf("%d records when the first byte was written, want the record of intent", seenBefore)
	}
	recs := f.records(t)
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	in, done := recs[0], recs[1]
	if in.Outcome != audit.OutcomeStarted || in.Bytes != 0 || in.Principal != "ada" || in.Purpose != purpose {
		t.Errorf("intent %+v", in)
	}
	if done.Outcome != audit.OutcomeOK || done.Ref != in.Seq || done.Rows != 1 || done.Bytes != int64(out.Len()) ||
		done.SHA256 != res.SHA256 || done.SHA256 == "" || !strings.Contains(out.String(), "최하은") {
		t.Errorf("outcome %+v of %q", done, out.String())
	}
}

// When the record of intent cannot be written (the insert fails), nothing
// is written and the error says the trail is unavailable.
func TestRunAuditUnavailable(t *testing.T) {
	f := newFixture(t)
	if _, err := f.db.Exec(`CREATE TRIGGER refuse BEFORE INSERT ON ` + audit.DefaultTable + ` BEGIN SELECT RAISE(ABORT, 'disk full'); END`); err != nil {
		t.Fatal(err)
	}
	p, err := plan.New(f.cfg, "people", plan.Request{Format: exportd.FormatXLSX, Purpose: purpose, Params: url.Values{"branch": {"서울"}},
		Principal: plan.Principal{Name: "ada", Roles: []string{"admin"}}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err = p.Run(t.Context(), plan.Options{Source: f.src, Output: &out, Audit: f.trail})
	if !errors.Is(err, plan.ErrAuditUnavailable) || out.Len() != 0 {
		t.Errorf("run: %v, %d bytes written", err, out.Len())
	}
	// No trail at all is the same refusal.
	if _, err = p.Run(t.Context(), plan.Options{Source: f.src, Output: &out}); !errors.Is(err, plan.ErrAuditUnavailable) || out.Len() != 0 {
		t.Errorf("run without a trail: %v, %d bytes written", err, out.Len())
	}
}

// The row limit is a direct download's: a job or the command line runs
// past it.
func TestRunRowLimitDirectOnly(t *testing.T) {
	f := newFixture(t)
	p, err := plan.New(f.cfg, "people", plan.Request{Format: exportd.FormatCSV, Purpose: purpose, Params: url.Values{"branch": {"부산"}},
		Principal: plan.Principal{Name: "ada", Roles: []string{"admin"}}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := p.Run(context.Background(), plan.Options{Source: f.src, Output: &out, Audit: f.trail, Direct: true}); !errors.Is(err, exportd.ErrRowLimit) {
		t.Errorf("direct: %v", err)
	}
	out.Reset()
	res, err := p.Run(context.Background(), plan.Options{Source: f.src, Output: &out, Audit: f.trail})
	if err != nil || res.Rows != 3 {
		t.Errorf("not direct: %d rows, %v", res.Rows, err)
	}
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(b []byte) (int, error) { return w(b) }
