package exportd

import (
	"reflect"
	"testing"
)

func TestBindNamed(t *testing.T) {
	params := map[string]any{"from": "2024-01-01", "cat": []any{"gold", "silver"}, "n": int64(3), "empty": []any{}}
	tests := []struct {
		name, sql string
		d         Dialect
		want      string
		args      []any
	}{
		{"postgres", "SELECT a::text FROM t WHERE d >= :from AND c IN (:cat) LIMIT :n", DialectPostgres,
			"SELECT a::text FROM t WHERE d >= $1 AND c IN ($2, $3) LIMIT $4", []any{"2024-01-01", "gold", "silver", int64(3)}},
		{"mysql", "SELECT ':from', \"x:n\", `c:n` FROM t -- :n\nWHERE d = :from # :cat\n", DialectMySQL,
			"SELECT ':from', \"x:n\", `c:n` FROM t -- :n\nWHERE d = ? # :cat\n", []any{"2024-01-01"}},
		{"escaped quote mysql", `SELECT 'it\'s :n' , :n`, DialectMySQL, `SELECT 'it\'s :n' , ?`, []any{int64(3)}},
		{"doubled quote", `SELECT 'it''s :n', :n /* :from */`, DialectSQLite, `SELECT 'it''s :n', ? /* :from */`, []any{int64(3)}},
		{"dollar quote", `SELECT $q$ :n $q$, $1x, :n`, DialectPostgres, `SELECT $q$ :n $q$, $1x, $1`, []any{int64(3)}},
		{"repeated", `SELECT :n + :n`, DialectPostgres, `SELECT $1 + $2`, []any{int64(3), int64(3)}},
		{"empty list", `SELECT 1 WHERE c IN (:empty)`, DialectSQLite, `SELECT 1 WHERE c IN (NULL)`, nil},
		{"time literal", `SELECT '12:30', x FROM t WHERE a=:n`, DialectSQLite, `SELECT '12:30', x FROM t WHERE a=?`, []any{int64(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, args, err := BindNamed(tt.sql, params, tt.d)
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
	_, _, err := BindNamed("SELECT :nope", nil, DialectSQLite)
	if err == nil || err.Error() != `parameter "nope" is used in the query but has no value` {
		t.Fatalf("err = %v", err)
	}
}

func TestParamNames(t *testing.T) {
	got := ParamNames("SELECT :b, :a, :b, ':c', x::int", DialectPostgres)
	if !reflect.DeepEqual(got, []string{"b", "a"}) {
		t.Fatalf("got %v", got)
	}
}
