package datasets_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exportd/exportd/datasets"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/sqlite"
)

// demoDB creates a small SQLite database in dir.
func demoDB(t *testing.T, dir string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "demo.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		`CREATE TABLE members (id INTEGER PRIMARY KEY, name TEXT NOT NULL, grade TEXT NOT NULL, joined_at DATE NOT NULL)`,
		`CREATE TABLE results (member_id INTEGER NOT NULL, score REAL NOT NULL)`,
		`INSERT INTO members VALUES (1, '김민준', 'gold', '2024-01-05'), (2, '이서연', 'silver', '2023-12-01')`,
		`INSERT INTO results VALUES (1, 90), (1, 80), (2, 70)`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
}

func openSQLite(ctx context.Context, conn exportd.Connection) (exportd.Source, error) {
	return sqlite.Open(ctx, strings.TrimPrefix(conn.URL, "sqlite:"), exportd.SourceOptions{})
}

const checkConfig = `connections:
  main:
    url: sqlite:demo.db
  gone:
    url: sqlite:missing.db
datasets:
  good:
    connection: main
    sql: |
      SELECT m.id, m.name, avg(r.score) AS score_avg
      FROM members m JOIN results r ON r.member_id = m.id
      WHERE m.joined_at >= :from AND m.grade IN (:grades)
      GROUP BY m.id, m.name
    params:
      - {name: from, type: date, required: true}
      - {name: grades, type: enum, values: [gold, silver], list: true, default: [gold]}
    columns:
      - {name: id, type: int}
      - {name: name, header: 이름}
      - {name: score_avg, type: float, format: '0.00'}
    key: id
  undeclared-columns:
    connection: main
    sql: SELECT id, name FROM members
    key: member_id
  wrong:
    connection: main
    sql: SELECT id, name, joined_at, grade FROM members
    columns:
      - {name: name}
      - {name: id, type: date}
      - {name: nick}
      - {name: joined_at, type: int}
  broken-sql:
    connection: main
    sql: |
      SELECT id
      FROM nothere
  unreachable:
    connection: gone
    sql: SELECT 1
  unreachable-too:
    connection: gone
    sql: SELECT 2
`

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	demoDB(t, dir)
	path := filepath.Join(dir, "datasets.yaml")
	if err := os.WriteFile(path, []byte(checkConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := datasets.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	opened := map[string]int{}
	errs := datasets.Check(context.Background(), cfg, func(ctx context.Context, conn exportd.Connection) (exportd.Source, error) {
		opened[conn.Name]++
		return openSQLite(ctx, conn)
	})
	if opened["main"] != 1 || opened["gone"] != 1 {
		t.Errorf("connections opened %v, want each once", opened)
	}
	want := []string{
		path + `:25: dataset "undeclared-columns": key: column "member_id" is not in the query's result (id, name)`,
		path + `:30: dataset "wrong": columns[0].name: column "name" is column 2 of the query's result, declared as column 1 (declare columns in the query's order)`,
		path + `:31: dataset "wrong": columns[1].name: column "id" is column 1 of the query's result, declared as column 2 (declare columns in the query's order)`,
		path + `:31: dataset "wrong": columns[1].type: declared date, but the database returns int (INTEGER)`,
		path + `:32: dataset "wrong": columns[2].name: column "nick" is not in the query's result (id, name, joined_at, grade)`,
		path + `:33: dataset "wrong": columns[3].name: column "joined_at" is column 3 of the query's result, declared as column 4 (declare columns in the query's order)`,
		path + `:33: dataset "wrong": columns[3].type: declared int, but the database returns date (DATE)`,
		path + `:29: dataset "wrong": columns: the query's result has column "grade", which is not declared (declare it or leave it out of the sql)`,
		path + `:37: dataset "broken-sql": sql: prepare: sqlite describe: SQL logic error: no such table: nothere (1)`,
	}
	var got []string
	for _, e := range errs {
		var ce *datasets.ConfigError
		if !errors.As(e, &ce) {
			t.Errorf("%T is not a *ConfigError: %v", e, e)
		}
		got = append(got, e.Error())
	}
	// The unreachable connection is reported once, for its first dataset.
	if len(got) != len(want)+1 {
		t.Fatalf("got %d errors:\n%s", len(got), strings.Join(got, "\n"))
	}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("error %d\n got %s\nwant %s", i, got[i], w)
		}
	}
	last := got[len(got)-1]
	if !strings.HasPrefix(last, path+`:40: dataset "unreachable": connection: open "gone": sqlite open: `) || !strings.HasSuffix(last, "(datasets on it not checked)") {
		t.Errorf("unreachable: %s", last)
	}
}

// TestCheckClean checks the good example file against a real database: no
// mistakes, and the query then runs with bound parameters, hostile ones too.
func TestCheckClean(t *testing.T) {
	dir := t.TempDir()
	demoDB(t, dir)
	data, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The example's SQL filters on m.age, which the tiny database lacks;
	// its pattern on q would refuse the hostile values before the database.
	s := strings.Replace(string(data), "AND m.age >= :min", "AND m.id >= :min", 1)
	s = strings.Replace(s, `, pattern: '^[\p{L}0-9 ]*$'`, "", 1)
	data = []byte(s)
	path := filepath.Join(dir, "datasets.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := datasets.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if errs := datasets.Check(ctx, cfg, openSQLite); len(errs) != 1 || !strings.Contains(errs[0].Error(), `dataset "big-table": sql: prepare: `) {
		t.Fatalf("want only big-table's missing table, got %v", errs)
	}
	d, _ := cfg.Dataset("members")
	src, err := openSQLite(ctx, cfg.Connections["main"])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	count := func(q map[string][]string) int {
		t.Helper()
		params, err := d.BindParams(q, cfg.Location)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := src.Query(ctx, d.Query(params))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		dst := make([]exportd.Value, len(rows.Columns()))
		for rows.Next(dst) {
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(map[string][]string{"from": {"2023-01-01"}, "grades": {"gold,silver"}}); n != 2 {
		t.Errorf("both members: %d rows", n)
	}
	if n := count(map[string][]string{"from": {"2023-01-01"}}); n != 1 {
		t.Errorf("default grade gold: %d rows", n)
	}
	for _, evil := range []string{"' OR 1=1 --", "x'); DROP TABLE members; --"} {
		if n := count(map[string][]string{"from": {"2000-01-01"}, "q": {evil}}); n != 0 {
			t.Errorf("%q matched %d rows", evil, n)
		}
	}
	if n := count(map[string][]string{"from": {"2000-01-01"}, "q": {"민준"}}); n != 1 {
		t.Errorf("name search: %d rows", n)
	}
}
