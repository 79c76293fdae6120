package xlsx

import "time"

// CellType says which field of a [Cell] holds its content. The order matches
// exportd.Kind, so a conversion is a plain type cast.
type CellType uint8

// The cell types.
const (
	CellEmpty    CellType = iota // no cell is written
	CellInt                      // I: a number; beyond ±2^53 written as text so no digit is lost
	CellFloat                    // F: a number in shortest round-trip form; NaN and ±Inf give an empty cell
	CellString                   // S: an inline string
	CellBool                     // I != 0 is true
	CellDate                     // T: a calendar date (its clock is ignored)
	CellDateTime                 // T: a date and a time of day (its wall clock, in T's location)
	CellDecimal                  // S: an exact decimal in plain notation, e.g. "-12.50"
)

// Cell is one typed value of a row. The zero Cell is empty.
type Cell struct {
	Type CellType
	I    int64
	F    float64
	S    string
	T    time.Time
}

// Int returns an integer cell.
func Int(v int64) Cell { return Cell{Type: CellInt, I: v} }

// Float returns a floating-point cell.
func Float(v float64) Cell { return Cell{Type: CellFloat, F: v} }

// String returns a text cell.
func String(v string) Cell { return Cell{Type: CellString, S: v} }

// Bool returns a boolean cell.
func Bool(v bool) Cell {
	if v {
		return Cell{Type: CellBool, I: 1}
	}
	return Cell{Type: CellBool}
}

// Date returns a date cell; the clock of v is ignored.
func Date(v time.Time) Cell { return Cell{Type: CellDate, T: v} }

// DateTime returns a date-and-time cell holding v's wall clock.
func DateTime(v time.Time) Cell { return Cell{Type: CellDateTime, T: v} }

// Decimal returns a cell for an exact decimal in plain notation ("-12.50").
func Decimal(v string) Cell { return Cell{Type: CellDecimal, S: v} }

// Empty returns the empty cell.
func Empty() Cell { return Cell{} }
