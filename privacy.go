package exportd

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// PrivacyConfig is the privacy: block of a datasets file: the purposes a
// personal-data export may state and the audit trail that records every
// export of a personal dataset.
//
//	privacy:
//	  purposes:                     # category: label (shown in the UI), in order
//	    member_support: 회원 문의 응대
//	    audit: 내부 감사
//	    legal: 법적 요청 대응
//	  purpose_min_length: 10        # characters of the free text; default 10
//	  audit:
//	    db: sqlite:exportd-audit.db # default beside this file; or postgres://… (${VAR} expanded)
//	    key_file: audit.key         # HMAC key(s), hex or base64, one a line, newest last; required
//	    log: audit.jsonl            # JSON lines of the records; default: the server's log
//	    retention: 17520h           # default two years
//
// A dataset holds personal data when it says personal: true; its columns
// may be personal: true with a masking rule, and its access: block says,
// per role, which personal columns are shown in full, masked or left out:
//
//	datasets:
//	  member_scores:
//	    personal: true
//	    encryption: optional        # required | optional: password-protected XLSX
//	    marking: true               # downloader and time in the sheet's header/footer
//	    columns:
//	      - {name: name, personal: true, mask: name}
//	      - {name: email, personal: true, mask: email}
//	      - {name: memo, personal: true, mask: {pattern: '\d', replace: '*'}}
//	    access:                     # role → personal column (or all) → full | masked | omitted
//	      admin: {all: full}
//	      support: {name: masked, email: masked}
//
// A personal column a role does not list is omitted for it (the rules fail
// closed); mask rules are name, email, phone, national_id, {pattern: RE,
// replace: TEXT}, {fixed: TEXT}, {keep: {first: N, last: M}} or the long
// form {rule: …, …} of [MaskSpec].
type PrivacyConfig struct {
	// Purposes are the categories an export's purpose may name, in order.
	Purposes []PurposeCategory
	// PurposeMinLength is the fewest characters of the purpose's free text.
	PurposeMinLength int
	// AuditDB is the database of the audit trail: sqlite:PATH (absolute)
	// or postgres://…. Default: sqlite:exportd-audit.db beside the file.
	AuditDB string
	// AuditKeyFile holds the HMAC keys of the trail (absolute).
	AuditKeyFile string
	// AuditLog is a file the records are appended to as JSON lines
	// (absolute); empty means the server's log.
	AuditLog string
	// Retention is how long records are kept; 0 means the audit package's
	// default (two years).
	Retention time.Duration
}

// PurposeCategory is one purpose category: its name (what the API takes)
// and its label (what people read).
type PurposeCategory struct {
	Name  string `json:"name"`
	Label string `json:"label"`
}

// DefaultPurposeMinLength is the fewest characters of a purpose's text
// unless purpose_min_length says otherwise.
const DefaultPurposeMinLength = 10

// Purpose returns the category called name.
func (pc *PrivacyConfig) Purpose(name string) (PurposeCategory, bool) {
	for _, c := range pc.Purposes {
		if c.Name == name {
			return c, true
		}
	}
	return PurposeCategory{}, false
}

// PurposeError is a missing or invalid purpose; Field is "purpose" (the
// category) or "purpose_text".
type PurposeError struct {
	Field  string
	Reason string
}

func (e *PurposeError) Error() string { return e.Field + ": " + e.Reason }

// CheckPurpose validates a stated purpose: category must be configured and
// text at least PurposeMinLength characters a person can read (see
// PurposeLength).
func (pc *PrivacyConfig) CheckPurpose(category, text string) error {
	names := make([]string, len(pc.Purposes))
	for i, c := range pc.Purposes {
		names[i] = c.Name
	}
	switch _, ok := pc.Purpose(category); {
	case category == "":
		return &PurposeError{"purpose", fmt.Sprintf("this dataset holds personal data: state the purpose of the export (one of %s) and describe it in purpose_text", strings.Join(names, ", "))}
	case !ok:
		return &PurposeError{"purpose", fmt.Sprintf("unknown purpose %q (want one of %s)", category, strings.Join(names, ", "))}
	}
	if n := PurposeLength(text); n < pc.PurposeMinLength {
		return &PurposeError{"purpose_text", fmt.Sprintf("describe the purpose in at least %d characters (got %d)", pc.PurposeMinLength, n)}
	}
	return nil
}

// PurposeLength counts the characters of a purpose's text that a person
// can read: user-perceived characters (grapheme clusters, so that a letter
// with its accents is one, and so is a Hangul syllable spelt in jamo) that
// hold a letter, a digit or a symbol (Unicode L, N, S). Whitespace,
// punctuation, zero-width and other format characters (Cf, Z*) and
// combining marks on their own count for nothing: ten zero-width spaces
// are an empty purpose.
func PurposeLength(text string) int {
	n, state := 0, -1
	for len(text) > 0 {
		var cluster string
		cluster, text, _, state = uniseg.FirstGraphemeClusterInString(text, state)
		for _, r := range cluster {
			if unicode.In(r, unicode.L, unicode.N, unicode.S) {
				n++
				break
			}
		}
	}
	return n
}

// Encryption values of a dataset.
const (
	EncryptionOptional = "optional" // the user may ask for a password-protected XLSX
	EncryptionRequired = "required" // every XLSX is password-protected
)

// Access values of a role's access to a personal column (see package mask).
const (
	AccessFull    = "full"
	AccessMasked  = "masked"
	AccessOmitted = "omitted"
)

// AccessAll in a role's access: block stands for every personal column the
// role does not name.
const AccessAll = "all"

// MaskSpec is a masking rule as written in a datasets file; package mask
// turns it into a Rule. In the file it is either the name of a built-in rule
// or a mapping:
//
//	mask: name
//	mask: {rule: keep, first: 2, last: 4}
//	mask: {rule: pattern, pattern: '(\d{4})$', replace: '****'}
//	mask: {rule: fixed, replace: '(비공개)'}
type MaskSpec struct {
	// Rule is one of name, email, phone, national_id, pattern, keep, fixed.
	Rule string `json:"rule"`
	// Pattern is the regular expression (Go RE2 syntax) of a pattern rule:
	// every match is replaced by Replace.
	Pattern string `json:"pattern,omitempty"`
	// Replace is the replacement of a pattern rule ($1 or ${name} insert a
	// group) or the text of a fixed rule.
	Replace string `json:"replace,omitempty"`
	// First and Last are the runes a keep rule leaves at the start and end.
	First int `json:"first,omitempty"`
	Last  int `json:"last,omitempty"`
	// Char is the masking character of the built-in and keep rules; "*"
	// when empty. It must be one character.
	Char string `json:"char,omitempty"`
}

// ErrMaskRule is returned (wrapped) for an invalid masking rule.
var ErrMaskRule = errors.New("invalid masking rule")

// MaskRules names the masking rules.
var MaskRules = []string{"name", "email", "phone", "national_id", "pattern", "keep", "fixed"}

// Check reports whether s is a valid rule, with an error wrapping
// ErrMaskRule when it is not.
func (s MaskSpec) Check() error {
	if s.Char != "" && (utf8.RuneCountInString(s.Char) != 1 || !utf8.ValidString(s.Char)) {
		return fmt.Errorf("%w: char %q must be one character", ErrMaskRule, s.Char)
	}
	onlyFor := func(field string, set bool, rules ...string) error {
		if set && !slices.Contains(rules, s.Rule) {
			return fmt.Errorf("%w: %s is not used by rule %q", ErrMaskRule, field, s.Rule)
		}
		return nil
	}
	if err := errors.Join(
		onlyFor("pattern", s.Pattern != "", "pattern"),
		onlyFor("replace", s.Replace != "", "pattern", "fixed"),
		onlyFor("first", s.First != 0, "keep"),
		onlyFor("last", s.Last != 0, "keep"),
		onlyFor("char", s.Char != "", "name", "email", "phone", "national_id", "keep"),
	); err != nil {
		return err
	}
	switch s.Rule {
	case "name", "email", "phone", "national_id", "fixed":
	case "pattern":
		if s.Pattern == "" {
			return fmt.Errorf("%w: pattern rule needs a pattern", ErrMaskRule)
		}
		if _, err := regexp.Compile(s.Pattern); err != nil {
			return fmt.Errorf("%w: pattern: %v", ErrMaskRule, err)
		}
	case "keep":
		if s.First < 0 || s.Last < 0 {
			return fmt.Errorf("%w: keep: first and last must not be negative", ErrMaskRule)
		}
	case "":
		return fmt.Errorf("%w: no rule named", ErrMaskRule)
	default:
		return fmt.Errorf("%w: unknown rule %q (want %s)", ErrMaskRule, s.Rule, strings.Join(MaskRules, ", "))
	}
	return nil
}

// PersonalColumns returns the names of d's personal columns.
//
// Of a dataset of several sheets, they are the personal columns of every
// sheet, each name once: the access: block names columns, whatever their
// sheet.
func (d *Dataset) PersonalColumns() []string {
	var out []string
	for _, c := range d.AllColumns() {
		if c.Personal && !slices.Contains(out, c.Name) {
			out = append(out, c.Name)
		}
	}
	return out
}

// ColumnAccess returns, for a role, the access (AccessFull, AccessMasked
// or AccessOmitted) to each personal column of d, resolving "all".
func (d *Dataset) ColumnAccess(role string) map[string]string {
	acc := d.Access[role]
	out := map[string]string{}
	for _, c := range d.PersonalColumns() {
		if a, ok := acc[c]; ok {
			out[c] = a
		} else if a, ok := acc[AccessAll]; ok {
			out[c] = a
		}
	}
	return out
}
