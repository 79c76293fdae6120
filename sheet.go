package exportd

import "time"

// Sheet is one sheet of a dataset that declares several (its sheets:
// list): a query of its own with its own columns, sharing the dataset's
// parameters, and its connection unless it names another. The sheets are
// queried one after the other and written into one file in their order:
// the sheets of one workbook, or one file per sheet in a ZIP archive for
// CSV, TSV and JSON Lines.
type Sheet struct {
	// Name is the worksheet's name, the name of its file in a ZIP archive
	// and the value of sheet= that asks for it alone.
	Name string
	// Connection is the name of a connection of the config; "" means the
	// dataset's.
	Connection string
	// SQL is the sheet's query; it may use any of the dataset's parameters.
	SQL string
	// Columns are the sheet's declared columns, which a sheet must have:
	// each sheet's header leaves before its query runs.
	Columns []Column
}

// Query returns the sheet's query with the given bound parameters and
// the dataset's statement timeout.
func (s *Sheet) Query(params map[string]any, timeout time.Duration) Query {
	return Query{SQL: s.SQL, Params: params, Timeout: timeout}
}

// TotalFunc is the total a column asks for at the end of its sheet (the
// total: field of a column); the XLSX writer writes it as a SUBTOTAL
// formula with its value computed.
type TotalFunc string

// The totals a column may ask for.
const (
	TotalSum     TotalFunc = "sum"
	TotalAverage TotalFunc = "average"
	TotalCount   TotalFunc = "count"
	TotalMin     TotalFunc = "min"
	TotalMax     TotalFunc = "max"
)

// TotalFuncs lists every total.
var TotalFuncs = []TotalFunc{TotalSum, TotalAverage, TotalCount, TotalMin, TotalMax}

// DefaultTotalLabel is the text of a totals row's label cell when the
// dataset names none.
const DefaultTotalLabel = "Total"

// SheetNames returns the names of d's sheets, or nil for a dataset of one
// query.
func (d *Dataset) SheetNames() []string {
	if len(d.Sheets) == 0 {
		return nil
	}
	out := make([]string, len(d.Sheets))
	for i := range d.Sheets {
		out[i] = d.Sheets[i].Name
	}
	return out
}

// LookupSheet returns the sheet of d called name.
func (d *Dataset) LookupSheet(name string) (*Sheet, bool) {
	for i := range d.Sheets {
		if d.Sheets[i].Name == name {
			return &d.Sheets[i], true
		}
	}
	return nil, false
}

// SheetConnection returns the connection of sheet s of d.
func (d *Dataset) SheetConnection(s *Sheet) string {
	if s.Connection != "" {
		return s.Connection
	}
	return d.Connection
}

// Totals reports whether any of cols asks for a total.
func Totals(cols []Column) bool {
	for _, c := range cols {
		if c.Total != "" {
			return true
		}
	}
	return false
}

// SanitizeFileName makes s safe as (a part of) a file name, as
// [Dataset.FileNameFor] does with its template's result.
func SanitizeFileName(s string) string { return sanitizeFileName(s) }

// AllColumns returns the declared columns of d: its own, or those of each
// of its sheets in order.
func (d *Dataset) AllColumns() []Column {
	if len(d.Sheets) == 0 {
		return d.Columns
	}
	var out []Column
	for i := range d.Sheets {
		out = append(out, d.Sheets[i].Columns...)
	}
	return out
}
