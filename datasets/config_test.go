package datasets

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd"
)

func TestLoadConfigGood(t *testing.T) {
	cfg, err := LoadConfig("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Timezone != "Asia/Seoul" || cfg.Location.String() != "Asia/Seoul" {
		t.Errorf("timezone %q %v", cfg.Timezone, cfg.Location)
	}
	abs, _ := filepath.Abs("testdata/demo.db")
	if got := cfg.Connections["main"]; got.URL != "sqlite:"+abs || got.Driver() != "sqlite" || got.Name != "main" {
		t.Errorf("connection %+v", got)
	}
	var names []string
	for _, d := range cfg.Datasets {
		names = append(names, d.Name)
	}
	if want := []string{"members", "big-table"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("datasets %v, want file order %v", names, want)
	}
	d, ok := cfg.Dataset("members")
	if !ok {
		t.Fatal("no members")
	}
	if d.Title != "회원 목록" || d.Connection != "main" || d.Sheet != "회원" || d.FileName != "회원목록_{from}" ||
		d.RowLimit != 100000 || d.Timeout != 30*time.Second || d.MaxDuration != 10*time.Minute || d.Key != "id" {
		t.Errorf("dataset %+v", d)
	}
	if !strings.HasPrefix(d.SQL, "SELECT m.id, m.name, avg(r.score) AS score_avg\nFROM members") {
		t.Errorf("sql %q", d.SQL)
	}
	wantParams := []exportd.Param{
		{Name: "from", Type: exportd.ParamDate, Required: true, Label: "가입일 시작"},
		{Name: "grades", Type: exportd.ParamEnum, Values: []string{"gold", "silver", "bronze"}, List: true, Default: []string{"gold"}},
		{Name: "q", Type: exportd.ParamString, MaxLength: 50, Pattern: `^[\p{L}0-9 ]*$`},
		{Name: "min", Type: exportd.ParamInt, Min: "0", Max: "100", Default: []string{"0"}},
	}
	if !reflect.DeepEqual(d.Params, wantParams) {
		t.Errorf("params\n got %+v\nwant %+v", d.Params, wantParams)
	}
	wantCols := []exportd.Column{
		{Name: "id", Header: "번호", Type: exportd.TypeInt, Width: 8},
		{Name: "name", Header: "이름"},
		{Name: "score_avg", Header: "평균 점수", Type: exportd.TypeFloat, Format: "0.00", Width: 10},
	}
	if !reflect.DeepEqual(d.Columns, wantCols) {
		t.Errorf("columns\n got %+v\nwant %+v", d.Columns, wantCols)
	}
	if d.SheetName() != "회원" {
		t.Errorf("sheet name %q", d.SheetName())
	}
	big, _ := cfg.Dataset("big-table")
	if big.Connection != "main" || big.SheetName() != "big-table" {
		t.Errorf("big-table: connection %q sheet %q", big.Connection, big.SheetName())
	}
	if _, err := cfg.Lookup("nope"); !errors.Is(err, exportd.ErrUnknownDataset) || err.Error() != `unknown dataset "nope"` {
		t.Errorf("Lookup: %v", err)
	}
}

// TestLoadConfigBad checks that every mistake of a broken file is reported
// at once, in line order, each with its line, dataset and field.
func TestLoadConfigBad(t *testing.T) {
	_, err := LoadConfig("testdata/bad.yaml")
	var errs ConfigErrors
	if !errors.As(err, &errs) {
		t.Fatalf("err %T %v", err, err)
	}
	want := []string{
		`testdata/bad.yaml:1: timezone: unknown time zone "Mars/Olympus" (want an IANA name such as Asia/Seoul or UTC)`,
		`testdata/bad.yaml:6: connections.other.url: unsupported scheme "http" (want postgres://, mysql:// or sqlite:PATH)`,
		`testdata/bad.yaml:8: dataset "Members!": invalid dataset name (want [a-z0-9_-]+)`,
		`testdata/bad.yaml:12: dataset "members": connection: unknown connection "nope" (want main, other)`,
		`testdata/bad.yaml:15: dataset "members": sql: uses :undeclared, which is not declared in params`,
		`testdata/bad.yaml:17: dataset "members": params[0].type: unknown type "dat" (want string, int, float, date, datetime, bool, enum)`,
		`testdata/bad.yaml:18: dataset "members": params[1].name: repeated parameter "from" (also params[0])`,
		`testdata/bad.yaml:19: dataset "members": params[2].min: greater than max (10 > 1)`,
		`testdata/bad.yaml:19: dataset "members": params[2].name: parameter "unused" is declared but the sql never uses :unused`,
		`testdata/bad.yaml:20: dataset "members": params[3].values: an enum needs at least one value`,
		`testdata/bad.yaml:20: dataset "members": params[3].name: parameter "g" is declared but the sql never uses :g`,
		"testdata/bad.yaml:21: dataset \"members\": params[4].pattern: does not compile: error parsing regexp: missing closing ): `(`",
		`testdata/bad.yaml:21: dataset "members": params[4].default: longer than 3 characters`,
		`testdata/bad.yaml:21: dataset "members": params[4].name: parameter "s" is declared but the sql never uses :s`,
		`testdata/bad.yaml:22: dataset "members": params[5].colour: unknown field (want one of name, label, description, type, list, required, default, min, max, max_length, pattern, values)`,
		`testdata/bad.yaml:22: dataset "members": params[5].default: not an integer`,
		`testdata/bad.yaml:22: dataset "members": params[5].name: parameter "n" is declared but the sql never uses :n`,
		`testdata/bad.yaml:24: dataset "members": columns[0].type: unknown type "integer" (want string, int, float, decimal, bool, date, datetime)`,
		`testdata/bad.yaml:25: dataset "members": columns[1].format: empty number format (leave the field out for the default)`,
		`testdata/bad.yaml:25: dataset "members": columns[1].name: repeated column "id" (also columns[0])`,
		`testdata/bad.yaml:26: dataset "members": sheet: must not contain any of [ ] : * ? / \`,
		`testdata/bad.yaml:27: dataset "members": filename: {nothere} is not a declared parameter`,
		`testdata/bad.yaml:28: dataset "members": timeout: not a duration "soon" (want e.g. 30s, 10m, 1h30m)`,
		`testdata/bad.yaml:29: dataset "members": row_limit: must not be negative (0 means no limit)`,
		`testdata/bad.yaml:30: dataset "members": key: "nokey" is not a declared column`,
		`testdata/bad.yaml:31: dataset "members": extra: unknown field (want one of title, description, connection, sql, params, columns, sheet, sheets, total_label, filename, row_limit, timeout, max_duration, key, roles, pin, personal, access, encryption, marking, schedules)`,
	}
	got := strings.Split(err.Error(), "\n")
	if len(errs) != len(got) {
		t.Errorf("%d errors but %d lines", len(errs), len(got))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Line != 1 || ce.Field != "timezone" || ce.File != "testdata/bad.yaml" {
		t.Errorf("first *ConfigError: %+v", ce)
	}
}

// TestDatasetRules checks each rule of a dataset declaration: valid
// snippets load, invalid ones give exactly one error naming the line and
// the field. Snippets are the body of dataset "d", starting at line 6.
func TestDatasetRules(t *testing.T) {
	const head = "connections:\n  main:\n    url: sqlite:x.db\ndatasets:\n  d:\n"
	tests := []struct {
		name, body string
		want       string // "" = valid; else the one error, without "f.yaml:"
	}{
		{"minimal", "sql: SELECT 1", ""},
		{"every field", "title: T\ndescription: D\nconnection: main\nsql: SELECT :a\nparams: [{name: a, type: int}]\ncolumns: [{name: x}]\nsheet: S\nfilename: f_{a}.xlsx\nrow_limit: 0\ntimeout: 1m\nmax_duration: 1h\nkey: x", ""},
		{"unknown field", "sql: SELECT 1\nowner: admin", `7: dataset "d": owner: unknown field (want one of title, description, connection, sql, params, columns, sheet, sheets, total_label, filename, row_limit, timeout, max_duration, key, roles, pin, personal, access, encryption, marking, schedules)`},
		{"repeated field", "sql: SELECT 1\nsql: SELECT 2", `7: dataset "d": sql: repeated (first at line 6)`},
		{"missing sql", "title: x", `5: dataset "d": sql: missing`},
		{"empty sql", "sql: '  '", `6: dataset "d": sql: empty`},
		{"sql not text", "sql: [a]", `6: dataset "d": sql: want text, got a list`},
		{"not a mapping", "", `5: dataset "d": want a mapping, got nothing`},
		{"undeclared param at its line", "sql: |\n  SELECT 1\n  WHERE a = :a", `8: dataset "d": sql: uses :a, which is not declared in params`},
		{"param in a string literal is not a use", "sql: SELECT ':a'\nparams: [{name: a, type: int}]", `7: dataset "d": params[0].name: parameter "a" is declared but the sql never uses :a`},
		{"param in a comment is not a use", "sql: \"SELECT 1 -- :a\"\nparams: [{name: a, type: int}]", `7: dataset "d": params[0].name: parameter "a" is declared but the sql never uses :a`},
		{"repeated param", "sql: SELECT :a\nparams:\n  - {name: a, type: int}\n  - {name: a, type: string}", `9: dataset "d": params[1].name: repeated parameter "a" (also params[0])`},
		{"param name", "sql: SELECT 1\nparams: [{name: 1a, type: int}]", `7: dataset "d": params[0].name: invalid parameter name "1a" (want a letter or _ then letters, digits or _)`},
		{"param name reserved", "sql: SELECT :format\nparams: [{name: format, type: string}]", `7: dataset "d": params[0].name: "format" is reserved by the server (reserved: format, part, part_rows, part_from, columns, sheet, purpose, purpose_text, password, queue)`},
		{"param name missing", "sql: SELECT 1\nparams: [{type: int}]", `7: dataset "d": params[0].name: missing`},
		{"param not a mapping", "sql: SELECT 1\nparams: [a]", `7: dataset "d": params[0]: want a mapping, got "a"`},
		{"params not a list", "sql: SELECT 1\nparams: {a: 1}", `7: dataset "d": params: want a list, got a mapping`},
		{"param type unknown", "sql: SELECT :from\nparams:\n  - {name: from, type: dat}", `8: dataset "d": params[0].type: unknown type "dat" (want string, int, float, date, datetime, bool, enum)`},
		{"param type missing", "sql: SELECT :a\nparams: [{name: a}]", `7: dataset "d": params[0].type: missing (want string, int, float, date, datetime, bool, enum)`},
		{"param unknown field", "sql: SELECT :a\nparams: [{name: a, type: int, maximum: 3}]", `7: dataset "d": params[0].maximum: unknown field (want one of name, label, description, type, list, required, default, min, max, max_length, pattern, values)`},
		{"list not bool", "sql: SELECT :a\nparams: [{name: a, type: int, list: 'yes'}]", `7: dataset "d": params[0].list: want true or false, got "yes"`},
		{"required not bool", "sql: SELECT :a\nparams: [{name: a, type: int, required: 1}]", `7: dataset "d": params[0].required: want true or false, got "1"`},
		{"every type and rule", "sql: SELECT :a, :b, :c, :d, :e, :f, :g\nparams:\n" +
			"  - {name: a, type: string, max_length: 5, pattern: '^[a-z]+$', default: abc}\n" +
			"  - {name: b, type: int, min: -5, max: 5, default: 0}\n" +
			"  - {name: c, type: float, min: 0.5, max: 1e3, default: 2.5}\n" +
			"  - {name: d, type: date, min: 2020-01-01, max: 2030-12-31, default: 2024-02-29}\n" +
			"  - {name: e, type: datetime, min: '2020-01-01 00:00', default: '2024-01-01T09:00:00+09:00'}\n" +
			"  - {name: f, type: bool, default: false}\n" +
			"  - {name: g, type: enum, values: [x, y], list: true, default: [x, y]}", ""},
		{"default int", "sql: SELECT :a\nparams: [{name: a, type: int, default: abc}]", `7: dataset "d": params[0].default: not an integer`},
		{"default date", "sql: SELECT :a\nparams: [{name: a, type: date, default: 2024-02-30}]", `7: dataset "d": params[0].default: not a date (want YYYY-MM-DD)`},
		{"default below min", "sql: SELECT :a\nparams: [{name: a, type: int, min: 1, default: 0}]", `7: dataset "d": params[0].default: must be at least 1`},
		{"default above max date", "sql: SELECT :a\nparams: [{name: a, type: date, max: 2020-01-01, default: 2021-01-01}]", `7: dataset "d": params[0].default: must be at most 2020-01-01`},
		{"default not in enum", "sql: SELECT :a\nparams: [{name: a, type: enum, values: [x], default: y}]", `7: dataset "d": params[0].default: "y" is not one of x`},
		{"default list item not in enum", "sql: SELECT :a\nparams:\n  - name: a\n    type: enum\n    list: true\n    values: [x]\n    default: [x, z]", `12: dataset "d": params[0].default[1]: "z" is not one of x`},
		{"default pattern", "sql: SELECT :a\nparams: [{name: a, type: string, pattern: '^[0-9]+$', default: abc}]", `7: dataset "d": params[0].default: does not match the pattern ^[0-9]+$`},
		{"default too long", "sql: SELECT :a\nparams: [{name: a, type: string, max_length: 2, default: 회원님}]", `7: dataset "d": params[0].default: longer than 2 characters`},
		{"default on required", "sql: SELECT :a\nparams: [{name: a, type: int, required: true, default: 1}]", `7: dataset "d": params[0].default: a required parameter cannot have a default`},
		{"list default on scalar", "sql: SELECT :a\nparams: [{name: a, type: int, default: [1, 2]}]", `7: dataset "d": params[0].default: a list, but the parameter is not a list (add list: true)`},
		{"null default is none", "sql: SELECT :a\nparams: [{name: a, type: int, default: null}]", ""},
		{"min above max", "sql: SELECT :a\nparams: [{name: a, type: float, min: 2, max: 1.5}]", `7: dataset "d": params[0].min: greater than max (2 > 1.5)`},
		{"min not a number", "sql: SELECT :a\nparams: [{name: a, type: int, min: x}]", `7: dataset "d": params[0].min: not an integer`},
		{"max not a datetime", "sql: SELECT :a\nparams: [{name: a, type: datetime, max: tomorrow}]", `7: dataset "d": params[0].max: not a date-time (want YYYY-MM-DD HH:MM[:SS] or RFC 3339)`},
		{"min on string", "sql: SELECT :a\nparams: [{name: a, type: string, min: a}]", `7: dataset "d": params[0].min: only int, float, date and datetime parameters have bounds`},
		{"max_length on int", "sql: SELECT :a\nparams: [{name: a, type: int, max_length: 3}]", `7: dataset "d": params[0].max_length: only string parameters have a maximum length`},
		{"max_length negative", "sql: SELECT :a\nparams: [{name: a, type: string, max_length: -1}]", `7: dataset "d": params[0].max_length: must not be negative`},
		{"max_length not int", "sql: SELECT :a\nparams: [{name: a, type: string, max_length: ten}]", `7: dataset "d": params[0].max_length: want an integer, got "ten"`},
		{"pattern on int", "sql: SELECT :a\nparams: [{name: a, type: int, pattern: x}]", `7: dataset "d": params[0].pattern: only string parameters have a pattern`},
		{"pattern compiles", "sql: SELECT :a\nparams: [{name: a, type: string, pattern: '[a-'}]", "7: dataset \"d\": params[0].pattern: does not compile: error parsing regexp: missing closing ]: `[a-`"},
		{"enum without values", "sql: SELECT :a\nparams: [{name: a, type: enum}]", `7: dataset "d": params[0].values: an enum needs at least one value`},
		{"enum repeated value", "sql: SELECT :a\nparams: [{name: a, type: enum, values: [x, x]}]", `7: dataset "d": params[0].values[1]: repeated value "x"`},
		{"enum list value with comma", "sql: SELECT :a\nparams: [{name: a, type: enum, list: true, values: ['x,y']}]", `7: dataset "d": params[0].values[0]: a list's values cannot contain a comma`},
		{"values on string", "sql: SELECT :a\nparams: [{name: a, type: string, values: [x]}]", `7: dataset "d": params[0].values: only enum parameters have values`},
		{"columns", "sql: SELECT 1\ncolumns:\n  - {name: a, header: 번호, type: decimal, format: '#,##0.00', width: 12.5}\n  - {name: b, type: datetime}", ""},
		{"column type", "sql: SELECT 1\ncolumns: [{name: a, type: integer}]", `7: dataset "d": columns[0].type: unknown type "integer" (want string, int, float, decimal, bool, date, datetime)`},
		{"column format empty", "sql: SELECT 1\ncolumns: [{name: a, format: ''}]", `7: dataset "d": columns[0].format: empty number format (leave the field out for the default)`},
		{"column width", "sql: SELECT 1\ncolumns: [{name: a, width: -1}]", `7: dataset "d": columns[0].width: must be between 0 and 255 characters`},
		{"column width not a number", "sql: SELECT 1\ncolumns: [{name: a, width: wide}]", `7: dataset "d": columns[0].width: want a number, got "wide"`},
		{"column name missing", "sql: SELECT 1\ncolumns:\n  - {header: x}", `8: dataset "d": columns[0].name: missing`},
		{"column repeated", "sql: SELECT 1\ncolumns:\n  - {name: a}\n  - {name: a}", `9: dataset "d": columns[1].name: repeated column "a" (also columns[0])`},
		{"column unknown field", "sql: SELECT 1\ncolumns: [{name: a, colour: red}]", `7: dataset "d": columns[0].colour: unknown field (want one of name, header, type, format, width, personal, mask, total)`},
		{"sheet long", "sql: SELECT 1\nsheet: " + strings.Repeat("가", 32), `7: dataset "d": sheet: longer than 31 characters`},
		{"sheet 31 Korean", "sql: SELECT 1\nsheet: " + strings.Repeat("가", 31), ""},
		{"sheet chars", "sql: SELECT 1\nsheet: 'a:b'", `7: dataset "d": sheet: must not contain any of [ ] : * ? / \`},
		{"sheet apostrophe", "sql: SELECT 1\nsheet: \"'a\"", `7: dataset "d": sheet: must not begin or end with an apostrophe`},
		{"sheet History", "sql: SELECT 1\nsheet: history", `7: dataset "d": sheet: "History" is reserved by Excel`},
		{"sheet empty", "sql: SELECT 1\nsheet: ''", `7: dataset "d": sheet: empty`},
		{"filename undeclared", "sql: SELECT 1\nfilename: x_{from}", `7: dataset "d": filename: {from} is not a declared parameter`},
		{"filename brace", "sql: SELECT :a\nparams: [{name: a, type: int}]\nfilename: 'x_{a'", `8: dataset "d": filename: unbalanced { or } (write {param} to insert a parameter)`},
		{"filename field name", "sql: SELECT 1\nfilename: 'x_{a b}'", `7: dataset "d": filename: {a b} is not a parameter name`},
		{"row_limit text", "sql: SELECT 1\nrow_limit: many", `7: dataset "d": row_limit: want an integer, got "many"`},
		{"row_limit negative", "sql: SELECT 1\nrow_limit: -1", `7: dataset "d": row_limit: must not be negative (0 means no limit)`},
		{"timeout", "sql: SELECT 1\ntimeout: 30", `7: dataset "d": timeout: not a duration "30" (want e.g. 30s, 10m, 1h30m)`},
		{"max_duration negative", "sql: SELECT 1\nmax_duration: -1m", `7: dataset "d": max_duration: must not be negative`},
		{"key not a column", "sql: SELECT 1\ncolumns: [{name: a}]\nkey: b", `8: dataset "d": key: "b" is not a declared column`},
		{"key without columns", "sql: SELECT 1\nkey: b", ""},
		{"connection unknown", "sql: SELECT 1\nconnection: other", `7: dataset "d": connection: unknown connection "other" (want main)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := "    " + strings.ReplaceAll(tt.body, "\n", "\n    ") + "\n"
			if tt.body == "" {
				body = ""
			}
			cfg, err := ParseConfig("f.yaml", []byte(head+body))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error:\n%v", err)
				}
				if len(cfg.Datasets) != 1 {
					t.Fatalf("datasets %v", cfg.Datasets)
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

func TestConfigRules(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string // "" = valid
	}{
		{"defaults", "connections: {main: {url: 'postgres://u:p@h/db'}}\ndatasets: {d: {sql: SELECT 1}}", ""},
		{"postgres cast is no parameter", "connections: {main: {url: 'postgresql://h/db'}}\ndatasets: {d: {sql: 'SELECT :a::int, $x$:b$x$', params: [{name: a, type: int}]}}", ""},
		{"mysql backslash escape", "connections: {main: {url: 'mysql://h/db'}}\ndatasets: {d: {sql: \"SELECT 'it\\\\'s :b', :a\", params: [{name: a, type: int}]}}", ""},
		{"empty file", "", `f.yaml: empty file (want timezone, connections and datasets)`},
		{"syntax error", "connections:\n  main: [\n", `f.yaml:2: did not find expected node content`},
		{"not a mapping", "- a", `f.yaml:1: want a mapping, got a list`},
		{"unknown top field", "connections: {main: {url: 'sqlite:x'}}\ndatasets: {d: {sql: SELECT 1}}\nlisten: :8080", `f.yaml:3: listen: unknown field (want one of timezone, connections, datasets, auth, privacy)`},
		{"no datasets", "connections: {main: {url: 'sqlite:x'}}", `f.yaml: datasets: missing (want at least one dataset)`},
		{"empty datasets", "connections: {main: {url: 'sqlite:x'}}\ndatasets: {}", `f.yaml:2: datasets: empty (want at least one dataset)`},
		{"no connections", "datasets: {d: {sql: SELECT 1}}", `f.yaml: connections: missing (want at least one connection)`},
		{"repeated dataset", "connections: {main: {url: 'sqlite:x'}}\ndatasets:\n  d: {sql: SELECT 1}\n  d: {sql: SELECT 2}", `f.yaml:4: datasets.d: repeated (first at line 3)`},
		{"dataset name", "connections: {main: {url: 'sqlite:x'}}\ndatasets:\n  회원: {sql: SELECT 1}", `f.yaml:3: dataset "회원": invalid dataset name (want [a-z0-9_-]+)`},
		{"timezone", "timezone: Seoul\nconnections: {main: {url: 'sqlite:x'}}\ndatasets: {d: {sql: SELECT 1}}", `f.yaml:1: timezone: unknown time zone "Seoul" (want an IANA name such as Asia/Seoul or UTC)`},
		{"url scheme", "connections: {main: {url: 'oracle://h/db'}}\ndatasets: {d: {sql: SELECT 1}}", `f.yaml:1: connections.main.url: unsupported scheme "oracle" (want postgres://, mysql:// or sqlite:PATH)`},
		{"url missing", "connections: {main: {}}\ndatasets: {d: {sql: SELECT 1}}", `f.yaml:1: connections.main.url: missing`},
		{"url env unset", "connections: {main: {url: 'postgres://u:${EXPORTD_TEST_UNSET}@h/db'}}\ndatasets: {d: {sql: SELECT 1}}", `f.yaml:1: connections.main.url: environment variable "EXPORTD_TEST_UNSET" is not set`},
		{"connection field", "connections: {main: {url: 'sqlite:x', dsn: y}}\ndatasets: {d: {sql: SELECT 1}}", `f.yaml:1: connections.main.dsn: unknown field (want one of url)`},
		{"connection needed", "connections:\n  a: {url: 'sqlite:x'}\n  b: {url: 'sqlite:y'}\ndatasets:\n  d: {sql: SELECT 1}", `f.yaml:5: dataset "d": connection: missing (the file has several connections: a, b)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("f.yaml", []byte(tt.yaml))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error:\n%v", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestConfigEnvAndPaths(t *testing.T) {
	t.Setenv("EXPORTD_TEST_PW", "s3cr$t")
	dir := t.TempDir()
	path := filepath.Join(dir, "datasets.yaml")
	data := "connections:\n" +
		"  pg: {url: 'postgres://u:${EXPORTD_TEST_PW}@h/db'}\n" +
		"  rel: {url: 'sqlite:data/demo.db?_pragma=busy_timeout(5000)'}\n" +
		"  abs: {url: 'sqlite:/var/x.db'}\n" +
		"  mem: {url: 'sqlite::memory:'}\n" +
		"datasets: {d: {connection: pg, sql: SELECT 1}}\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"pg":  "postgres://u:s3cr$t@h/db",
		"rel": "sqlite:" + filepath.Join(dir, "data/demo.db") + "?_pragma=busy_timeout(5000)",
		"abs": "sqlite:/var/x.db",
		"mem": "sqlite::memory:",
	}
	for name, url := range want {
		if got := cfg.Connections[name].URL; got != url {
			t.Errorf("%s: got %q want %q", name, got, url)
		}
	}
	if cfg.Timezone != "UTC" || cfg.Location != time.UTC {
		t.Errorf("default timezone %q %v", cfg.Timezone, cfg.Location)
	}
	if d := cfg.Connections["pg"].Driver(); d != "postgres" {
		t.Errorf("postgres driver %q", d)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzParseConfig checks that no input makes the loader panic, and that a
// config is returned exactly when there is no error.
func FuzzParseConfig(f *testing.F) {
	for _, name := range []string{"testdata/good.yaml", "testdata/bad.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("connections: {main: {url: 'sqlite:x'}}\ndatasets: {d: &a {sql: SELECT 1}, e: *a}"))
	f.Add([]byte("datasets: {d: {sql: 'SELECT :a', params: [{name: a, type: enum, values: [x], list: true, default: [x, y]}]}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("f.yaml", data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("cfg %v with err %v", cfg, err)
		}
		if err != nil {
			var errs ConfigErrors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T %v", err, err)
			}
		}
	})
}
