package exportd

import (
	"math"
	"strconv"
	"time"
)

// Kind says which field of a [Value] holds its content.
type Kind uint8

// The kinds of value a source yields and a writer accepts.
const (
	KindNull     Kind = iota // SQL NULL: an empty cell or field
	KindInt                  // I holds a signed 64-bit integer
	KindFloat                // F holds an IEEE-754 double
	KindString               // S holds UTF-8 text
	KindBool                 // I is 1 for true, 0 for false
	KindDate                 // T holds a calendar date (its clock is ignored)
	KindDateTime             // T holds a date and time of day
	KindDecimal              // S holds an exact decimal in plain notation, e.g. "-12.50" or "18446744073709551615"
)

var kindNames = [...]string{"null", "int", "float", "string", "bool", "date", "datetime", "decimal"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one typed cell of a row. The zero Value is NULL.
//
// Values are passed by value and reused by sources between rows: a writer
// must not keep a Value's string past the WriteRow call that received it.
type Value struct {
	Kind Kind
	I    int64
	F    float64
	S    string
	T    time.Time
}

// Null returns the NULL value.
func Null() Value { return Value{} }

// Int returns an integer value.
func Int(v int64) Value { return Value{Kind: KindInt, I: v} }

// Float returns a floating-point value.
func Float(v float64) Value { return Value{Kind: KindFloat, F: v} }

// String returns a text value.
func String(v string) Value { return Value{Kind: KindString, S: v} }

// Bool returns a boolean value.
func Bool(v bool) Value {
	if v {
		return Value{Kind: KindBool, I: 1}
	}
	return Value{Kind: KindBool}
}

// Date returns a date value; the time of day of t is ignored by writers.
func Date(t time.Time) Value { return Value{Kind: KindDate, T: t} }

// DateTime returns a date-and-time value.
func DateTime(t time.Time) Value { return Value{Kind: KindDateTime, T: t} }

// Decimal returns an exact decimal given as text in plain notation
// (digits, an optional leading '-', an optional '.'). Writers keep every digit.
func Decimal(s string) Value { return Value{Kind: KindDecimal, S: s} }

// IsNull reports whether v is NULL.
func (v Value) IsNull() bool { return v.Kind == KindNull }

// Bool reports the value of a KindBool value.
func (v Value) Bool() bool { return v.I != 0 }

// Text renders v as the text a CSV field holds: integers in decimal, floats
// in their shortest round-trip form, dates as ISO 8601, booleans as
// true/false and NULL as the empty string. NaN and ±Inf render as "NaN",
// "+Inf" and "-Inf".
func (v Value) Text() string {
	return string(v.AppendText(nil))
}

// AppendText appends the text of v (see [Value.Text]) to b.
func (v Value) AppendText(b []byte) []byte {
	switch v.Kind {
	case KindInt:
		return strconv.AppendInt(b, v.I, 10)
	case KindFloat:
		switch {
		case math.IsNaN(v.F):
			return append(b, "NaN"...)
		case math.IsInf(v.F, 1):
			return append(b, "+Inf"...)
		case math.IsInf(v.F, -1):
			return append(b, "-Inf"...)
		}
		return strconv.AppendFloat(b, v.F, 'f', -1, 64)
	case KindString, KindDecimal:
		return append(b, v.S...)
	case KindBool:
		return strconv.AppendBool(b, v.I != 0)
	case KindDate:
		return v.T.AppendFormat(b, time.DateOnly)
	case KindDateTime:
		if v.T.Nanosecond() != 0 {
			return v.T.AppendFormat(b, "2006-01-02 15:04:05.999999999")
		}
		return v.T.AppendFormat(b, time.DateTime)
	}
	return b
}
