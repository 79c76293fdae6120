package mask

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/exportd/exportd"
)

// Access is what a role may see of one personal column. The values are
// ordered from the least to the most permissive; the zero Access is Omitted.
type Access uint8

const (
	Omitted Access = iota // the column is left out of the file
	Masked                // the column is in the file, its values masked
	Full                  // the column is in the file as stored
)

var accessNames = [...]string{"omitted", "masked", "full"}

func (a Access) String() string {
	if int(a) < len(accessNames) {
		return accessNames[a]
	}
	return fmt.Sprintf("access(%d)", uint8(a))
}

// ParseAccess returns the Access named s: full, masked or omitted.
func ParseAccess(s string) (Access, error) {
	for i, n := range accessNames {
		if n == s {
			return Access(i), nil
		}
	}
	return 0, fmt.Errorf("unknown access %q (want full, masked or omitted)", s)
}

// Policy says which personal columns of one dataset each role sees in
// full, masked or not at all. Columns that are not personal are seen in
// full by anyone allowed to export the dataset (that decision belongs to
// access control, not to the Policy).
type Policy struct {
	// Personal maps each personal column's name to its masking rule. A
	// personal column with the zero Rule is, where a role sees it masked,
	// replaced by an empty string (nothing of it is shown).
	Personal map[string]Rule
	// Roles maps a role to the access it has to each personal column. A
	// personal column a role does not list is Omitted for it, and so is
	// every personal column for a role the Policy does not know: a Policy
	// fails closed.
	Roles map[string]map[string]Access
}

// Errors of [Policy.Plan]. A server answers ErrUnknownColumn with 400 and
// ErrForbiddenColumn with 403.
var (
	ErrUnknownColumn   = errors.New("unknown column")
	ErrForbiddenColumn = errors.New("column not allowed for your roles")
)

// ColumnError is the error of [Policy.Plan] about one requested column; it
// wraps ErrUnknownColumn or ErrForbiddenColumn.
type ColumnError struct {
	Column string
	Err    error
}

func (e *ColumnError) Error() string { return fmt.Sprintf("column %q: %v", e.Column, e.Err) }
func (e *ColumnError) Unwrap() error { return e.Err }

// Access returns the access the given roles have to column: Full for a
// column that is not personal; for a personal one, the most permissive
// access any of the roles has (Full over Masked over Omitted), so that a
// principal with the roles "support" (masked) and "billing" (full) sees
// the column in full, as it would by logging in with the billing role alone.
func (p *Policy) Access(roles []string, column string) Access {
	if _, personal := p.Personal[column]; !personal {
		return Full
	}
	a := Omitted
	for _, role := range roles {
		if ra, ok := p.Roles[role][column]; ok && ra > a && ra <= Full {
			a = ra
		}
	}
	return a
}

// Plan returns the effective column plan for a principal with the given
// roles exporting a dataset whose columns are cols (in the query's order).
//
// want is the principal's choice of columns (the API's columns=, the UI's
// checkboxes); nil means every column the roles may see. A wanted column
// that the dataset lacks is an ErrUnknownColumn; one the roles may not see
// is an ErrForbiddenColumn: a choice can only take columns away, never add
// a column the roles do not grant. Columns keep the dataset's order,
// whatever the order of want. A plan in which no column is left is an
// error too (a file without columns is of no use).
func (p *Policy) Plan(roles []string, cols []exportd.Column, want []string) (Plan, error) {
	pl := Plan{cols: make([]planned, len(cols))}
	for i, c := range cols {
		a := p.Access(roles, c.Name)
		pl.cols[i] = planned{col: c, access: a}
		if a == Masked {
			pl.cols[i].rule = p.Personal[c.Name]
			if pl.cols[i].rule.IsZero() {
				// a personal column declared without a rule: hide it all
				pl.cols[i].rule = Rule{kind: kindFixed, spec: exportd.MaskSpec{Rule: "fixed"}}
			}
		}
	}
	if want != nil {
		chosen := make([]bool, len(cols))
		for _, name := range want {
			i := slices.IndexFunc(cols, func(c exportd.Column) bool { return c.Name == name })
			switch {
			case i < 0:
				return Plan{}, &ColumnError{Column: name, Err: ErrUnknownColumn}
			case pl.cols[i].access == Omitted:
				return Plan{}, &ColumnError{Column: name, Err: ErrForbiddenColumn}
			}
			chosen[i] = true
		}
		for i := range pl.cols {
			if !chosen[i] {
				pl.cols[i].access = Omitted
			}
		}
	}
	if len(pl.Columns()) == 0 {
		return Plan{}, errors.New("no column left to export")
	}
	return pl, nil
}

// FullPlan returns the plan that keeps every column unmasked, for datasets
// that hold no personal data.
func FullPlan(cols []exportd.Column) Plan {
	pl := Plan{cols: make([]planned, len(cols))}
	for i, c := range cols {
		pl.cols[i] = planned{col: c, access: Full}
	}
	return pl
}

// Plan is the effective treatment of each column of one export, made by
// [Policy.Plan]. The zero Plan has no columns.
type Plan struct {
	cols []planned
}

type planned struct {
	col    exportd.Column
	access Access
	rule   Rule
}

// Columns returns the columns of the file: those not omitted, in order.
func (p Plan) Columns() []exportd.Column {
	out := make([]exportd.Column, 0, len(p.cols))
	for _, c := range p.cols {
		if c.access != Omitted {
			out = append(out, c.col)
		}
	}
	return out
}

// Names returns the names of the columns of the file, for the audit record.
func (p Plan) Names() []string {
	var out []string
	for _, c := range p.cols {
		if c.access != Omitted {
			out = append(out, c.col.Name)
		}
	}
	return out
}

// Access returns the treatment of the named column (Omitted when the plan
// does not have it).
func (p Plan) Access(column string) Access {
	for _, c := range p.cols {
		if c.col.Name == column {
			return c.access
		}
	}
	return Omitted
}

// NewWriter wraps a format writer constructor so that the writer it makes
// receives only the plan's columns, masked by the plan: it is meant for
// [exportd.Export.NewWriter], so that masking applies to every format and
// every path (stream, job, link):
//
//	e.NewWriter = plan.NewWriter(func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
//		return format.New(f, w, cols, opts)
//	})
//
// The columns passed to the returned function must be the ones the plan
// was made for (same names, same order); anything else is an error, so a
// plan never silently applies to the wrong columns.
func (p Plan) NewWriter(inner func(io.Writer, []exportd.Column) (exportd.RowWriter, error)) func(io.Writer, []exportd.Column) (exportd.RowWriter, error) {
	return func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
		if len(cols) != len(p.cols) {
			return nil, fmt.Errorf("mask: %d columns, the plan has %d", len(cols), len(p.cols))
		}
		for i, c := range cols {
			if c.Name != p.cols[i].col.Name {
				return nil, fmt.Errorf("mask: column %d is %q, the plan has %q", i+1, c.Name, p.cols[i].col.Name)
			}
		}
		kept := p.Columns()
		iw, err := inner(w, kept)
		if err != nil {
			return nil, err
		}
		return NewWriter(iw, p), nil
	}
}

// Writer is an [exportd.RowWriter] that applies a [Plan] to each row
// before passing it to the writer it wraps: omitted columns are dropped,
// masked ones masked. Rows it receives have every column of the plan.
type Writer struct {
	w     exportd.RowWriter
	keep  []int   // the indexes of the kept columns
	rules []*Rule // per kept column; nil = full
	buf   []exportd.Value
}

var _ exportd.RowWriter = (*Writer)(nil)

// NewWriter returns a Writer applying plan to the rows before w, which
// must have been made for plan.Columns().
func NewWriter(w exportd.RowWriter, plan Plan) *Writer {
	mw := &Writer{w: w}
	for i := range plan.cols {
		c := &plan.cols[i]
		switch c.access {
		case Omitted:
			continue
		case Masked:
			mw.rules = append(mw.rules, &c.rule)
		default:
			mw.rules = append(mw.rules, nil)
		}
		mw.keep = append(mw.keep, i)
	}
	mw.buf = make([]exportd.Value, len(mw.keep))
	return mw
}

// WriteRow writes the kept columns of row, masked.
func (mw *Writer) WriteRow(row []exportd.Value) error {
	for j, i := range mw.keep {
		if i >= len(row) {
			return fmt.Errorf("mask: row has %d values, the plan needs %d", len(row), mw.keep[len(mw.keep)-1]+1)
		}
		v := row[i]
		if r := mw.rules[j]; r != nil {
			v = r.Apply(v)
		}
		mw.buf[j] = v
	}
	return mw.w.WriteRow(mw.buf)
}

// Flush flushes the wrapped writer.
func (mw *Writer) Flush() error { return mw.w.Flush() }

// Close closes the wrapped writer.
func (mw *Writer) Close() error { return mw.w.Close() }

// Abort aborts the wrapped writer.
func (mw *Writer) Abort() { mw.w.Abort() }

// Unwrap returns the wrapped writer.
func (mw *Writer) Unwrap() exportd.RowWriter { return mw.w }
