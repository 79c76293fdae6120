package exportd

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxFileNameBytes bounds a file name's base (before the extension); most
// file systems allow 255 bytes in all.
const maxFileNameBytes = 200

// FileNameFor returns the name of the file an export of d with the bound
// params (see [Dataset.BindParams]) is saved as, ending in f's extension.
//
// The template d.FileName (the dataset's name when empty) has each {param}
// replaced by its value: a date as YYYY-MM-DD, a datetime as
// YYYY-MM-DD_HH-MM-SS, a list's values joined with '-', NULL as nothing.
// Characters that are not allowed in file names (/ \ : * ? " < > | and
// control characters) become '_'; other characters, Korean included, are
// kept. An extension already present (.xlsx, .csv, .tsv, .jsonl, .xls,
// .txt) is replaced by f's.
func (d *Dataset) FileNameFor(params map[string]any, f Format) string {
	tmpl := d.FileName
	if strings.TrimSpace(tmpl) == "" {
		tmpl = d.Name
	}
	name := templateFieldRE.ReplaceAllStringFunc(tmpl, func(m string) string {
		return fileNameValue(params[m[1:len(m)-1]])
	})
	name = sanitizeFileName(name)
	lower := strings.ToLower(name)
	for _, ext := range []string{".xlsx", ".csv", ".tsv", ".jsonl", ".xls", ".txt"} {
		if strings.HasSuffix(lower, ext) {
			name = name[:len(name)-len(ext)]
			break
		}
	}
	name = strings.Trim(name, " .")
	if len(name) > maxFileNameBytes {
		cut := maxFileNameBytes
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = strings.TrimRight(name[:cut], " .")
	}
	if name == "" {
		name = sanitizeFileName(d.Name)
		if name == "" {
			name = "export"
		}
	}
	return name + "." + string(f)
}

// fileNameValue renders one bound parameter value for a file name.
func fileNameValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case DateArg:
		return v.String()
	case time.Time:
		return v.Format("2006-01-02_15-04-05")
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = fileNameValue(e)
		}
		return strings.Join(parts, "-")
	}
	return ""
}

// sanitizeFileName replaces the characters not allowed in file names with
// '_' and drops invalid UTF-8.
func sanitizeFileName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "") {
		switch {
		case strings.ContainsRune(`/\:*?"<>|`, r), unicode.IsControl(r), r == utf8.RuneError:
			b.WriteByte('_')
		case unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp): // invisible format characters, e.g. bidi overrides
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

var templateFieldRE = regexp.MustCompile(`\{([^{}]*)\}`)

// FileNameFields returns the {field} names of a file-name template, and a
// message when a brace is unbalanced or a field is not a parameter name.
func FileNameFields(t string) ([]string, string) {
	var fields []string
	msg := ""
	for _, m := range templateFieldRE.FindAllStringSubmatch(t, -1) {
		if !paramNameRE.MatchString(m[1]) && msg == "" {
			msg = fmt.Sprintf("{%s} is not a parameter name", m[1])
		}
		fields = append(fields, m[1])
	}
	if rest := templateFieldRE.ReplaceAllString(t, ""); strings.ContainsAny(rest, "{}") && msg == "" {
		msg = "unbalanced { or } (write {param} to insert a parameter)"
	}
	return fields, msg
}
