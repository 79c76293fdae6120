package exportd

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// As converts v to the declared column type t where the database could not
// say it (SQLite expressions such as max(taken_at) carry no type; MySQL
// has no boolean). A value that does not convert cleanly is returned as it
// is: nothing is lost, it is only written with its own type. NULL stays NULL.
func (v Value) As(t Type) Value {
	if v.Kind == KindNull || t == "" {
		return v
	}
	switch t {
	case TypeInt:
		switch v.Kind {
		case KindString, KindDecimal:
			if n, err := strconv.ParseInt(strings.TrimSpace(v.S), 10, 64); err == nil {
				return Int(n)
			}
			if v.Kind == KindString && isPlainDecimal(v.S) {
				return Decimal(v.S)
			}
		case KindBool:
			return Int(v.I)
		case KindFloat:
			if v.F == math.Trunc(v.F) && math.Abs(v.F) < 1<<53 {
				return Int(int64(v.F))
			}
		}
	case TypeFloat:
		switch v.Kind {
		case KindInt:
			if v.I > -(1<<53) && v.I < 1<<53 {
				return Float(float64(v.I))
			}
		case KindString, KindDecimal:
			if f, err := strconv.ParseFloat(strings.TrimSpace(v.S), 64); err == nil && !math.IsInf(f, 0) {
				return Float(f)
			}
		}
	case TypeDecimal:
		switch v.Kind {
		case KindString:
			if isPlainDecimal(v.S) {
				return Decimal(v.S)
			}
		}
	case TypeBool:
		switch v.Kind {
		case KindInt:
			if v.I == 0 || v.I == 1 {
				return Bool(v.I == 1)
			}
		case KindString:
			switch strings.ToLower(v.S) {
			case "true", "t", "1", "yes":
				return Bool(true)
			case "false", "f", "0", "no":
				return Bool(false)
			}
		}
	case TypeDate:
		switch v.Kind {
		case KindDateTime:
			return Date(v.T)
		case KindString:
			if tm, ok := ParseTime(v.S); ok {
				return Date(tm)
			}
		}
	case TypeDateTime:
		switch v.Kind {
		case KindDate:
			return DateTime(v.T)
		case KindString:
			if tm, ok := ParseTime(v.S); ok {
				return DateTime(tm)
			}
		}
	case TypeString:
		if v.Kind != KindString {
			return String(v.Text())
		}
	}
	return v
}

// timeLayouts are the text forms of dates and timestamps that databases
// (SQLite above all) hand back as text.
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	time.DateOnly,
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999 -0700 MST",
}

// ParseTime parses a date or timestamp written as text; a value without a
// zone is a wall clock, returned in UTC.
func ParseTime(s string) (time.Time, bool) {
	if len(s) < 10 || s[4] != '-' {
		return time.Time{}, false
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// isPlainDecimal reports whether s is an optional '-', digits, and an
// optional '.' followed by digits.
func isPlainDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}
