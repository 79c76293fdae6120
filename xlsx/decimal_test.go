package xlsx

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// decimalByFloat is the float path appendDecimal must match.
func decimalByFloat(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	f, ok := decimalNumber(s)
	if !ok {
		return "", false
	}
	return string(appendFloat(nil, f)), true
}

func checkDecimal(t *testing.T, s string) {
	t.Helper()
	want, wantOK := decimalByFloat(s)
	b, ok := appendDecimal([]byte("x"), s)
	if ok != wantOK || string(b[1:]) != want || b[0] != 'x' {
		t.Fatalf("appendDecimal(%q) = %q, %v; the float path gives %q, %v", s, b[1:], ok, want, wantOK)
	}
}

// TestAppendDecimal compares appendDecimal's digits with the float path
// (decimalNumber, then strconv's shortest form) on hand-picked and on
// random decimals around every boundary: signs, leading and trailing
// zeros, 15 and 16 significant digits, magnitudes from 1e-6 to 1e8.
func TestAppendDecimal(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "+0", "0.00", "-0.00", ".0", "0.", ".", "-", "+", "", "1", "-1", "+5", "12.50", "-12.50",
		"0012.500", ".5", "-.5", "5.", "1200", "1200.00", "10.05", "0.0001", "0.00012", "0.00001", "-0.00009999",
		"999999", "999999.9", "1000000", "100000.0", "123456.789012345", "123456.7890123456",
		"999999999999999", "0.123456789012345", "1234567890123456", "1e5", "12.5.1", "1,5", " 1", "1 ",
		"99999.99", "0.000100", "000000.000100000", "18446744073709551615",
	} {
		checkDecimal(t, s)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		var sb strings.Builder
		switch r.IntN(4) {
		case 0:
			sb.WriteByte('-')
		case 1:
			if r.IntN(4) == 0 {
				sb.WriteByte('+')
			}
		}
		for range r.IntN(3) {
			sb.WriteByte('0')
		}
		intDigits, fracDigits := r.IntN(10), r.IntN(10)
		for range intDigits {
			sb.WriteByte(byte('0' + r.IntN(10)))
		}
		if fracDigits > 0 || r.IntN(4) == 0 {
			sb.WriteByte('.')
			for range fracDigits {
				if r.IntN(3) == 0 {
					sb.WriteByte('0')
				} else {
					sb.WriteByte(byte('0' + r.IntN(10)))
				}
			}
		}
		checkDecimal(t, sb.String())
	}
}

func FuzzAppendDecimal(f *testing.F) {
	for _, s := range []string{"-12.50", "0.0001", "999999.5", "1e5", ".", "-0"} {
		f.Add(s)
	}
	f.Fuzz(checkDecimal)
}
