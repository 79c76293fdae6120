package exportd

import "fmt"

// Type is the declared type of a column or parameter in a datasets file.
type Type string

// Column and parameter types.
const (
	TypeString   Type = "string"
	TypeInt      Type = "int"
	TypeFloat    Type = "float"
	TypeDecimal  Type = "decimal"
	TypeBool     Type = "bool"
	TypeDate     Type = "date"
	TypeDateTime Type = "datetime"
)

// Column describes one output column.
type Column struct {
	Name   string  `json:"name"`             // the result column's name
	Header string  `json:"header,omitempty"` // header label; Name when empty
	Type   Type    `json:"type,omitempty"`   // declared type; empty means "as the database says"
	Format string  `json:"format,omitempty"` // spreadsheet number format, e.g. "#,##0.00"
	Width  float64 `json:"width,omitempty"`  // column width in characters; 0 = default
	// Personal marks a column of personal data: roles see it in full,
	// masked by Mask or not at all, as the dataset's access: block says.
	Personal bool      `json:"personal,omitempty"`
	Mask     *MaskSpec `json:"-"` // the masking rule; nil blanks a masked column
	// Total asks for a total of the column in a row at the end of its
	// sheet (XLSX only): a SUBTOTAL formula over the column's rows, which
	// follows the autofilter, with its value computed. "" = none.
	Total TotalFunc `json:"total,omitempty"`
}

// Label returns the header label of c.
func (c Column) Label() string {
	if c.Header != "" {
		return c.Header
	}
	return c.Name
}

// Format names an output file format.
type Format string

// The output formats.
const (
	FormatXLSX  Format = "xlsx"
	FormatCSV   Format = "csv"
	FormatTSV   Format = "tsv"
	FormatJSONL Format = "jsonl"
)

// Formats lists every output format.
var Formats = []Format{FormatXLSX, FormatCSV, FormatTSV, FormatJSONL}

// ParseFormat returns the Format named s, or an error naming s.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown format %q (want xlsx, csv, tsv or jsonl)", s)
}

// ContentType returns the MIME type of files in format f.
func (f Format) ContentType() string {
	switch f {
	case FormatXLSX:
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case FormatCSV:
		return "text/csv; charset=utf-8"
	case FormatTSV:
		return "text/tab-separated-values; charset=utf-8"
	case FormatJSONL:
		return "application/jsonl; charset=utf-8"
	}
	return "application/octet-stream"
}

// RowWriter is a format writer: it takes one row of typed values at a time.
// It is created on an io.Writer with its columns known, so that a header can
// leave before the first row; Close finishes the file but does not close the
// underlying io.Writer.
type RowWriter interface {
	// WriteRow writes one row; len(row) equals the number of columns. The
	// row and its strings belong to the caller and may change as soon as
	// WriteRow returns: a writer that needs them later must copy them.
	WriteRow(row []Value) error
	// Flush pushes every byte written so far to the underlying io.Writer
	// without changing the file's content once finished.
	Flush() error
	// Close writes the end of the file and flushes it.
	Close() error
	// Abort gives the writer up without finishing the file, when the
	// export has failed: nothing more is written to the underlying
	// io.Writer, and any goroutine of the writer has ended on return.
	Abort()
}

// KeepAliver is a RowWriter that can send bytes which change nothing the
// finished file says, when Flush alone would send none: JSON whitespace
// between two rows, for instance. While the database is silent, an
// [Export] with a KeepAlive calls KeepAlive instead of Flush, so that a
// proxy's read timeout sees bytes. A writer that wraps another finds it
// through an Unwrap() RowWriter method.
type KeepAliver interface {
	// KeepAlive flushes, as Flush does, and sends at least one byte.
	KeepAlive() error
}
