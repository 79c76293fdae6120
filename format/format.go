package format

import (
	"errors"
	"fmt"
	"io"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/xlsx"
)

// Options configure a writer made by [New]. The zero value is a plain file
// with the formula-injection guard on.
type Options struct {
	// BOM starts a CSV/TSV file with a UTF-8 byte-order mark, so that Excel
	// reads Korean and other non-ASCII text correctly. Downloads set it.
	BOM bool
	// SepLine starts a CSV/TSV file with a "sep=," line, which makes Excel
	// split on the separator in every locale. Excel then ignores a BOM, so
	// BOM and SepLine together are an error.
	SepLine bool
	// CRLF ends CSV/TSV lines with \r\n instead of \n.
	CRLF bool
	// NoFormulaGuard turns off the formula-injection guard: by default a
	// text field that starts with =, +, -, @, tab or CR gets a leading '
	// so a spreadsheet shows it as text instead of running it. The guard
	// never touches numbers.
	NoFormulaGuard bool
	// NoHeader leaves out the header row (CSV/TSV/XLSX).
	NoHeader bool
	// KeepAlive makes a JSON Lines writer an [exportd.KeepAliver]: each
	// keep-alive sends a space, which JSON allows around a value, so the
	// finished file says the same. Each row's line feed then waits for the
	// next row or Close, so that the spaces always land inside a line that
	// holds a row (an export with no rows is spaces only). Set it for a
	// stream read as it comes and not compressed: a compressed stream
	// keeps alive with empty deflate blocks. XLSX keeps alive through
	// Flush (an empty deflate block); CSV and TSV have no byte that
	// changes nothing (a space is part of a field, an empty line is a
	// row to many readers), so they ignore it.
	KeepAlive bool

	// Sheet is the XLSX sheet name; "Sheet1" when empty.
	Sheet string
	// Properties are the XLSX document properties.
	Properties xlsx.Properties
	// HeaderFooter is the XLSX sheets' printed header and footer (see Mark).
	HeaderFooter xlsx.HeaderFooter
	// Level is the XLSX deflate level; 0 means the xlsx package's default.
	Level int
	// MaxRows is the number of data rows per XLSX sheet before it rolls
	// over to a new sheet; 0 means Excel's limit.
	MaxRows int
	// TotalLabel labels the totals row of an XLSX sheet whose columns ask
	// for totals (Column.Total); "" means exportd.DefaultTotalLabel.
	// Other formats write no totals row: a CSV, TSV or JSON Lines file
	// holds the rows only.
	TotalLabel string
}

// ErrBOMWithSepLine is returned when both Options.BOM and Options.SepLine are set.
var ErrBOMWithSepLine = errors.New("a BOM and a sep= line cannot be combined: Excel ignores the BOM after sep=")

var errAborted = errors.New("writer aborted")

// New returns a writer of format f on w for the given columns. The header
// (and for XLSX the workbook's leading parts) may be written to w at once.
func New(f exportd.Format, w io.Writer, cols []exportd.Column, opts Options) (exportd.RowWriter, error) {
	if len(cols) == 0 {
		return nil, errors.New("new writer: no columns")
	}
	switch f {
	case exportd.FormatCSV:
		return newDelimited(w, cols, ',', opts)
	case exportd.FormatTSV:
		return newDelimited(w, cols, '\t', opts)
	case exportd.FormatJSONL:
		return newJSONL(w, cols, opts.KeepAlive), nil
	case exportd.FormatXLSX:
		return newXLSX(w, cols, opts)
	}
	return nil, fmt.Errorf("new writer: unknown format %q", f)
}
