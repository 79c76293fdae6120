package exportd

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ParamType is the declared type of a dataset parameter.
type ParamType string

// The parameter types.
const (
	ParamString   ParamType = "string"
	ParamInt      ParamType = "int"
	ParamFloat    ParamType = "float"
	ParamDate     ParamType = "date"
	ParamDateTime ParamType = "datetime"
	ParamBool     ParamType = "bool"
	ParamEnum     ParamType = "enum"
)

// ParamTypes lists every parameter type.
var ParamTypes = []ParamType{ParamString, ParamInt, ParamFloat, ParamDate, ParamDateTime, ParamBool, ParamEnum}

// MaxListValues is the most values a list parameter accepts.
const MaxListValues = 1000

// Param declares one named parameter of a dataset's SQL.
//
// Default, Min and Max hold text in the form a client sends it (a date as
// YYYY-MM-DD, a datetime as YYYY-MM-DD HH:MM[:SS], a bool as true/false);
// the config loader has checked that each parses and obeys the rules.
type Param struct {
	Name        string    `json:"name"`
	Label       string    `json:"label,omitempty"`
	Description string    `json:"description,omitempty"`
	Type        ParamType `json:"type"`
	List        bool      `json:"list,omitempty"`     // several values, bound as a []any
	Required    bool      `json:"required,omitempty"` // a value must be given
	// Default is used when no value is given: nil means none (the
	// parameter is then NULL, or an empty list). A scalar parameter has at
	// most one default value.
	Default   []string `json:"default,omitempty"`
	Min       string   `json:"min,omitempty"`        // lower bound (int, float, date, datetime)
	Max       string   `json:"max,omitempty"`        // upper bound (int, float, date, datetime)
	MaxLength int      `json:"max_length,omitempty"` // most characters of a string value; 0 = no limit
	// Pattern is a Go regular expression (RE2) a string value must match.
	// It is not anchored implicitly: write ^…$ to match the whole value.
	Pattern string   `json:"pattern,omitempty"`
	Values  []string `json:"values,omitempty"` // the allowed values of an enum
}

// ParamError says why the value of one parameter was refused.
type ParamError struct {
	Param  string // the parameter's name
	Reason string // e.g. "not a date (want YYYY-MM-DD)"
}

func (e *ParamError) Error() string { return fmt.Sprintf("parameter %q: %s", e.Param, e.Reason) }

// Param returns the parameter called name.
func (d *Dataset) Param(name string) (*Param, bool) {
	for i := range d.Params {
		if d.Params[i].Name == name {
			return &d.Params[i], true
		}
	}
	return nil, false
}

// BindParams turns raw parameter values (URL query values or CLI k=v
// pairs) into the bound values of [Query.Params]: string, int64, float64,
// bool, [DateArg] for a date, time.Time in loc for a datetime, and a []any
// of these for a list parameter. Every declared parameter gets a value:
// the one given, else its default, else nil (a list: an empty []any).
//
// An empty value counts as not given, so an empty form field falls back to
// the default. A list parameter takes repeated keys, each of which may
// also hold several values separated by commas (grades=gold,silver and
// grades=gold&grades=silver are the same); empty items are dropped. A
// scalar parameter given more than once is refused.
//
// Every refused parameter is reported: the error joins one *ParamError per
// parameter (errors.Join), in declaration order, then unknown names.
func (d *Dataset) BindParams(in map[string][]string, loc *time.Location) (map[string]any, error) {
	if loc == nil {
		loc = time.UTC
	}
	out := make(map[string]any, len(d.Params))
	var errs []error
	for i := range d.Params {
		p := &d.Params[i]
		v, err := p.bind(in[p.Name], loc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[p.Name] = v
	}
	var unknown []string
	for name := range in {
		if _, ok := d.Param(name); !ok {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	for _, name := range unknown {
		errs = append(errs, &ParamError{Param: name, Reason: "unknown parameter" + d.DeclaredParams()})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// DeclaredParams names d's parameters for a message about an unknown one:
// " (want a, b)", or " (the dataset has no parameters)".
func (d *Dataset) DeclaredParams() string {
	if len(d.Params) == 0 {
		return " (the dataset has no parameters)"
	}
	names := make([]string, len(d.Params))
	for i, p := range d.Params {
		names[i] = p.Name
	}
	return " (want " + strings.Join(names, ", ") + ")"
}

// bind parses the raw values of p, falling back to its default.
func (p *Param) bind(raw []string, loc *time.Location) (any, error) {
	vals := p.split(raw)
	if len(vals) == 0 {
		if p.Required {
			return nil, &ParamError{p.Name, "required"}
		}
		vals = p.split(p.Default)
	}
	if !p.List {
		switch len(vals) {
		case 0:
			return nil, nil
		case 1:
			v, reason := p.Parse(vals[0], loc)
			if reason != "" {
				return nil, &ParamError{p.Name, reason}
			}
			return v, nil
		default:
			return nil, &ParamError{p.Name, "given more than once (it takes one value)"}
		}
	}
	if len(vals) > MaxListValues {
		return nil, &ParamError{p.Name, fmt.Sprintf("too many values (at most %d)", MaxListValues)}
	}
	list := make([]any, 0, len(vals))
	for _, s := range vals {
		v, reason := p.Parse(s, loc)
		if reason != "" {
			return nil, &ParamError{p.Name, reason}
		}
		list = append(list, v)
	}
	return list, nil
}

// split returns the non-empty values of raw; for a list parameter, each
// raw value is also split on commas.
func (p *Param) split(raw []string) []string {
	var out []string
	for _, s := range raw {
		if !p.List {
			if s != "" {
				out = append(out, s)
			}
			continue
		}
		for item := range strings.SplitSeq(s, ",") {
			if p.Type != ParamString {
				item = strings.TrimSpace(item)
			}
			if item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

// Parse parses one value of p and checks it against p's rules. It returns
// the reason for refusing it, or "".
func (p *Param) Parse(s string, loc *time.Location) (any, string) {
	v, reason := parseTyped(p.Type, s, loc, p.Values)
	if reason != "" {
		return nil, reason
	}
	switch p.Type {
	case ParamString:
		if p.MaxLength > 0 && utf8.RuneCountInString(s) > p.MaxLength {
			return nil, fmt.Sprintf("longer than %d characters", p.MaxLength)
		}
		if p.Pattern != "" {
			re, err := regexp.Compile(p.Pattern)
			if err != nil || !re.MatchString(s) {
				return nil, fmt.Sprintf("does not match the pattern %s", p.Pattern)
			}
		}
	case ParamInt, ParamFloat, ParamDate, ParamDateTime:
		if p.Min != "" {
			if m, r := parseTyped(p.Type, p.Min, loc, nil); r == "" && compare(v, m) < 0 {
				return nil, "must be at least " + p.Min
			}
		}
		if p.Max != "" {
			if m, r := parseTyped(p.Type, p.Max, loc, nil); r == "" && compare(v, m) > 0 {
				return nil, "must be at most " + p.Max
			}
		}
	}
	return v, ""
}

// The layouts a datetime value may take (besides RFC 3339); fractional
// seconds are accepted after the seconds.
var dateTimeLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"}

// parseTyped parses s as a value of type t, returning the reason it is not
// one, or "".
func parseTyped(t ParamType, s string, loc *time.Location, values []string) (any, string) {
	if t != ParamString && t != ParamEnum {
		s = strings.TrimSpace(s)
	}
	switch t {
	case ParamString:
		if !utf8.ValidString(s) {
			return nil, "not valid UTF-8 text"
		}
		if strings.IndexByte(s, 0) >= 0 {
			return nil, "contains a NUL byte (no database takes it in text)"
		}
		return s, ""
	case ParamInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return nil, "out of the 64-bit integer range"
			}
			return nil, "not an integer"
		}
		return n, ""
	case ParamFloat:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, "not a number"
		}
		return f, ""
	case ParamDate:
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return nil, "not a date (want YYYY-MM-DD)"
		}
		return DateArg{d}, ""
	case ParamDateTime:
		for _, layout := range dateTimeLayouts {
			if tm, err := time.ParseInLocation(layout, s, loc); err == nil {
				return tm, ""
			}
		}
		if tm, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return tm.In(loc), ""
		}
		return nil, "not a date-time (want YYYY-MM-DD HH:MM[:SS] or RFC 3339)"
	case ParamBool:
		switch strings.ToLower(s) {
		case "true", "1", "yes", "on":
			return true, ""
		case "false", "0", "no", "off":
			return false, ""
		}
		return nil, "not a boolean (want true or false)"
	case ParamEnum:
		if slices.Contains(values, s) {
			return s, ""
		}
		return nil, fmt.Sprintf("%s is not one of %s", quoteShort(s), strings.Join(values, ", "))
	}
	return nil, fmt.Sprintf("has unknown type %q", t)
}

// quoteShort quotes s, cut to 40 characters.
func quoteShort(s string) string {
	if utf8.RuneCountInString(s) > 40 {
		s = string([]rune(s)[:40]) + "…"
	}
	return strconv.Quote(s)
}

// compare orders two parsed values of the same type.
func compare(a, b any) int {
	switch a := a.(type) {
	case int64:
		return cmpOrdered(a, b.(int64))
	case float64:
		return cmpOrdered(a, b.(float64))
	case DateArg:
		return a.Compare(b.(DateArg).Time)
	case time.Time:
		return a.Compare(b.(time.Time))
	}
	return 0
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ParamProblem is one mistake in a parameter's declaration: the field at
// fault (relative to the parameter, e.g. "default") and why.
type ParamProblem struct{ Field, Msg string }

// Check returns the mistakes in p's declaration. Datetime bounds and
// defaults are read in loc.
func (p *Param) Check(loc *time.Location) []ParamProblem {
	var out []ParamProblem
	add := func(field, format string, args ...any) {
		out = append(out, ParamProblem{field, fmt.Sprintf(format, args...)})
	}
	if !paramNameRE.MatchString(p.Name) {
		add("name", "invalid parameter name %q (want a letter or _ then letters, digits or _)", p.Name)
	} else if slices.Contains(ReservedParamNames, p.Name) {
		add("name", "%q is reserved by the server (reserved: %s)", p.Name, strings.Join(ReservedParamNames, ", "))
	}
	if !slices.Contains(ParamTypes, p.Type) {
		names := make([]string, len(ParamTypes))
		for i, t := range ParamTypes {
			names[i] = string(t)
		}
		if p.Type == "" {
			add("type", "missing (want %s)", strings.Join(names, ", "))
		} else {
			add("type", "unknown type %q (want %s)", p.Type, strings.Join(names, ", "))
		}
		return out
	}
	ordered := p.Type == ParamInt || p.Type == ParamFloat || p.Type == ParamDate || p.Type == ParamDateTime
	var lo, hi any
	for _, b := range []struct {
		field, text string
		v           *any
	}{{"min", p.Min, &lo}, {"max", p.Max, &hi}} {
		if b.text == "" {
			continue
		}
		if !ordered {
			add(b.field, "only int, float, date and datetime parameters have bounds")
			continue
		}
		v, reason := parseTyped(p.Type, b.text, loc, nil)
		if reason != "" {
			add(b.field, "%s", reason)
			continue
		}
		*b.v = v
	}
	if lo != nil && hi != nil && compare(lo, hi) > 0 {
		add("min", "greater than max (%s > %s)", p.Min, p.Max)
	}
	if p.MaxLength < 0 {
		add("max_length", "must not be negative")
	} else if p.MaxLength > 0 && p.Type != ParamString {
		add("max_length", "only string parameters have a maximum length")
	}
	if p.Pattern != "" {
		if p.Type != ParamString {
			add("pattern", "only string parameters have a pattern")
		} else if _, err := regexp.Compile(p.Pattern); err != nil {
			add("pattern", "does not compile: %v", err)
		}
	}
	if p.Type == ParamEnum {
		if len(p.Values) == 0 {
			add("values", "an enum needs at least one value")
		}
		seen := map[string]bool{}
		for i, v := range p.Values {
			field := fmt.Sprintf("values[%d]", i)
			switch {
			case v == "":
				add(field, "empty value")
			case seen[v]:
				add(field, "repeated value %q", v)
			case p.List && strings.Contains(v, ","):
				add(field, "a list's values cannot contain a comma")
			case strings.TrimSpace(v) != v:
				add(field, "leading or trailing space in %q", v)
			}
			seen[v] = true
		}
	} else if p.Values != nil {
		add("values", "only enum parameters have values")
	}
	if p.Default != nil {
		switch {
		case p.Required:
			add("default", "a required parameter cannot have a default")
		case !p.List && len(p.Default) > 1:
			add("default", "a list, but the parameter is not a list (add list: true)")
		default:
			for i, s := range p.Default {
				field := "default"
				if p.List {
					field = fmt.Sprintf("default[%d]", i)
				}
				if s == "" || (p.List && len(p.split([]string{s})) != 1) {
					add(field, "empty or several values in one")
					continue
				}
				if _, reason := p.Parse(s, loc); reason != "" {
					add(field, "%s", reason)
				}
			}
		}
	}
	return out
}

var paramNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidParamName reports whether s may name a parameter: a letter or _,
// then letters, digits or _.
func ValidParamName(s string) bool { return paramNameRE.MatchString(s) }

// ReservedParamNames are query-string keys the HTTP server uses for itself;
// no parameter may take one of these names.
var ReservedParamNames = []string{"format", "part", "part_rows", "part_from", "columns", "sheet", "purpose", "purpose_text", "password", "queue"}
