package xlsx

import (
	"math"
	bits64 "math/bits"
	"strconv"
	"time"
	"unicode/utf8"
)

const maxFloat = math.MaxFloat64

// appendFloat appends f in shortest round-trip form; negative zero is
// written as 0 (Excel has no negative zero).
func appendFloat(b []byte, f float64) []byte {
	if f == 0 {
		return append(b, '0')
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// decimalNumber parses a plain-notation decimal ("-12.50") and reports
// whether it can be written as a number without losing a digit: at most 15
// significant digits and within the range of a double.
func decimalNumber(s string) (float64, bool) {
	i := 0
	if s[0] == '+' || s[0] == '-' {
		i++
	}
	digits, sig, point := 0, 0, false
	first, last := -1, -1 // positions (in digits) of the first and last non-zero digit
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if c != '0' {
				if first < 0 {
					first = digits
				}
				last = digits
			}
			digits++
		case c == '.' && !point:
			point = true
		default:
			return 0, false
		}
	}
	if digits == 0 {
		return 0, false
	}
	if first >= 0 {
		sig = last - first + 1
	}
	if sig > 15 {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || (f == 0 && sig > 0) || math.Abs(f) < 0x1p-1022 && f != 0 {
		return 0, false // out of range, or subnormal: not exact
	}
	return f, true
}

// appendDecimal appends the number of a plain-notation decimal cell, as
// appendFloat(decimalNumber(s)) would, and reports false (appending
// nothing) when that is not a number. A decimal of at most 15 significant
// digits whose magnitude is in [1e-4, 1e6) is written from its own digits:
// it converts to the double whose shortest round-trip form has exactly
// those significant digits (15 digits always survive a double), and
// strconv's 'g' form writes that without an exponent in this range.
// Other decimals take the float path.
func appendDecimal(b []byte, s string) ([]byte, bool) {
	i, neg := 0, false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		i++
	}
	// first and last non-zero digit (indexes in s), the point's index
	first, last, point, digits := -1, -1, -1, 0
	for j := i; j < len(s); j++ {
		c := s[j]
		switch {
		case c >= '1' && c <= '9':
			if first < 0 {
				first = j
			}
			last = j
			digits++
		case c == '0':
			digits++
		case c == '.' && point < 0:
			point = j
		default:
			return b, false
		}
	}
	if digits == 0 {
		return b, false
	}
	if first < 0 {
		return append(b, '0'), true // a zero, also "-0.00"
	}
	if point < 0 {
		point = len(s)
	}
	// significant digits, and the decimal exponent of the first one
	sig, exp := last-first+1, point-first-1
	if first > point {
		exp = point - first
	} else if last > point {
		sig-- // the point lies between them
	}
	if sig > 15 || exp < -4 || exp >= 6 {
		f, ok := decimalNumber(s)
		if !ok {
			return b, false
		}
		return appendFloat(b, f), true
	}
	if neg {
		b = append(b, '-')
	}
	if first > point {
		b = append(b, "0."...)
		for range first - point - 1 {
			b = append(b, '0')
		}
		return append(b, s[first:last+1]...), true
	}
	if last < point {
		b = append(b, s[first:last+1]...)
		for range point - last - 1 {
			b = append(b, '0')
		}
		return b, true
	}
	return append(b, s[first:last+1]...), true
}

// Excel serial numbers: day 25569 is 1970-01-01; day 61 is 1900-03-01, the
// first day after Excel's fictitious 1900-02-29; 2958466 is 10000-01-01.
const (
	unixEpochSerial = 25569
	firstSerial     = 61
	endSerial       = 2958466
)

// appendDate appends the rest of a date cell after its reference: a serial
// number with the column's date style, or, out of Excel's date range,
// ISO 8601 text.
func (w *Writer) appendDate(b []byte, t time.Time, withClock bool, cs *colState) []byte {
	_, off := t.Zone()
	wall := t.Unix() + int64(off) // seconds of the wall clock since 1970-01-01
	days := wall / 86400
	secs := wall % 86400
	if secs < 0 {
		days--
		secs += 86400
	}
	serial := days + unixEpochSerial
	if serial < firstSerial || serial >= endSerial {
		w.textDates++
		b = append(b, ` t="inlineStr"><is><t>`...)
		b = appendISO(b, t, withClock)
		return append(b, `</t></is></c>`...)
	}
	if !withClock {
		b = append(b, cs.date...)
		b = strconv.AppendInt(b, serial, 10)
		return append(b, `</v></c>`...)
	}
	b = append(b, cs.dt...)
	ns := t.Nanosecond()
	if secs == 0 && ns == 0 {
		b = strconv.AppendInt(b, serial, 10)
	} else {
		f := float64(serial) + (float64(secs)+float64(ns)/1e9)/86400
		b = appendSerial(b, f, serial, ns)
	}
	return append(b, `</v></c>`...)
}

// appendSerial appends f, a date-time serial number of day serial with a
// clock of whole seconds after midnight (ns == 0), as
// strconv.AppendFloat(b, f, 'f', -1, 64) does: the shortest decimal that
// reads back as f, the closest to f among those.
//
// For serials in [2^15, 2^16) (1989-09-17 to 2079-06-05) f's spacing is
// 2^-37 whatever the day, so its fractional part is an integer F of
// 2^-37 units, and the decimals that read back as f are those within half
// a unit of it (the bound included when f's mantissa is even). The
// shortest of them has k fraction digits for the least k at which the
// k-digit decimal closest to F·2^-37, round(F·10^k/2^37), lies in that
// interval — at most 12, since 10^-12 is under half a unit. Other serials
// and fractions of a second take strconv's path. TestAppendSerial checks
// every second of the day on days across the range against strconv.
func appendSerial(b []byte, f float64, serial int64, ns int) []byte {
	if ns != 0 || serial < 1<<15 || serial >= 1<<16 {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	bits := math.Float64bits(f)
	mant := bits&(1<<52-1) | 1<<52 // f = mant · 2^-37
	if bits>>52 != 1023+15 || mant>>37 != uint64(serial) {
		return strconv.AppendFloat(b, f, 'f', -1, 64) // not in the expected binade or day
	}
	frac := mant & (1<<37 - 1)
	if frac == 0 {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	inclusive := mant&1 == 0
	p := uint64(1)
	for k := 1; k <= 12; k++ {
		p *= 10
		// n = frac·10^k, d = round(n / 2^37); is |d·2^37 − n| ≤ 10^k/2?
		hi, lo := bits64.Mul64(frac, p)
		lo2, c := bits64.Add64(lo, 1<<36, 0)
		d := (hi+c)<<27 | lo2>>37
		dhi, dlo := d>>27, d<<37
		var ehi, elo uint64
		if dhi > hi || dhi == hi && dlo >= lo {
			var bw uint64
			elo, bw = bits64.Sub64(dlo, lo, 0)
			ehi = dhi - hi - bw
		} else {
			var bw uint64
			elo, bw = bits64.Sub64(lo, dlo, 0)
			ehi = hi - dhi - bw
		}
		half := p / 2
		if ehi != 0 || elo > half || elo == half && !inclusive {
			continue
		}
		if d >= p {
			break // rounds up to the next day: cannot be, take strconv's path
		}
		b = strconv.AppendInt(b, serial, 10)
		b = append(b, '.')
		var digits [12]byte
		for i := k - 1; i >= 0; i-- {
			digits[i] = byte('0' + d%10)
			d /= 10
		}
		n := k
		for n > 1 && digits[n-1] == '0' {
			n--
		}
		return append(b, digits[:n]...)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// appendISO appends t's wall clock as "2006-01-02" or "2006-01-02 15:04:05",
// with fractional seconds when there are any.
func appendISO(b []byte, t time.Time, withClock bool) []byte {
	if !withClock {
		return t.AppendFormat(b, "2006-01-02")
	}
	return t.AppendFormat(b, "2006-01-02 15:04:05.999999999")
}

// textClass classifies ASCII bytes for appendText.
var textClass = func() (c [utf8.RuneSelf]byte) {
	for i := range 0x20 {
		c[i] = 'x' // forbidden in XML 1.0: removed
	}
	c['\t'], c['\n'] = 0, 0
	c['\r'] = '\r'
	c['&'], c['<'], c['>'] = '&', '<', '>'
	c['_'] = '_'
	return c
}()

// appendText appends `<t>…</t>` holding s made safe for XML: characters
// XML 1.0 forbids are removed, invalid UTF-8 becomes U+FFFD, CR is kept as
// &#13;, an underscore that would start an _xHHHH_ escape is escaped as
// _x005F_, and text beyond MaxCellChars UTF-16 code units is cut (counted
// in w.truncated).
func (w *Writer) appendText(b []byte, s string) []byte {
	if c := s[0]; c == ' ' || c == '\t' || c == '\n' || c == '\r' {
		b = append(b, `<t xml:space="preserve">`...)
	} else if c := s[len(s)-1]; c == ' ' || c == '\t' || c == '\n' || c == '\r' {
		b = append(b, `<t xml:space="preserve">`...)
	} else {
		b = append(b, `<t>`...)
	}
	if len(s) > MaxCellChars {
		b = w.appendLongText(b, s)
	} else {
		b = appendEscaped(b, s)
	}
	return append(b, `</t>`...)
}

func appendEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			k := textClass[c]
			if k == 0 {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			i++
			start = i
			b = appendSpecial(b, k, s, i-1)
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == 0xFFFE || r == 0xFFFF {
			b = append(b, s[start:i]...)
			if size == 1 {
				b = append(b, "\uFFFD"...)
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

// appendSpecial appends the replacement of the special ASCII byte s[i].
func appendSpecial(b []byte, k byte, s string, i int) []byte {
	switch k {
	case '&':
		return append(b, "&amp;"...)
	case '<':
		return append(b, "&lt;"...)
	case '>':
		return append(b, "&gt;"...)
	case '\r':
		return append(b, "&#13;"...)
	case '_':
		if isEscape(s[i:]) {
			return append(b, "_x005F_"...)
		}
		return append(b, '_')
	}
	return b // forbidden control character: removed
}

// isEscape reports whether s starts with _xHHHH_, which Excel reads as the
// character U+HHHH (ECMA-376 Part 1, 22.9.2.19 ST_Xstring). LibreOffice
// also decodes shorter forms such as _x12_, so 1 to 4 hex digits count.
func isEscape(s string) bool {
	if len(s) < 4 || s[1] != 'x' {
		return false
	}
	for i := 2; i < len(s) && i <= 6; i++ {
		c := s[i]
		if c == '_' {
			return i > 2
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return false
}

// appendLongText is appendEscaped for text that may pass MaxCellChars:
// it counts UTF-16 code units of the kept characters and never splits a
// surrogate pair.
func (w *Writer) appendLongText(b []byte, s string) []byte {
	units := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			k := textClass[c]
			if k == 'x' {
				i++
				continue
			}
			if units+1 > MaxCellChars {
				w.truncated++
				return b
			}
			units++
			if k == 0 {
				b = append(b, c)
			} else {
				b = appendSpecial(b, k, s, i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == 0xFFFE || r == 0xFFFF {
			i += size
			continue
		}
		n := 1
		if r >= 0x10000 {
			n = 2
		}
		if units+n > MaxCellChars {
			w.truncated++
			return b
		}
		units += n
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}
