package format

import (
	"fmt"
	"io"
	"reflect"
	"time"
	"unsafe"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/xlsx"
)

// xlsxWriter adapts the xlsx package to exportd.RowWriter.
type xlsxWriter struct {
	w     *xlsx.Writer
	cells []xlsx.Cell
}

// newXLSXWriter returns a workbook writer with opts.
func newXLSXWriter(w io.Writer, opts Options) *xlsx.Writer {
	xw := xlsx.NewWriter(w)
	xw.Level = opts.Level
	xw.MaxRows = opts.MaxRows
	xw.Properties = opts.Properties
	xw.HeaderFooter = opts.HeaderFooter
	xw.TotalLabel = opts.TotalLabel
	return xw
}

// newSheet starts a sheet of cols on xw.
func newSheet(xw *xlsx.Writer, name string, cols []exportd.Column, opts Options) error {
	xcols := make([]xlsx.Column, len(cols))
	for i, c := range cols {
		xcols[i] = xlsx.Column{Width: c.Width, NumFmt: c.Format, Total: xlsxTotal(c.Total)}
		if !opts.NoHeader {
			xcols[i].Header = c.Label()
		}
	}
	if name == "" {
		name = "Sheet1"
	}
	if err := xw.NewSheet(name, xcols); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	return nil
}

func xlsxTotal(t exportd.TotalFunc) xlsx.Total {
	switch t {
	case exportd.TotalSum:
		return xlsx.Sum
	case exportd.TotalAverage:
		return xlsx.Average
	case exportd.TotalCount:
		return xlsx.Count
	case exportd.TotalMin:
		return xlsx.Min
	case exportd.TotalMax:
		return xlsx.Max
	}
	return xlsx.NoTotal
}

func newXLSX(w io.Writer, cols []exportd.Column, opts Options) (*xlsxWriter, error) {
	xw := newXLSXWriter(w, opts)
	if err := newSheet(xw, opts.Sheet, cols, opts); err != nil {
		return nil, err
	}
	return &xlsxWriter{w: xw, cells: make([]xlsx.Cell, len(cols))}, nil
}

func (x *xlsxWriter) WriteRow(row []exportd.Value) error {
	if sameLayout && len(row) > 0 {
		// The row itself, seen as cells: xlsx.Writer.Write only reads it.
		return x.w.Write(unsafe.Slice((*xlsx.Cell)(unsafe.Pointer(&row[0])), len(row)))
	}
	cells := x.cells[:len(row)]
	for i, v := range row {
		cells[i] = xlsx.Cell{Type: xlsx.CellType(v.Kind), I: v.I, F: v.F, S: v.S, T: v.T}
	}
	return x.w.Write(cells)
}

// sameLayout says that an exportd.Value and an xlsx.Cell are laid out
// alike in memory — the same fields of the same types at the same
// offsets, Kind and CellType numbering the kinds alike
// (TestKindsMatchCellTypes) — so that WriteRow hands the row over as it
// is instead of copying every value (7% of the CPU of a MariaDB → XLSX
// export). Were the two structs ever to differ, WriteRow copies.
var sameLayout = unsafe.Sizeof(exportd.Value{}) == unsafe.Sizeof(xlsx.Cell{}) &&
	unsafe.Sizeof(exportd.Kind(0)) == unsafe.Sizeof(xlsx.CellType(0)) &&
	unsafe.Offsetof(exportd.Value{}.I) == unsafe.Offsetof(xlsx.Cell{}.I) &&
	unsafe.Offsetof(exportd.Value{}.F) == unsafe.Offsetof(xlsx.Cell{}.F) &&
	unsafe.Offsetof(exportd.Value{}.S) == unsafe.Offsetof(xlsx.Cell{}.S) &&
	unsafe.Offsetof(exportd.Value{}.T) == unsafe.Offsetof(xlsx.Cell{}.T) &&
	reflect.TypeFor[exportd.Value]().NumField() == 5 && reflect.TypeFor[xlsx.Cell]().NumField() == 5 &&
	reflect.TypeFor[exportd.Value]().Field(3).Type == reflect.TypeFor[string]() &&
	reflect.TypeFor[xlsx.Cell]().Field(4).Type == reflect.TypeFor[time.Time]() &&
	reflect.TypeFor[exportd.Value]().Field(4).Type == reflect.TypeFor[time.Time]()

// Truncated returns how many cells were cut to Excel's 32,767 characters.
func (x *xlsxWriter) Truncated() int { return x.w.Truncated() }

func (x *xlsxWriter) Flush() error { return x.w.Flush() }
func (x *xlsxWriter) Close() error { return x.w.Close() }
func (x *xlsxWriter) Abort()       { x.w.Abort() }
