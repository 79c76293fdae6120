package exportd

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func seoul(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func date(y int, m time.Month, d int) DateArg {
	return DateArg{time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}

func TestBindParams(t *testing.T) {
	loc := seoul(t)
	ds := &Dataset{Name: "members", Params: []Param{
		{Name: "from", Type: ParamDate, Required: true, Min: "2000-01-01"},
		{Name: "grades", Type: ParamEnum, Values: []string{"gold", "silver", "bronze"}, List: true, Default: []string{"gold"}},
		{Name: "q", Type: ParamString, MaxLength: 5, Pattern: `^[\p{L}0-9 ]*$`},
		{Name: "min", Type: ParamInt, Min: "0", Max: "100", Default: []string{"0"}},
		{Name: "ratio", Type: ParamFloat, Min: "-1.5", Max: "1.5"},
		{Name: "at", Type: ParamDateTime, Max: "2030-01-01 00:00"},
		{Name: "active", Type: ParamBool},
		{Name: "ids", Type: ParamInt, List: true},
		{Name: "raw", Type: ParamString},
	}}
	base := map[string]any{
		"from": date(2024, 1, 1), "grades": []any{"gold"}, "q": nil, "min": int64(0), "ratio": nil,
		"at": nil, "active": nil, "ids": []any{}, "raw": nil,
	}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name string
		in   map[string][]string
		want map[string]any // nil when an error is expected
		errs []string
	}{
		{"defaults", map[string][]string{"from": {"2024-01-01"}}, base, nil},
		{"empty values are not given", map[string][]string{"from": {"2024-01-01"}, "q": {""}, "min": {""}, "grades": {""}}, base, nil},
		{"required missing", map[string][]string{}, nil, []string{`parameter "from": required`}},
		{"required empty", map[string][]string{"from": {""}}, nil, []string{`parameter "from": required`}},
		{"not a date", map[string][]string{"from": {"2024/01/01"}}, nil, []string{`parameter "from": not a date (want YYYY-MM-DD)`}},
		{"impossible date", map[string][]string{"from": {"2024-02-30"}}, nil, []string{`parameter "from": not a date (want YYYY-MM-DD)`}},
		{"date below min", map[string][]string{"from": {"1999-12-31"}}, nil, []string{`parameter "from": must be at least 2000-01-01`}},
		{"list repeated keys", map[string][]string{"from": {"2024-01-01"}, "grades": {"gold", "silver"}}, with("grades", []any{"gold", "silver"}), nil},
		{"list commas", map[string][]string{"from": {"2024-01-01"}, "grades": {"gold, silver,,bronze"}}, with("grades", []any{"gold", "silver", "bronze"}), nil},
		{"list both", map[string][]string{"from": {"2024-01-01"}, "ids": {"1,2", "3"}}, with("ids", []any{int64(1), int64(2), int64(3)}), nil},
		{"list bad item", map[string][]string{"from": {"2024-01-01"}, "ids": {"1,x"}}, nil, []string{`parameter "ids": not an integer`}},
		{"list too long", map[string][]string{"from": {"2024-01-01"}, "ids": {strings.Repeat("1,", MaxListValues+1)}}, nil, []string{`parameter "ids": too many values (at most 1000)`}},
		{"enum", map[string][]string{"from": {"2024-01-01"}, "grades": {"platinum"}}, nil, []string{`parameter "grades": "platinum" is not one of gold, silver, bronze`}},
		{"int", map[string][]string{"from": {"2024-01-01"}, "min": {" 42 "}}, with("min", int64(42)), nil},
		{"int not integer", map[string][]string{"from": {"2024-01-01"}, "min": {"4.2"}}, nil, []string{`parameter "min": not an integer`}},
		{"int overflow", map[string][]string{"from": {"2024-01-01"}, "min": {"99999999999999999999"}}, nil, []string{`parameter "min": out of the 64-bit integer range`}},
		{"int above max", map[string][]string{"from": {"2024-01-01"}, "min": {"101"}}, nil, []string{`parameter "min": must be at most 100`}},
		{"int below min", map[string][]string{"from": {"2024-01-01"}, "min": {"-1"}}, nil, []string{`parameter "min": must be at least 0`}},
		{"int at bounds", map[string][]string{"from": {"2024-01-01"}, "min": {"100"}}, with("min", int64(100)), nil},
		{"float", map[string][]string{"from": {"2024-01-01"}, "ratio": {"-1.25"}}, with("ratio", -1.25), nil},
		{"float NaN", map[string][]string{"from": {"2024-01-01"}, "ratio": {"NaN"}}, nil, []string{`parameter "ratio": not a number`}},
		{"float above max", map[string][]string{"from": {"2024-01-01"}, "ratio": {"1.5000001"}}, nil, []string{`parameter "ratio": must be at most 1.5`}},
		{"datetime T minutes", map[string][]string{"from": {"2024-01-01"}, "at": {"2024-03-01T09:30"}}, with("at", time.Date(2024, 3, 1, 9, 30, 0, 0, loc)), nil},
		{"datetime space seconds", map[string][]string{"from": {"2024-01-01"}, "at": {"2024-03-01 09:30:15"}}, with("at", time.Date(2024, 3, 1, 9, 30, 15, 0, loc)), nil},
		{"datetime fraction", map[string][]string{"from": {"2024-01-01"}, "at": {"2024-03-01T09:30:15.5"}}, with("at", time.Date(2024, 3, 1, 9, 30, 15, 5e8, loc)), nil},
		{"datetime RFC 3339 in loc", map[string][]string{"from": {"2024-01-01"}, "at": {"2024-03-01T00:30:00Z"}}, with("at", time.Date(2024, 3, 1, 9, 30, 0, 0, loc)), nil},
		{"datetime bad", map[string][]string{"from": {"2024-01-01"}, "at": {"yesterday"}}, nil, []string{`parameter "at": not a date-time (want YYYY-MM-DD HH:MM[:SS] or RFC 3339)`}},
		{"datetime above max", map[string][]string{"from": {"2024-01-01"}, "at": {"2030-01-01T00:00:01"}}, nil, []string{`parameter "at": must be at most 2030-01-01 00:00`}},
		{"bool on", map[string][]string{"from": {"2024-01-01"}, "active": {"on"}}, with("active", true), nil},
		{"bool FALSE", map[string][]string{"from": {"2024-01-01"}, "active": {"FALSE"}}, with("active", false), nil},
		{"bool bad", map[string][]string{"from": {"2024-01-01"}, "active": {"maybe"}}, nil, []string{`parameter "active": not a boolean (want true or false)`}},
		{"string Korean within length", map[string][]string{"from": {"2024-01-01"}, "q": {"김민준 1"}}, with("q", "김민준 1"), nil},
		{"string too long (runes)", map[string][]string{"from": {"2024-01-01"}, "q": {"김민준김민준"}}, nil, []string{`parameter "q": longer than 5 characters`}},
		{"string pattern", map[string][]string{"from": {"2024-01-01"}, "q": {"a'b"}}, nil, []string{`parameter "q": does not match the pattern ^[\p{L}0-9 ]*$`}},
		{"string with commas stays whole", map[string][]string{"from": {"2024-01-01"}, "raw": {"a,b"}}, with("raw", "a,b"), nil},
		{"scalar twice", map[string][]string{"from": {"2024-01-01", "2024-01-02"}}, nil, []string{`parameter "from": given more than once (it takes one value)`}},
		{"unknown names", map[string][]string{"from": {"2024-01-01"}, "zz": {"1"}, "drop": {"x"}}, nil, []string{
			`parameter "drop": unknown parameter (want from, grades, q, min, ratio, at, active, ids, raw)`,
			`parameter "zz": unknown parameter (want from, grades, q, min, ratio, at, active, ids, raw)`}},
		{"every bad parameter reported", map[string][]string{"from": {"x"}, "min": {"1000"}, "grades": {"tin"}}, nil, []string{
			`parameter "from": not a date (want YYYY-MM-DD)`,
			`parameter "grades": "tin" is not one of gold, silver, bronze`,
			`parameter "min": must be at most 100`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ds.BindParams(tt.in, loc)
			if tt.errs != nil {
				if err == nil {
					t.Fatalf("no error; bound %v", got)
				}
				if msg := err.Error(); msg != strings.Join(tt.errs, "\n") {
					t.Fatalf("error\n got %s\nwant %s", msg, strings.Join(tt.errs, "\n"))
				}
				var pe *ParamError
				if !errors.As(err, &pe) || !strings.Contains(tt.errs[0], strconv.Quote(pe.Param)) {
					t.Errorf("errors.As *ParamError: %+v", pe)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("bound\n got %#v\nwant %#v", got, tt.want)
			}
			for k, v := range got {
				if tm, ok := v.(time.Time); ok && tm.Location() != loc {
					t.Errorf("%s: location %v, want %v", k, tm.Location(), loc)
				}
			}
		})
	}
}

// TestBindParamsInjection checks that SQL-looking input is bound as a plain
// value (or refused by its type), never interpreted.

func TestDatasetQuery(t *testing.T) {
	ds := &Dataset{SQL: "SELECT :a", Timeout: 3 * time.Second, Params: []Param{{Name: "a", Type: ParamInt}}}
	params := map[string]any{"a": int64(1)}
	q := ds.Query(params)
	if q.SQL != "SELECT :a" || q.Timeout != 3*time.Second || !reflect.DeepEqual(q.Params, params) {
		t.Errorf("%+v", q)
	}
}

func TestParamErrorMessage(t *testing.T) {
	e := &ParamError{Param: "from", Reason: "not a date (want YYYY-MM-DD)"}
	if e.Error() != `parameter "from": not a date (want YYYY-MM-DD)` {
		t.Error(e.Error())
	}
}

// Text a database cannot bind (PostgreSQL refuses NUL in text, and invalid
// UTF-8) is refused while binding, naming the parameter, so that a stream
// answers 400 before its first byte instead of failing after it.
func TestBindParamsUnbindableText(t *testing.T) {
	ds := &Dataset{Name: "d", Params: []Param{
		{Name: "name", Type: ParamString},
		{Name: "tags", Type: ParamString, List: true},
	}}
	for _, in := range []map[string][]string{
		{"name": {"kim\x00"}},
		{"name": {"\x00"}},
		{"name": {"k\xffim"}},
		{"tags": {"a,b\x00c"}},
	} {
		_, err := ds.BindParams(in, nil)
		var pe *ParamError
		if !errors.As(err, &pe) {
			t.Fatalf("%q: %v, want a ParamError", in, err)
		}
		if _, ok := in[pe.Param]; !ok || !(strings.Contains(pe.Reason, "NUL") || strings.Contains(pe.Reason, "UTF-8")) {
			t.Errorf("%q: %v", in, err)
		}
	}
	if _, err := ds.BindParams(map[string][]string{"name": {"김 민준 ☃"}}, nil); err != nil {
		t.Errorf("plain text refused: %v", err)
	}
}
