package mask

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/exportd/exportd"
)

type kind uint8

const (
	kindNone kind = iota
	kindName
	kindEmail
	kindPhone
	kindNationalID
	kindPattern
	kindKeep
	kindFixed
)

// Rule masks the values of one column. Rules are immutable and safe for
// concurrent use. The zero Rule leaves values unchanged.
//
// Every rule:
//   - leaves NULL as NULL;
//   - masks the text of other kinds too (a phone number stored as an
//     integer, a birth date): a non-NULL value that is not a string is
//     converted to its text ([exportd.Value.Text]) first and the masked
//     result is a string value;
//   - works on runes, not bytes, so a Korean name keeps its length in
//     characters; an emoji made of several code points counts as several;
//   - replaces invalid UTF-8 with U+FFFD first, so its result is always
//     valid UTF-8;
//   - never panics.
//
// Length-preserving rules (name, email, keep) put one mask character per
// hidden rune, as 김*준 and us****@example.com show; that reveals the length,
// which the examples of the 개인정보 guidelines accept. Use fixed to hide it.
type Rule struct {
	kind        kind
	char        string
	first, last int
	re          *regexp.Regexp
	repl        string
	spec        exportd.MaskSpec
}

// Parse returns the Rule a masking rule of a datasets file describes ([exportd.MaskSpec]), or an error wrapping [exportd.ErrMaskRule].
func Parse(s exportd.MaskSpec) (Rule, error) {
	if err := s.Check(); err != nil {
		return Rule{}, err
	}
	r := Rule{char: "*", spec: s}
	if s.Char != "" {
		r.char = s.Char
	}
	switch s.Rule {
	case "name":
		r.kind = kindName
	case "email":
		r.kind = kindEmail
	case "phone":
		r.kind = kindPhone
	case "national_id":
		r.kind = kindNationalID
	case "pattern":
		r.kind, r.re, r.repl = kindPattern, regexp.MustCompile(s.Pattern), s.Replace // compiled by Check
	case "keep":
		r.kind, r.first, r.last = kindKeep, s.First, s.Last
	case "fixed":
		r.kind, r.repl = kindFixed, s.Replace
	}
	return r, nil
}

// MustParse is like Parse but panics on an invalid rule; for rules written
// in Go code.
func MustParse(s exportd.MaskSpec) Rule {
	r, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return r
}

// Spec returns the masking rule of the datasets file the rule was parsed from.
func (r Rule) Spec() exportd.MaskSpec { return r.spec }

// String returns the rule's name, e.g. "name" or "keep".
func (r Rule) String() string {
	if r.kind == kindNone {
		return "none"
	}
	return r.spec.Rule
}

// IsZero reports whether r is the zero Rule, which changes nothing.
func (r Rule) IsZero() bool { return r.kind == kindNone }

// Apply returns v masked (see [Rule]).
func (r Rule) Apply(v exportd.Value) exportd.Value {
	if r.kind == kindNone || v.IsNull() {
		return v
	}
	s := v.S
	if v.Kind != exportd.KindString {
		s = v.Text()
	}
	return exportd.String(r.ApplyString(s))
}

// ApplyString returns the text s masked.
func (r Rule) ApplyString(s string) string {
	if r.kind == kindNone {
		return s
	}
	if r.kind == kindFixed {
		return r.repl
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	switch r.kind {
	case kindName:
		return r.name(s)
	case kindEmail:
		return r.email(s)
	case kindPhone:
		return r.phone(s)
	case kindNationalID:
		return r.nationalID(s)
	case kindPattern:
		return r.re.ReplaceAllString(s, r.repl)
	case kindKeep:
		return r.keep(s, r.first, r.last)
	}
	return s
}

// keep leaves the first and last runes of s and masks the others. When s
// has no more runes than first+last, the larger of the two shrinks until at
// least one rune is masked: a rule never returns a value unmasked.
func (r Rule) keep(s string, first, last int) string {
	n := utf8.RuneCountInString(s)
	for n > 0 && first+last >= n {
		if first >= last {
			first--
		} else {
			last--
		}
	}
	var b strings.Builder
	b.Grow(len(s))
	i := 0
	for _, c := range s {
		if i < first || i >= n-last {
			b.WriteRune(c)
		} else {
			b.WriteString(r.char)
		}
		i++
	}
	return b.String()
}

// name masks a person's name.
//
// A name in Hangul, Hanja or kana (any rune of those scripts) is masked as
// one string, spaces kept: 1 character → *, 2 → first kept (김*), 3 or more
// → first and last kept (김*준, 남**수, "김 민준" → "김 *준").
//
// Any other name (Latin, Cyrillic, …) keeps the first letter of each word
// (words split on white space) and masks the rest of the word: "John Smith"
// → "J*** S****", "Mary-Jane" → "M********". A one-letter word becomes *.
func (r Rule) name(s string) string {
	cjk := false
	for _, c := range s {
		if unicode.In(c, unicode.Hangul, unicode.Han, unicode.Hiragana, unicode.Katakana) {
			cjk = true
			break
		}
	}
	var b strings.Builder
	b.Grow(len(s))
	if cjk {
		n := 0
		for _, c := range s {
			if !unicode.IsSpace(c) {
				n++
			}
		}
		first, last := 1, 1
		if n == 2 {
			last = 0
		}
		if n <= 1 {
			first, last = 0, 0
		}
		i := 0
		for _, c := range s {
			switch {
			case unicode.IsSpace(c):
				b.WriteRune(c)
				continue
			case i < first || i >= n-last:
				b.WriteRune(c)
			default:
				b.WriteString(r.char)
			}
			i++
		}
		return b.String()
	}
	wordStart := true
	oneLetter := false // the current word so far is its first letter only
	var pending rune
	for _, c := range s {
		if unicode.IsSpace(c) {
			if oneLetter {
				b.WriteString(r.char) // a one-letter word is masked whole
			}
			oneLetter = false
			b.WriteRune(c)
			wordStart = true
			continue
		}
		if wordStart {
			pending, oneLetter, wordStart = c, true, false
			continue
		}
		if oneLetter {
			b.WriteRune(pending)
			oneLetter = false
		}
		b.WriteString(r.char)
	}
	if oneLetter {
		b.WriteString(r.char)
	}
	return b.String()
}

// email keeps the first two runes of the local part and the domain:
// user12@example.com → us****@example.com. A local part of two runes keeps
// one (ab@x.kr → a*@x.kr), of one rune keeps none (a@x.kr → *@x.kr). The
// domain is the text after the last @; a value without @ is masked as if it
// were all local part.
func (r Rule) email(s string) string {
	local, domain := s, ""
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		local, domain = s[:at], s[at:]
	}
	n := utf8.RuneCountInString(local)
	keep := 2
	if n <= 2 {
		keep = n - 1
	}
	return r.keep(local, max(keep, 0), 0) + domain
}

func isDigit(c rune) bool { return c >= '0' && c <= '9' }

// phone masks the middle part of a telephone number; every character but
// the masked digits is kept.
//
// With three or more groups of digits (split by anything else: - . space
// parentheses), the group before the last is masked: 010-1234-5678 →
// 010-****-5678, 02-123-4567 → 02-***-4567, +82-10-1234-5678 →
// +82-10-****-5678, +1 415 555 0100 → +1 415 *** 0100.
//
// Otherwise the digits are split as a Korean number: after an optional +82
// (which stands for the leading 0), an area or carrier code of 2 digits for
// 02 (Seoul) or 3 otherwise, then the last 4 digits are the subscriber's;
// the digits between are masked: 01012345678 → 010****5678, 0212345678 →
// 02****5678, +821012345678 → +8210****5678. A number that does not start
// with 0 or +82 keeps its last 4 digits and masks the 4 before them. A
// value with 4 digits or fewer has every digit masked.
func (r Rule) phone(s string) string {
	runes := []rune(s)
	// digit groups
	type group struct{ start, end int } // in digit-index space
	var groups []group
	nd := 0
	in := false
	for _, c := range runes {
		if isDigit(c) {
			if !in {
				groups = append(groups, group{start: nd})
				in = true
			}
			nd++
			groups[len(groups)-1].end = nd
		} else {
			in = false
		}
	}
	var from, to int // digits [from, to) are masked
	switch {
	case nd <= 4:
		from, to = 0, nd
	case len(groups) >= 3:
		g := groups[len(groups)-2]
		from, to = g.start, g.end
	default:
		digits := make([]rune, 0, nd)
		for _, c := range runes {
			if isDigit(c) {
				digits = append(digits, c)
			}
		}
		plus := false
		for _, c := range runes {
			if !unicode.IsSpace(c) {
				plus = c == '+'
				break
			}
		}
		national, shift := string(digits), 0
		if plus && strings.HasPrefix(national, "82") {
			national, shift = "0"+national[2:], 1 // +82 10… is 010…
		}
		to = len(national) - 4
		from = to - 4
		if strings.HasPrefix(national, "0") {
			area := 3
			if strings.HasPrefix(national, "02") {
				area = 2
			}
			from = area
		}
		// national[j] is digits[j+shift] for j >= 1 (the 0 stands for 82)
		from, to = max(from, 0)+shift, max(to, 0)+shift
		if from >= to {
			from, to = 0, nd-4
		}
	}
	var b strings.Builder
	b.Grow(len(s))
	i := 0
	for _, c := range runes {
		if isDigit(c) {
			if i >= from && i < to {
				b.WriteString(r.char)
			} else {
				b.WriteRune(c)
			}
			i++
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// nationalID masks a 주민등록번호 (or 외국인등록번호): the first 7 digits (date
// of birth and the sex/century digit) are kept and the other digits masked,
// with or without the hyphen: 900101-1234567 → 900101-1******,
// 9001011234567 → 9001011******. A value with 7 digits or fewer has every
// digit masked. Characters other than digits are kept.
func (r Rule) nationalID(s string) string {
	nd := 0
	for _, c := range s {
		if isDigit(c) {
			nd++
		}
	}
	keep := 7
	if nd <= 7 {
		keep = 0
	}
	var b strings.Builder
	b.Grow(len(s))
	i := 0
	for _, c := range s {
		if isDigit(c) {
			if i < keep {
				b.WriteRune(c)
			} else {
				b.WriteString(r.char)
			}
			i++
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}
