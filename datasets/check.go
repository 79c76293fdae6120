package datasets

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/exportd/exportd"
)

// Check prepares each dataset's query on its database and compares the
// result's columns with the declared ones: a declared column missing from
// the result or out of its order, a result column not declared, a declared
// type the database's clearly contradicts, a key column not in the result.
// Each connection is opened once with open and closed before Check returns.
// Every mistake is a *ConfigError naming the file, dataset and field; none
// means the config matches its databases.
//
// Each query is prepared with every parameter at its default, or NULL (an
// empty list) when it has none.
func Check(ctx context.Context, c *exportd.Config, open func(ctx context.Context, conn exportd.Connection) (exportd.Source, error)) []error {
	var errs []error
	sources := map[string]exportd.Source{}
	failed := map[string]bool{}
	defer func() {
		for _, s := range sources {
			s.Close()
		}
	}()
	// source opens the connection name once; field is where a failure is
	// reported.
	source := func(d *exportd.Dataset, name, field string) (exportd.Source, bool) {
		if failed[name] {
			return nil, false
		}
		if src, ok := sources[name]; ok {
			return src, true
		}
		conn, known := c.Connections[name]
		if !known {
			errs = append(errs, datasetError(d, field, "unknown connection %q", name))
			return nil, false
		}
		src, err := open(ctx, conn)
		if err != nil {
			failed[name] = true
			errs = append(errs, datasetError(d, field, "open %q: %v (datasets on it not checked)", name, err))
			return nil, false
		}
		sources[name] = src
		return src, true
	}
	for _, d := range c.Datasets {
		if len(d.Sheets) > 0 {
			// Each sheet's query against its own columns.
			for i := range d.Sheets {
				sh := &d.Sheets[i]
				prefix := fmt.Sprintf("sheets[%d].", i)
				field := "connection"
				if sh.Connection != "" {
					field = prefix + "connection"
				}
				src, ok := source(d, d.SheetConnection(sh), field)
				if !ok {
					continue
				}
				cols, err := src.Describe(ctx, sh.Query(sampleParams(d, c.Location), d.Timeout))
				if err != nil {
					errs = append(errs, datasetError(d, prefix+"sql", "prepare: %v", err))
					continue
				}
				for _, e := range compareColumns(d, sh.Columns, prefix, cols) {
					errs = append(errs, e)
				}
			}
			continue
		}
		src, ok := source(d, d.Connection, "connection")
		if !ok {
			continue
		}
		cols, err := src.Describe(ctx, d.Query(sampleParams(d, c.Location)))
		if err != nil {
			errs = append(errs, datasetError(d, "sql", "prepare: %v", err))
			continue
		}
		for _, e := range compareColumns(d, d.Columns, "", cols) {
			errs = append(errs, e)
		}
	}
	return errs
}

func datasetError(d *exportd.Dataset, field, format string, args ...any) *ConfigError {
	return &ConfigError{File: d.Origin.File, Line: d.Origin.LineOf(field), Dataset: d.Name, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// sampleParams returns every parameter at its default, else nil (an empty
// list for a list parameter).
func sampleParams(d *exportd.Dataset, loc *time.Location) map[string]any {
	out := make(map[string]any, len(d.Params))
	for i := range d.Params {
		p := &d.Params[i]
		var v any
		if p.List {
			v = []any{}
		}
		if p.Default != nil {
			if b, ok := parseDefault(p, loc); ok {
				v = b
			}
		}
		out[p.Name] = v
	}
	return out
}

// compareColumns compares the result columns of a query of d with the
// declared ones: the dataset's (prefix "") or a sheet's (prefix
// "sheets[i].").
func compareColumns(d *exportd.Dataset, decl []exportd.Column, prefix string, cols []exportd.ResultColumn) []*ConfigError {
	var errs []*ConfigError
	index := map[string]int{}
	names := make([]string, len(cols))
	for i, rc := range cols {
		names[i] = rc.Name
		if _, dup := index[rc.Name]; dup {
			errs = append(errs, datasetError(d, prefix+"sql", "the result has more than one column named %q", rc.Name))
			continue
		}
		index[rc.Name] = i
	}
	if d.Key != "" && prefix == "" {
		if _, ok := index[d.Key]; !ok {
			errs = append(errs, datasetError(d, "key", "column %q is not in the query's result (%s)", d.Key, strings.Join(names, ", ")))
		}
	}
	if len(decl) == 0 {
		return errs
	}
	declared := map[string]bool{}
	for i, col := range decl {
		declared[col.Name] = true
		field := fmt.Sprintf("%scolumns[%d]", prefix, i)
		j, ok := index[col.Name]
		switch {
		case !ok:
			errs = append(errs, datasetError(d, field+".name", "column %q is not in the query's result (%s)", col.Name, strings.Join(names, ", ")))
			continue
		case j != i:
			errs = append(errs, datasetError(d, field+".name", "column %q is column %d of the query's result, declared as column %d (declare columns in the query's order)", col.Name, j+1, i+1))
		}
		if rt := cols[j].Type; !typesCompatible(col.Type, rt) {
			f := field + ".type"
			if _, ok := d.Origin.Lines[f]; !ok {
				f = field + ".name"
			}
			errs = append(errs, datasetError(d, f, "declared %s, but the database returns %s (%s)", col.Type, rt, cols[j].DatabaseType))
		}
		if rt := cols[j].Type; col.Total != "" && col.Type == "" && rt != "" && !numericType(rt) {
			errs = append(errs, datasetError(d, field+".total", "a total needs a numeric column, but the database returns %s (%s) for %q", rt, cols[j].DatabaseType, col.Name))
		}
	}
	for _, rc := range cols {
		if !declared[rc.Name] {
			errs = append(errs, datasetError(d, prefix+"columns", "the query's result has column %q, which is not declared (declare it or leave it out of the sql)", rc.Name))
		}
	}
	return errs
}

// typesCompatible reports whether values of result type got can be written
// as a column declared with type want. Only clear contradictions count: a
// text result may hold dates or numbers (SQLite), and any value can be
// written as text.
func typesCompatible(want, got exportd.Type) bool {
	if want == "" || got == "" || want == got || want == exportd.TypeString || got == exportd.TypeString {
		return true
	}
	group := func(t exportd.Type) int {
		switch t {
		case exportd.TypeInt, exportd.TypeFloat, exportd.TypeDecimal:
			return 1
		case exportd.TypeDate, exportd.TypeDateTime:
			return 2
		case exportd.TypeBool:
			return 3
		}
		return 0
	}
	gw, gg := group(want), group(got)
	if gw == gg {
		return true
	}
	// MySQL's booleans are integers.
	return (want == exportd.TypeBool && got == exportd.TypeInt) || (want == exportd.TypeInt && got == exportd.TypeBool)
}

// parseDefault parses p's default: a list of values for a list parameter,
// else its one value.
func parseDefault(p *exportd.Param, loc *time.Location) (any, bool) {
	vals := make([]any, 0, len(p.Default))
	for _, s := range p.Default {
		v, reason := p.Parse(s, loc)
		if reason != "" {
			return nil, false
		}
		vals = append(vals, v)
	}
	if p.List {
		return vals, true
	}
	if len(vals) != 1 {
		return nil, false
	}
	return vals[0], true
}
