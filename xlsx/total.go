package xlsx

import (
	"math/big"
	"strconv"
	"strings"
)

// Total is the total of a column in the totals row at the end of its
// sheet (see [Column.Total]). It is written as a SUBTOTAL formula over
// the column's data rows, so that it follows the autofilter (hidden rows
// do not count), with its value computed as the rows were written, so
// that a reader that does not calculate shows it too.
type Total uint8

// The totals, with the SUBTOTAL function each is written with.
const (
	NoTotal Total = iota
	Sum           // SUBTOTAL(109, …)
	Average       // SUBTOTAL(101, …)
	Count         // SUBTOTAL(102, …): the numeric cells
	Min           // SUBTOTAL(105, …)
	Max           // SUBTOTAL(104, …)
)

// function returns the SUBTOTAL function number of t: the 100s, which
// leave out rows hidden by a filter or by hand.
func (t Total) function() int {
	switch t {
	case Sum:
		return 109
	case Average:
		return 101
	case Count:
		return 102
	case Min:
		return 105
	case Max:
		return 104
	}
	return 0
}

// DefaultTotalLabel is the label of a totals row when Writer.TotalLabel is
// empty.
const DefaultTotalLabel = "Total"

// accum accumulates the numeric cells of one column of a sheet's series
// (the sheet and its rollover sheets), as SUBTOTAL would count them: a
// number, not text, a boolean or an empty cell.
type accum struct {
	total    Total
	n        int64
	sum      big.Float // exact for any row count a sheet can hold
	tmp      big.Float
	min, max float64
}

func (a *accum) add(c *Cell) {
	var f float64
	switch c.Type {
	case CellInt:
		if c.I > 1<<53 || c.I < -(1<<53) {
			return // written as text
		}
		f = float64(c.I)
		a.sum.Add(&a.sum, a.tmp.SetInt64(c.I))
	case CellFloat:
		f = c.F
		if f != f || f > maxFloat || f < -maxFloat {
			return // an empty cell
		}
		a.sum.Add(&a.sum, a.tmp.SetFloat64(f))
	case CellDecimal:
		if c.S == "" {
			return
		}
		var ok bool
		if f, ok = decimalNumber(c.S); !ok {
			return // written as text
		}
		if _, ok := a.tmp.SetString(c.S); !ok {
			a.tmp.SetFloat64(f)
		}
		a.sum.Add(&a.sum, &a.tmp)
	default:
		return
	}
	if a.n == 0 || f < a.min {
		a.min = f
	}
	if a.n == 0 || f > a.max {
		a.max = f
	}
	a.n++
}

// value returns the total's value, and false when it is an error
// (#DIV/0!, the average of no number).
func (a *accum) value() (float64, bool) {
	switch a.total {
	case Sum:
		f, _ := a.sum.Float64()
		return f, true
	case Average:
		if a.n == 0 {
			return 0, false
		}
		var q big.Float
		q.SetPrec(a.sum.Prec()).Quo(&a.sum, new(big.Float).SetInt64(a.n))
		f, _ := q.Float64()
		return f, true
	case Count:
		return float64(a.n), true
	case Min:
		if a.n == 0 {
			return 0, true
		}
		return a.min, true
	case Max:
		if a.n == 0 {
			return 0, true
		}
		return a.max, true
	}
	return 0, true
}

// piece is a sheet of a series that has ended: where its data rows are.
type piece struct {
	name        string
	first, last int // data rows, 1-based; last < first when none
}

// startTotals resets the accumulators for a new series of cols.
func (w *Writer) startTotals(cols []Column) {
	w.accums = w.accums[:0]
	w.totalCols = w.totalCols[:0]
	w.pieces = w.pieces[:0]
	for i, c := range cols {
		if c.Total != NoTotal {
			w.totalCols = append(w.totalCols, i)
			w.accums = append(w.accums, accum{total: c.Total, sum: *new(big.Float).SetPrec(512), tmp: *new(big.Float).SetPrec(512)})
		}
	}
}

// addTotals adds a written row to the accumulators.
func (w *Writer) addTotals(row []Cell) {
	for k, i := range w.totalCols {
		if i < len(row) {
			w.accums[k].add(&row[i])
		}
	}
}

// firstDataRow returns the row number of the current sheet's first data row.
func (w *Writer) firstDataRow() int {
	if w.header {
		return 2
	}
	return 1
}

// writeTotals writes the totals row below the last data row of the
// current sheet: the label in the first column without a total, and in
// each column with one, SUBTOTAL over its data rows in every sheet of
// the series (the sheets it rolled over into), with the computed value.
func (w *Writer) writeTotals() {
	rows := int64(0)
	for _, p := range w.pieces {
		rows += int64(max(p.last-p.first+1, 0))
	}
	rows += int64(w.dataRows)
	first, last := w.firstDataRow(), w.sheetRow
	w.nextRow()
	b := append(w.buf, `<row r="`...)
	b = append(b, w.rowNum...)
	b = append(b, `">`...)
	label := w.TotalLabel
	if label == "" {
		label = DefaultTotalLabel
	}
	k, next := 0, 0
	for i := range w.cols {
		cs := &w.colState[i]
		if k >= len(w.totalCols) || w.totalCols[k] != i {
			if label != "" && i < w.totalCols[0] {
				b = w.cellStart(b, i, &next)
				b = append(b, ` s="1" t="inlineStr"><is>`...)
				b = w.appendText(b, label)
				b = append(b, `</is></c>`...)
				label = ""
			}
			continue
		}
		a := &w.accums[k]
		k++
		col := columnName(i)
		b = w.cellStart(b, i, &next)
		if rows == 0 {
			// No data row to refer to: a plain value (a range of no rows
			// would be the header or the totals row itself).
			if a.total == Sum || a.total == Count {
				b = append(b, cs.num...)
				b = append(b, `0</v></c>`...)
			} else {
				b = append(b, `/>`...)
			}
			continue
		}
		v, ok := a.value()
		if ok {
			b = append(b, strings.TrimSuffix(cs.num, `<v>`)...)
		} else {
			b = append(b, strings.TrimSuffix(cs.num, `><v>`)...)
			b = append(b, ` t="e">`...)
		}
		b = append(b, `<f>SUBTOTAL(`...)
		b = strconv.AppendInt(b, int64(a.total.function()), 10)
		for _, p := range w.pieces {
			if p.last < p.first {
				continue
			}
			b = append(b, ',')
			b = appendSheetRef(b, p.name)
			b = append(b, '!')
			b = appendRange(b, col, p.first, p.last)
		}
		if last >= first {
			b = append(b, ',')
			b = appendRange(b, col, first, last)
		}
		b = append(b, `)</f><v>`...)
		if ok {
			b = appendFloat(b, v)
		} else {
			b = append(b, `#DIV/0!`...)
		}
		b = append(b, `</v></c>`...)
	}
	w.buf = append(b, `</row>`...)
}

// appendSheetRef appends a sheet name as a formula refers to it: quoted,
// with its apostrophes doubled, escaped for XML.
func appendSheetRef(b []byte, name string) []byte {
	b = append(b, `'`...)
	b = appendEscaped(b, strings.ReplaceAll(name, "'", "''"))
	return append(b, `'`...)
}

func appendRange(b []byte, col string, first, last int) []byte {
	b = append(b, col...)
	b = strconv.AppendInt(b, int64(first), 10)
	b = append(b, ':')
	b = append(b, col...)
	return strconv.AppendInt(b, int64(last), 10)
}
