package datasets_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/datasets"
)

// TestSheetsRules: each bad declaration of sheets: gets one error with
// its line and field.
func TestSheetsRules(t *testing.T) {
	const head = "connections:\n  main:\n    url: sqlite:x.db\n  other:\n    url: sqlite:y.db\ndatasets:\n  d:\n    connection: main\n"
	tests := []struct {
		name, body string
		want       string // "" = valid; else the one error, without "f.yaml:"
	}{
		{"valid", `params: [{name: from, type: date}]
total_label: 합계
sheets:
  - name: 회원별 평균
    sql: SELECT name, avg(score) AS avg FROM r WHERE day >= :from GROUP BY name
    columns: [{name: name}, {name: avg, type: float, total: average}]
  - name: 지점별 합계
    connection: other
    sql: |
      SELECT branch, sum(score) AS total
      FROM r GROUP BY branch
    columns: [{name: branch}, {name: total, total: sum}]`, ""},
		{"empty list", "sheets: []", `9: dataset "d": sheets: empty (want at least one sheet; a dataset of one query has sql: instead)`},
		{"not a list", "sheets: {a: 1}", `9: dataset "d": sheets: want a list, got a mapping`},
		{"with sql", "sql: SELECT 1\nsheets:\n  - {name: a, sql: SELECT 1 AS x, columns: [{name: x}]}", `9: dataset "d": sql: given together with sheets: (each sheet has its own sql)`},
		{"with columns", "columns: [{name: x}]\nsheets:\n  - {name: a, sql: SELECT 1 AS x, columns: [{name: x}]}", `9: dataset "d": columns: given together with sheets: (each sheet declares its own columns)`},
		{"with key", "key: x\nsheets:\n  - {name: a, sql: SELECT 1 AS x, columns: [{name: x}]}", `9: dataset "d": key: given together with sheets: (a dataset of several sheets is not downloaded in parts)`},
		{"name missing", "sheets:\n  - {sql: SELECT 1 AS x, columns: [{name: x}]}", `10: dataset "d": sheets[0].name: missing`},
		{"name invalid", "sheets:\n  - {name: 'a/b', sql: SELECT 1 AS x, columns: [{name: x}]}", `10: dataset "d": sheets[0].name: must not contain any of [ ] : * ? / \`},
		{"name comma", "sheets:\n  - {name: 'a,b', sql: SELECT 1 AS x, columns: [{name: x}]}", `10: dataset "d": sheets[0].name: must not contain a comma (columns= separates SHEET.COLUMN names with commas)`},
		{"name long", "sheets:\n  - {name: " + strings.Repeat("가", 32) + ", sql: SELECT 1 AS x, columns: [{name: x}]}", `10: dataset "d": sheets[0].name: longer than 31 characters`},
		{"name repeated", "sheets:\n  - {name: 결과, sql: SELECT 1 AS x, columns: [{name: x}]}\n  - name: 결과\n    sql: SELECT 2 AS x\n    columns: [{name: x}]",
			`11: dataset "d": sheets[1].name: repeated sheet "결과" (also sheets[0]; Excel compares sheet names without case)`},
		{"name repeated case", "sheets:\n  - {name: Sum, sql: SELECT 1 AS x, columns: [{name: x}]}\n  - {name: SUM, sql: SELECT 1 AS x, columns: [{name: x}]}",
			`11: dataset "d": sheets[1].name: repeated sheet "SUM" (also sheets[0]; Excel compares sheet names without case)`},
		{"sql missing", "sheets:\n  - name: a\n    columns: [{name: x}]", `10: dataset "d": sheets[0].sql: missing`},
		{"sql empty", "sheets:\n  - {name: a, sql: '', columns: [{name: x}]}", `10: dataset "d": sheets[0].sql: empty`},
		{"columns missing", "sheets:\n  - {name: a, sql: SELECT 1 AS x}", `10: dataset "d": sheets[0].columns: missing (each sheet declares its columns: its header leaves before its query runs)`},
		{"connection unknown", "sheets:\n  - name: a\n    connection: nope\n    sql: SELECT 1 AS x\n    columns: [{name: x}]", `11: dataset "d": sheets[0].connection: unknown connection "nope" (want main, other)`},
		{"undeclared parameter", "sheets:\n  - name: a\n    sql: |\n      SELECT 1 AS x\n      WHERE 1 = :nope\n    columns: [{name: x}]", `13: dataset "d": sheets[0].sql: uses :nope, which is not declared in params`},
		{"unused parameter", "params: [{name: p, type: int}]\nsheets:\n  - {name: a, sql: SELECT 1 AS x, columns: [{name: x}]}", `9: dataset "d": params[0].name: parameter "p" is declared but the sql never uses :p`},
		{"total on text", "sheets:\n  - name: a\n    sql: SELECT 'x' AS x\n    columns:\n      - {name: x, type: string, total: sum}", `13: dataset "d": sheets[0].columns[0].total: a total needs a numeric column (type int, float or decimal); "x" is string`},
		{"total unknown", "sheets:\n  - name: a\n    sql: SELECT 1 AS x\n    columns:\n      - {name: x, total: median}", `13: dataset "d": sheets[0].columns[0].total: unknown total "median" (want sum, average, count, min, max)`},
		{"total on one query", "sql: SELECT 'x' AS x\ncolumns: [{name: x, type: date, total: sum}]", `10: dataset "d": columns[0].total: a total needs a numeric column (type int, float or decimal); "x" is date`},
		{"unknown sheet field", "sheets:\n  - {name: a, sql: SELECT 1 AS x, columns: [{name: x}], colour: red}", `10: dataset "d": sheets[0].colour: unknown field (want one of name, connection, sql, columns)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := "    " + strings.ReplaceAll(tt.body, "\n", "\n    ") + "\n"
			cfg, err := datasets.ParseConfig("f.yaml", []byte(head+body))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error:\n%v", err)
				}
				d := cfg.Datasets[0]
				if len(d.Sheets) != 2 || d.Sheets[0].Name != "회원별 평균" || d.Sheets[1].Connection != "other" || d.Sheets[0].Connection != "" ||
					d.Sheets[1].Columns[1].Total != exportd.TotalSum || d.TotalLabel != "합계" {
					t.Fatalf("sheets %+v", d.Sheets)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %s", tt.want)
			}
			if got := err.Error(); got != "f.yaml:"+tt.want {
				t.Errorf("got  %s\nwant f.yaml:%s", got, tt.want)
			}
		})
	}
}

// TestCheckSheets: exportd check compares each sheet's declared columns
// with what its query returns on the database, and a total with the
// column's type there.
func TestCheckSheets(t *testing.T) {
	dir := t.TempDir()
	demoDB(t, dir)
	path := filepath.Join(dir, "d.yaml")
	os.WriteFile(path, []byte(`connections:
  main:
    url: sqlite:demo.db
datasets:
  report:
    sheets:
      - name: 회원
        sql: SELECT id, name FROM members
        columns: [{name: id, type: int, total: count}, {name: name}]
      - name: 결과
        sql: SELECT member_id, score FROM results
        columns:
          - {name: member_id}
          - {name: points}
      - name: 이름 합계
        sql: SELECT name FROM members
        columns:
          - {name: name, total: sum}
`), 0o644)
	cfg, err := datasets.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range datasets.Check(context.Background(), cfg, openSQLite) {
		got = append(got, strings.TrimPrefix(e.Error(), path))
	}
	want := []string{
		`:14: dataset "report": sheets[1].columns[1].name: column "points" is not in the query's result (member_id, score)`,
		`:12: dataset "report": sheets[1].columns: the query's result has column "score", which is not declared (declare it or leave it out of the sql)`,
		`:18: dataset "report": sheets[2].columns[0].total: a total needs a numeric column, but the database returns string (TEXT) for "name"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("check:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
