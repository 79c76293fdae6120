package server

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/exportd/exportd"
)

// Parts: an export cut into parts of N rows on the dataset's key column.
//
// Part K of part_rows=N holds the rows whose key k satisfies
//
//	lo(K) <= k < lo(K+1)
//
// where lo(J) is the ((J-1)·N+1)-th smallest key of the dataset's result
// when the request arrives (lo(1) is no bound; the last part has no upper
// bound). The bounds are found with index-friendly queries on the
// dataset's own SQL (ORDER BY key LIMIT 1 OFFSET …), then the part runs as
//
//	SELECT * FROM (<dataset sql>) AS exportd_part
//	 WHERE key >= :lo AND key < :hi ORDER BY key
//
// so a part is a range of key values, not an OFFSET window of a stream.
//
// Stable under concurrent inserts: each part's response names the next
// part in the Exportd-Part-Next header, a link that pins where it starts
// (part_from=<this part's upper bound>). With part_from, lo(K) is that key
// and not counted again, so a client that follows the links gets every row
// once: rows inserted into parts already downloaded do not shift the later
// parts, and a row inserted into a range not yet downloaded appears in it.
// Without part_from (a client jumping straight to part K), the bounds are
// counted afresh, so rows inserted with keys below part K's range shift
// it; rows appended with keys above every existing one (a serial id, an
// insertion time) never shift earlier parts either way. Keys must be
// unique and not NULL for parts to partition the result. Each part's
// bounds are in the Exportd-Part-Key-From and Exportd-Part-Key-Before
// headers; Exportd-Part-Last says whether it is the last one. A part past
// the end answers 404 (code no_such_part).
type partSpec struct {
	k, n int64
	key  string
	from *string // part_from, when given

	lo, hi       any  // bound key values
	hasLo, hasHi bool // false: no bound on that side
}

// MaxPartRows is the largest part_rows accepted.
const MaxPartRows = 10_000_000

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parsePart reads part and part_rows from q; nil when neither is given.
func parsePart(q url.Values, d *exportd.Dataset) (*partSpec, error) {
	_, hasK := q["part"]
	_, hasN := q["part_rows"]
	_, hasFrom := q["part_from"]
	if !hasK && !hasN && !hasFrom {
		return nil, nil
	}
	bad := func(field, format string, args ...any) error {
		return badParameter(field, fmt.Sprintf(format, args...))
	}
	if d.Key == "" {
		return nil, bad("part", "dataset %s declares no key column, so it cannot be downloaded in parts", d.Name)
	}
	if !hasK || !hasN {
		missing := "part"
		if !hasN {
			missing = "part_rows"
		}
		return nil, bad(missing, "part and part_rows go together (e.g. part=1&part_rows=100000)")
	}
	if len(q["part"]) > 1 || len(q["part_rows"]) > 1 {
		return nil, bad("part", "part and part_rows take one value each")
	}
	k, err := strconv.ParseInt(q.Get("part"), 10, 64)
	if err != nil || k < 1 {
		return nil, bad("part", "not a part number (want an integer from 1)")
	}
	n, err := strconv.ParseInt(q.Get("part_rows"), 10, 64)
	if err != nil || n < 1 || n > MaxPartRows {
		return nil, bad("part_rows", "not a number of rows (want an integer from 1 to %d)", MaxPartRows)
	}
	if k > (1<<62)/n {
		return nil, bad("part", "part number too large")
	}
	p := &partSpec{k: k, n: n, key: d.Key}
	if hasFrom {
		if len(q["part_from"]) > 1 || k == 1 {
			return nil, bad("part_from", "part_from takes one value, and only with a part after the first (use the Exportd-Part-Next link)")
		}
		from := q.Get("part_from")
		p.from = &from
	}
	return p, nil
}

// baseSQL returns the dataset's SQL fit for use as a subquery.
func baseSQL(d *exportd.Dataset) string {
	return strings.TrimRight(strings.TrimSpace(d.SQL), "; \t\r\n")
}

// resolve finds the part's key bounds.
func (p *partSpec) resolve(ctx context.Context, src exportd.Source, d *exportd.Dataset, params map[string]any) error {
	var err error
	if p.from != nil {
		if p.lo, err = p.parseFrom(ctx, src, d, params); err != nil {
			return err
		}
		p.hasLo = true
		p.hi, p.hasHi, err = p.nthKey(ctx, src, d, params, p.n)
		return err
	}
	if p.k > 1 {
		p.lo, p.hasLo, err = p.nthKey(ctx, src, d, params, (p.k-1)*p.n)
		if err != nil {
			return err
		}
		if !p.hasLo {
			return &Error{Status: http.StatusNotFound, Code: "no_such_part", Field: "part",
				Message: fmt.Sprintf("part %d is past the end: the export has at most %d rows", p.k, (p.k-1)*p.n)}
		}
	}
	// Counted from lo when there is one: the same key, fewer rows to skip.
	p.hi, p.hasHi, err = p.nthKey(ctx, src, d, params, p.n)
	return err
}

// nthKey returns the key at 0-based position off in key order.
// With part_from, the position counts from the pinned lower bound.
func (p *partSpec) nthKey(ctx context.Context, src exportd.Source, d *exportd.Dataset, params map[string]any, off int64) (any, bool, error) {
	where := ""
	if p.hasLo {
		where = " WHERE exportd_part." + p.key + " >= :__part_lo"
		params = withParam(params, "__part_lo", p.lo)
	}
	sql := fmt.Sprintf("SELECT exportd_part.%[1]s FROM (\n%[2]s\n) AS exportd_part%[4]s ORDER BY exportd_part.%[1]s LIMIT 1 OFFSET %[3]d",
		p.key, baseSQL(d), off, where)
	rows, err := src.Query(ctx, exportd.Query{SQL: sql, Params: params, Timeout: d.Timeout})
	if err != nil {
		return nil, false, fmt.Errorf("find part bounds: %w", err)
	}
	defer rows.Close()
	row := make([]exportd.Value, 1)
	if !rows.Next(row) {
		if err := rows.Err(); err != nil {
			return nil, false, fmt.Errorf("find part bounds: %w", err)
		}
		return nil, false, nil
	}
	v, err := keyArg(row[0])
	if err != nil {
		return nil, false, fmt.Errorf("find part bounds: %w", err)
	}
	return v, true, rows.Close()
}

func withParam(params map[string]any, k string, v any) map[string]any {
	all := maps.Clone(params)
	if all == nil {
		all = map[string]any{}
	}
	all[k] = v
	return all
}

// parseFrom turns part_from into a value of the key column's type: the
// declared column type, else the type the database reports.
func (p *partSpec) parseFrom(ctx context.Context, src exportd.Source, d *exportd.Dataset, params map[string]any) (any, error) {
	var t exportd.Type
	for _, c := range d.Columns {
		if c.Name == p.key {
			t = c.Type
		}
	}
	if t == "" {
		cols, err := src.Describe(ctx, d.Query(params))
		if err != nil {
			return nil, fmt.Errorf("find part bounds: %w", err)
		}
		for _, c := range cols {
			if c.Name == p.key {
				t = c.Type
			}
		}
	}
	s := *p.from
	bad := badParameter("part_from", fmt.Sprintf("%q is not a value of the key column %s (%s)", s, p.key, t))
	switch t {
	case exportd.TypeInt:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, bad
		}
		return v, nil
	case exportd.TypeFloat:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, bad
		}
		return v, nil
	case exportd.TypeDate:
		v, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return nil, bad
		}
		return exportd.DateArg{Time: v}, nil
	case exportd.TypeDateTime:
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, bad
		}
		return v, nil
	case exportd.TypeBool:
		v, err := strconv.ParseBool(s)
		if err != nil {
			return nil, bad
		}
		return v, nil
	}
	return s, nil
}

// keyArg turns a key value into a bound parameter.
func keyArg(v exportd.Value) (any, error) {
	switch v.Kind {
	case exportd.KindInt:
		return v.I, nil
	case exportd.KindFloat:
		return v.F, nil
	case exportd.KindString, exportd.KindDecimal:
		return v.S, nil
	case exportd.KindBool:
		return v.Bool(), nil
	case exportd.KindDate:
		return exportd.DateArg{Time: v.T}, nil
	case exportd.KindDateTime:
		return v.T, nil
	}
	return nil, fmt.Errorf("the key column holds NULL")
}

// query returns the part's query.
func (p *partSpec) query(d *exportd.Dataset, params map[string]any) exportd.Query {
	all := withParam(params, "__part_lo", p.lo)
	var where []string
	if p.hasLo {
		where = append(where, "exportd_part."+p.key+" >= :__part_lo")
		all["__part_lo"] = p.lo
	}
	if p.hasHi {
		where = append(where, "exportd_part."+p.key+" < :__part_hi")
		all["__part_hi"] = p.hi
	}
	sql := "SELECT * FROM (\n" + baseSQL(d) + "\n) AS exportd_part"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY exportd_part." + p.key
	return exportd.Query{SQL: sql, Params: all, Timeout: d.Timeout}
}

// fileName adds "_partK" before the extension of name.
func (p *partSpec) fileName(name string) string {
	base, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		base, ext = name[:i], name[i:]
	}
	return fmt.Sprintf("%s_part%d%s", base, p.k, ext)
}

// setHeaders describes the part in the response headers; the next part's
// link is r's URL with part, part_rows and part_from set.
func (p *partSpec) setHeaders(h http.Header, r *http.Request) {
	h.Set("Exportd-Part", strconv.FormatInt(p.k, 10))
	h.Set("Exportd-Part-Rows", strconv.FormatInt(p.n, 10))
	if p.hasLo {
		h.Set("Exportd-Part-Key-From", url.QueryEscape(keyText(p.lo)))
	}
	if p.hasHi {
		h.Set("Exportd-Part-Key-Before", url.QueryEscape(keyText(p.hi)))
	}
	h.Set("Exportd-Part-Last", strconv.FormatBool(!p.hasHi))
	if p.hasHi {
		q := r.URL.Query()
		q.Set("part", strconv.FormatInt(p.k+1, 10))
		q.Set("part_rows", strconv.FormatInt(p.n, 10))
		q.Set("part_from", keyText(p.hi))
		h.Set("Exportd-Part-Next", r.URL.EscapedPath()+"?"+q.Encode())
	}
}

// keyText renders a key bound as part_from takes it.
func keyText(v any) string {
	switch v := v.(type) {
	case exportd.DateArg:
		return v.String()
	case time.Time:
		return v.Format(time.RFC3339Nano)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}
