package exportd

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
	"go.yaml.in/yaml/v3"
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
// turns it into a Rule (mask.Spec is this type).
type MaskSpec struct {
	// Rule is one of name, email, phone, national_id, pattern, keep, fixed.
	Rule string `yaml:"rule" json:"rule"`
	// Pattern is the regular expression (Go RE2 syntax) of a pattern rule:
	// every match is replaced by Replace.
	Pattern string `yaml:"pattern,omitempty" json:"pattern,omitempty"`
	// Replace is the replacement of a pattern rule ($1 or ${name} insert a
	// group) or the text of a fixed rule.
	Replace string `yaml:"replace,omitempty" json:"replace,omitempty"`
	// First and Last are the runes a keep rule leaves at the start and end.
	First int `yaml:"first,omitempty" json:"first,omitempty"`
	Last  int `yaml:"last,omitempty" json:"last,omitempty"`
	// Char is the masking character of the built-in and keep rules; "*"
	// when empty. It must be one character.
	Char string `yaml:"char,omitempty" json:"char,omitempty"`
}

// UnmarshalYAML reads a MaskSpec from a rule name or a mapping.
func (s *MaskSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = MaskSpec{Rule: n.Value}
		return nil
	}
	type plain MaskSpec
	return n.Decode((*plain)(s))
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
func (d *Dataset) PersonalColumns() []string {
	var out []string
	for _, c := range d.Columns {
		if c.Personal {
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

var privacyFields = []string{"purposes", "purpose_min_length", "audit"}
var auditFields = []string{"db", "key_file", "log", "retention"}

func (p *parser) defaultPrivacy() *PrivacyConfig {
	pc := &PrivacyConfig{PurposeMinLength: DefaultPurposeMinLength}
	if dir := p.dir(); dir != "" {
		pc.AuditDB = "sqlite:" + filepath.Join(dir, "exportd-audit.db")
	}
	return pc
}

// abs makes a path relative to the config file's directory absolute.
func (p *parser) abs(path string) string {
	if path == "" || filepath.IsAbs(path) || p.dir() == "" {
		return path
	}
	return filepath.Join(p.dir(), path)
}

func (p *parser) privacy(cfg *Config, n *yaml.Node) {
	pc := cfg.Privacy
	for _, f := range p.mapping(n, "", "privacy", privacyFields...) {
		field := "privacy." + f.key
		switch f.key {
		case "purposes":
			pairs := p.mapping(f.v, "", field)
			if len(pairs) == 0 && deref(f.v).Kind == yaml.MappingNode {
				p.errorf(f.v.Line, "", field, "empty (want category: label pairs)")
			}
			for _, kv := range pairs {
				if !datasetNameRE.MatchString(kv.key) {
					p.errorf(kv.k.Line, "", field+"."+kv.key, "invalid purpose category (want [a-z0-9_-]+)")
				}
				label, ok := p.str(kv.v, "", field+"."+kv.key)
				if ok && strings.TrimSpace(label) == "" {
					p.errorf(kv.v.Line, "", field+"."+kv.key, "empty label")
				}
				pc.Purposes = append(pc.Purposes, PurposeCategory{Name: kv.key, Label: label})
			}
		case "purpose_min_length":
			v, ok := p.integer(f.v, "", field)
			if ok && (v < 0 || v > 1000) {
				p.errorf(f.v.Line, "", field, "must be between 0 and 1000")
			}
			pc.PurposeMinLength = int(v)
		case "audit":
			for _, a := range p.mapping(f.v, "", field, auditFields...) {
				af := field + "." + a.key
				switch a.key {
				case "db":
					s, ok := p.str(a.v, "", af)
					if !ok {
						continue
					}
					u, err := p.expandEnv(s)
					if err != nil {
						p.errorf(a.v.Line, "", af, "%v", err)
						continue
					}
					switch (Connection{URL: u}).Driver() {
					case "sqlite":
						pc.AuditDB = resolveSQLite(u, p.dir())
					case "postgres":
						pc.AuditDB = u
					default:
						p.errorf(a.v.Line, "", af, "want sqlite:PATH or postgres://…")
					}
				case "key_file":
					s, ok := p.str(a.v, "", af)
					if ok && strings.TrimSpace(s) == "" {
						p.errorf(a.v.Line, "", af, "empty")
					}
					pc.AuditKeyFile = p.abs(s)
				case "log":
					s, _ := p.str(a.v, "", af)
					pc.AuditLog = p.abs(s)
				case "retention":
					pc.Retention = p.duration(a.v, "", af)
					if pc.Retention > 0 && pc.Retention < 24*time.Hour {
						p.errorf(a.v.Line, "", af, "at least 24h (the 개인정보 안전성 확보조치 기준 asks for one to two years)")
					}
				}
			}
		}
	}
}

// checkPrivacy validates what needs the whole file: a personal dataset
// needs purposes and the trail's key.
func (p *parser) checkPrivacy(cfg *Config, privacyLine int) {
	var personal []string
	for _, d := range cfg.Datasets {
		if d.Personal {
			personal = append(personal, d.Name)
		}
	}
	if len(personal) == 0 {
		return
	}
	sort.Strings(personal)
	if len(cfg.Privacy.Purposes) == 0 && !p.hasErrorFor("privacy.purposes") {
		p.errorf(privacyLine, "", "privacy.purposes", "missing: the personal dataset(s) %s need purpose categories", strings.Join(personal, ", "))
	}
	if cfg.Privacy.AuditKeyFile == "" && !p.hasErrorFor("privacy.audit.key_file") {
		p.errorf(privacyLine, "", "privacy.audit.key_file", "missing: the personal dataset(s) %s are audited, and the trail needs an HMAC key (make one with `openssl rand -hex 32 > audit.key`)", strings.Join(personal, ", "))
	}
}

// maskSpec parses a column's mask: a rule name or a mapping.
func (p *parser) maskSpec(n *yaml.Node, dataset, field string) *MaskSpec {
	n = deref(n)
	s := &MaskSpec{}
	if n.Kind == yaml.ScalarNode {
		s.Rule, _ = p.str(n, dataset, field)
	} else {
		for _, f := range p.mapping(n, dataset, field, "rule", "pattern", "replace", "first", "last", "char", "fixed", "keep") {
			ff := field + "." + f.key
			switch f.key {
			case "rule":
				s.Rule, _ = p.str(f.v, dataset, ff)
			case "pattern":
				s.Pattern, _ = p.str(f.v, dataset, ff)
			case "replace":
				s.Replace, _ = p.str(f.v, dataset, ff)
			case "first", "last":
				v, _ := p.integer(f.v, dataset, ff)
				if f.key == "first" {
					s.First = int(v)
				} else {
					s.Last = int(v)
				}
			case "char":
				s.Char, _ = p.str(f.v, dataset, ff)
			case "fixed":
				s.Rule = "fixed"
				s.Replace, _ = p.str(f.v, dataset, ff)
			case "keep":
				s.Rule = "keep"
				for _, k := range p.mapping(f.v, dataset, ff, "first", "last") {
					v, _ := p.integer(k.v, dataset, ff+"."+k.key)
					if k.key == "first" {
						s.First = int(v)
					} else {
						s.Last = int(v)
					}
				}
			}
		}
		if s.Rule == "" && s.Pattern != "" {
			s.Rule = "pattern"
		}
	}
	if err := s.Check(); err != nil {
		p.errorf(n.Line, dataset, field, "%s", strings.TrimPrefix(err.Error(), ErrMaskRule.Error()+": "))
	}
	return s
}

// access parses a dataset's access: block (role → personal column or all
// → full | masked | omitted); checkAccess validates it once the columns
// are known.
func (p *parser) access(d *Dataset, n *yaml.Node) {
	d.Access = map[string]map[string]string{}
	for _, rk := range p.mapping(n, d.Name, "access") {
		rf := "access." + rk.key
		if !roleNameRE.MatchString(rk.key) {
			p.errorf(rk.k.Line, d.Name, rf, "invalid role name (want letters, digits and _ . : -)")
		}
		m := map[string]string{}
		for _, ck := range p.mapping(rk.v, d.Name, rf) {
			cf := rf + "." + ck.key
			d.lines[cf] = ck.k.Line
			s, ok := p.str(ck.v, d.Name, cf)
			if !ok {
				continue
			}
			if s != AccessFull && s != AccessMasked && s != AccessOmitted {
				p.errorf(ck.v.Line, d.Name, cf, "unknown access %q (want full, masked or omitted)", s)
				continue
			}
			m[ck.key] = s
		}
		d.Access[rk.key] = m
	}
}

// checkPersonal validates a dataset's privacy fields once its columns are
// known.
func (p *parser) checkPersonal(d *Dataset) {
	personalCols := d.PersonalColumns()
	if len(personalCols) > 0 && !d.Personal {
		for i, c := range d.Columns {
			if c.Personal {
				f := fmt.Sprintf("columns[%d].personal", i)
				p.errorf(d.lineOf(f), d.Name, f, "column %q is personal but the dataset is not marked personal: true", c.Name)
				break
			}
		}
	}
	if d.Personal && len(d.Columns) == 0 {
		p.errorf(d.lineOf("personal"), d.Name, "columns", "a personal dataset must declare its columns (masking and the users' choice of columns apply to them)")
	}
	if d.Access != nil && !d.Personal {
		p.errorf(d.lineOf("access"), d.Name, "access", "given on a dataset that is not marked personal: true")
	}
	roles := make([]string, 0, len(d.Access))
	for r := range d.Access {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		for c := range d.Access[r] {
			f := "access." + r + "." + c
			switch {
			case c == AccessAll:
			case !slices.ContainsFunc(d.Columns, func(col Column) bool { return col.Name == c }):
				p.errorf(d.lineOf(f), d.Name, f, "%q is not a declared column (want a personal column or all)", c)
			case !slices.Contains(personalCols, c):
				p.errorf(d.lineOf(f), d.Name, f, "column %q is not personal: every role may see it in full (mark it personal: true to restrict it)", c)
			}
		}
		if len(d.Roles) > 0 && !slices.Contains(d.Roles, r) {
			p.errorf(d.lineOf("access"), d.Name, "access."+r, "role %q may not run this dataset (roles: %s)", r, strings.Join(d.Roles, ", "))
		}
	}
	if d.Encryption != "" && d.Encryption != EncryptionOptional && d.Encryption != EncryptionRequired {
		p.errorf(d.lineOf("encryption"), d.Name, "encryption", "unknown value %q (want optional or required)", d.Encryption)
	}
}
