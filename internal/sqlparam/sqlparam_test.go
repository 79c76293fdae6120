package sqlparam

import (
	"reflect"
	"testing"

	"github.com/exportd/exportd"
)

func TestBindNamed(t *testing.T) {
	params := map[string]any{"from": "2024-01-01", "cat": []any{"gold", "silver"}, "n": int64(3), "empty": []any{}}
	tests := []struct {
		name, sql string
		d         Dialect
		want      string
		args      []any
	}{
		{"postgres", "SELECT a::text FROM t WHERE d >= :from AND c IN (:cat) LIMIT :n", Postgres,
			"SELECT a::text FROM t WHERE d >= $1 AND c IN ($2, $3) LIMIT $4", []any{"2024-01-01", "gold", "silver", int64(3)}},
		{"mysql", "SELECT ':from', \"x:n\", `c:n` FROM t -- :n\nWHERE d = :from # :cat\n", MySQL,
			"SELECT ':from', \"x:n\", `c:n` FROM t -- :n\nWHERE d = ? # :cat\n", []any{"2024-01-01"}},
		{"escaped quote mysql", `SELECT 'it\'s :n' , :n`, MySQL, `SELECT 'it\'s :n' , ?`, []any{int64(3)}},
		{"doubled quote", `SELECT 'it''s :n', :n /* :from */`, SQLite, `SELECT 'it''s :n', ? /* :from */`, []any{int64(3)}},
		{"dollar quote", `SELECT $q$ :n $q$, $1x, :n`, Postgres, `SELECT $q$ :n $q$, $1x, $1`, []any{int64(3)}},
		{"repeated", `SELECT :n + :n`, Postgres, `SELECT $1 + $2`, []any{int64(3), int64(3)}},
		{"empty list", `SELECT 1 WHERE c IN (:empty)`, SQLite, `SELECT 1 WHERE c IN (NULL)`, nil},
		{"time literal", `SELECT '12:30', x FROM t WHERE a=:n`, SQLite, `SELECT '12:30', x FROM t WHERE a=?`, []any{int64(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, args, err := Bind(tt.sql, params, tt.d)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("sql\n got %q\nwant %q", got, tt.want)
			}
			if !reflect.DeepEqual(args, tt.args) {
				t.Errorf("args got %#v want %#v", args, tt.args)
			}
		})
	}
}

func TestBindNamedMissing(t *testing.T) {
	_, _, err := Bind("SELECT :nope", nil, SQLite)
	if err == nil || err.Error() != `parameter "nope" is used in the query but has no value` {
		t.Fatalf("err = %v", err)
	}
}

func TestParamNames(t *testing.T) {
	got := Names("SELECT :b, :a, :b, ':c', x::int", Postgres)
	if !reflect.DeepEqual(got, []string{"b", "a"}) {
		t.Fatalf("got %v", got)
	}
}

// TestBindParamsInjection binds hostile text as a parameter: it stays one
// argument and never becomes SQL.
func TestBindParamsInjection(t *testing.T) {
	ds := &exportd.Dataset{Name: "d", SQL: "SELECT * FROM members WHERE name = :name AND id = :id", Params: []exportd.Param{
		{Name: "name", Type: exportd.ParamString},
		{Name: "id", Type: exportd.ParamInt},
	}}
	for _, s := range []string{"1; DROP TABLE members", "' OR 1=1 --", `"; DELETE FROM members; --`, ":id", "회원'); --"} {
		got, err := ds.BindParams(map[string][]string{"name": {s}}, nil)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if got["name"] != s {
			t.Errorf("%q bound as %#v", s, got["name"])
		}
		q := ds.Query(got)
		sql, args, err := Bind(q.SQL, q.Params, Postgres)
		if err != nil {
			t.Fatal(err)
		}
		if sql != "SELECT * FROM members WHERE name = $1 AND id = $2" || !reflect.DeepEqual(args, []any{s, nil}) {
			t.Errorf("%q: sql %q args %#v", s, sql, args)
		}
		if _, err := ds.BindParams(map[string][]string{"id": {s}}, nil); err == nil || err.Error() != `parameter "id": not an integer` {
			t.Errorf("%q as int: %v", s, err)
		}
	}
}
