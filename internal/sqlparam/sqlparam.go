// Package sqlparam binds the named parameters (:name) of a dataset's SQL
// to the positional placeholders of each database.
package sqlparam

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/exportd/exportd"
)

// Dialect says how a database writes positional placeholders and quotes.
type Dialect struct {
	// Placeholder returns the n-th (1-based) positional placeholder.
	Placeholder func(n int) string
	// BackslashEscapes is true where a backslash escapes a quote inside a
	// string literal (MySQL).
	BackslashEscapes bool
	// DollarQuotes is true where $tag$…$tag$ quotes a string (PostgreSQL).
	DollarQuotes bool
}

// The dialects of the supported databases.
var (
	Postgres = Dialect{Placeholder: func(n int) string { return "$" + strconv.Itoa(n) }, DollarQuotes: true}
	MySQL    = Dialect{Placeholder: func(int) string { return "?" }, BackslashEscapes: true}
	SQLite   = Dialect{Placeholder: func(int) string { return "?" }}
)

// Of returns the dialect of a driver as [exportd.Connection.Driver] names
// it ("postgres", "mysql", "sqlite"); SQLite's for any other.
func Of(driver string) Dialect {
	switch driver {
	case "postgres":
		return Postgres
	case "mysql":
		return MySQL
	}
	return SQLite
}

// Names returns the distinct named parameters (:name) used in sql, in
// order of first use. Text inside string literals, quoted identifiers,
// comments and PostgreSQL casts (::type) is not a parameter.
func Names(sql string, d Dialect) []string {
	var names []string
	seen := map[string]bool{}
	Scan(sql, d, func(name string) string {
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
		return ""
	}, nil)
	return names
}

// Bind rewrites the named parameters of sql into d's positional
// placeholders and returns the arguments in order. A []any value expands to
// one placeholder per element (an empty list becomes NULL, which matches
// nothing in an IN list). Every name used must be present in params.
func Bind(sql string, params map[string]any, d Dialect) (string, []any, error) {
	var (
		b    strings.Builder
		args []any
		err  error
	)
	b.Grow(len(sql) + 16)
	Scan(sql, d, func(name string) string {
		v, ok := params[name]
		if !ok {
			if err == nil {
				err = fmt.Errorf("parameter %q is used in the query but has no value", name)
			}
			return ""
		}
		if list, isList := v.([]any); isList {
			if len(list) == 0 {
				return "NULL"
			}
			parts := make([]string, len(list))
			for i, e := range list {
				args = append(args, e)
				parts[i] = d.Placeholder(len(args))
			}
			return strings.Join(parts, ", ")
		}
		args = append(args, v)
		return d.Placeholder(len(args))
	}, &b)
	if err != nil {
		return "", nil, err
	}
	return b.String(), args, nil
}

// Scan walks sql, calling repl for each named parameter and writing
// the text with each parameter replaced by repl's result to out (if non-nil).
func Scan(sql string, d Dialect, repl func(name string) string, out *strings.Builder) {
	emit := func(s string) {
		if out != nil {
			out.WriteString(s)
		}
	}
	i, start := 0, 0
	n := len(sql)
	for i < n {
		c := sql[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(sql, i, c, d.BackslashEscapes && c != '`')
		case c == '-' && i+1 < n && sql[i+1] == '-':
			for i < n && sql[i] != '\n' {
				i++
			}
		case c == '#' && d.BackslashEscapes: // MySQL line comment
			for i < n && sql[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < n && sql[i+1] == '*':
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				i = n
			} else {
				i += 2 + end + 2
			}
		case c == '$' && d.DollarQuotes:
			i = skipDollarQuoted(sql, i)
		case c == ':' && i+1 < n && sql[i+1] == ':':
			i += 2
			for i < n && sql[i] == ':' {
				i++
			}
		case c == ':' && i+1 < n && isNameStart(sql[i+1]) && (i == 0 || !isNameChar(sql[i-1])):
			j := i + 1
			for j < n && isNameChar(sql[j]) {
				j++
			}
			emit(sql[start:i])
			emit(repl(sql[i+1 : j]))
			i, start = j, j
		default:
			i++
		}
	}
	emit(sql[start:])
}

func skipQuoted(s string, i int, q byte, backslash bool) int {
	i++
	for i < len(s) {
		switch s[i] {
		case '\\':
			if backslash {
				i += 2
				continue
			}
		case q:
			if i+1 < len(s) && s[i+1] == q { // doubled quote
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return i
}

func skipDollarQuoted(s string, i int) int {
	j := i + 1
	for j < len(s) && isNameChar(s[j]) && !(s[j] >= '0' && s[j] <= '9' && j == i+1) {
		j++
	}
	if j >= len(s) || s[j] != '$' {
		return i + 1 // $1 or a lone $: not a quote
	}
	tag := s[i : j+1]
	end := strings.Index(s[j+1:], tag)
	if end < 0 {
		return len(s)
	}
	return j + 1 + end + len(tag)
}

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isNameChar(c byte) bool { return isNameStart(c) || (c >= '0' && c <= '9') }

// BindText is [Bind] for databases that compare dates and times as
// text (SQLite, MySQL): an [exportd.DateArg] binds as 'YYYY-MM-DD' and a time.Time as
// its wall clock in loc, formatted with layout. With nulls set, a
// parameter that has no value binds NULL, so a query can be described
// without its parameters.
func BindText(q exportd.Query, d Dialect, loc *time.Location, layout string, nulls bool) (string, []any, error) {
	params := q.Params
	if nulls {
		params = map[string]any{}
		for _, n := range Names(q.SQL, d) {
			params[n] = q.Params[n]
		}
	}
	text, args, err := Bind(q.SQL, params, d)
	if err != nil {
		return "", nil, err
	}
	for i, a := range args {
		switch v := a.(type) {
		case exportd.DateArg:
			args[i] = v.Format(time.DateOnly)
		case time.Time:
			args[i] = v.In(loc).Format(layout)
		}
	}
	return text, args, nil
}
