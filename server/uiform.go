package server

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/exportd/exportd"
)

// The form of a dataset's page: its fields from the parameters, the
// values given or the defaults, and the errors of a refused submission.

// formParams returns the parameter values of a submitted form: empty
// values dropped, and a bool parameter whose checkbox is not ticked false
// (a form leaves unticked boxes out). Names that are not parameters are
// kept, except the form's own, so that BindParams reports them.
func formParams(d *exportd.Dataset, in url.Values) map[string][]string {
	out := map[string][]string{}
	for k, vs := range in {
		switch k {
		case "format", keyPurpose, keyPurposeText, keyColumns, keySheet:
			continue
		}
		for _, v := range vs {
			if v != "" {
				out[k] = append(out[k], v)
			}
		}
	}
	for _, p := range d.Params {
		if p.Type == exportd.ParamBool && !p.List && len(out[p.Name]) == 0 {
			out[p.Name] = []string{"false"}
		}
	}
	return out
}

// joinParamErrors joins errors, flattening joined *ParamErrors, so that
// toError lists every field.
func joinParamErrors(errs ...error) error {
	var flat []error
	for _, err := range errs {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			flat = append(flat, j.Unwrap()...)
		} else {
			flat = append(flat, err)
		}
	}
	return errors.Join(flat...)
}

// uiForm is the data of the form page.
type uiFormData struct {
	Name, Title, Description string
	RowLimit                 int64
	Fields                   []uiField
	Formats                  []uiOption
	DownloadURL, CheckURL    string
	JobsURL                  string // POST here to start a background job; "" without jobs
	Notice                   string // a message above the form
	FormatError              string
	TooLarge                 bool // a direct download would pass the row limit
	// Personal data: the purpose's two fields (category and
	// text, rendered like parameters), the columns the principal's roles
	// may see, and the password-protected workbook on offer.
	Personal      bool
	PurposeFields []uiField
	Columns       []uiColumn
	ColumnsError  string
	Encryption    string // "", "optional" or "required"
	// Sheets are the sheets of a dataset of several, to choose from.
	Sheets      []uiOption
	SheetsError string
}

// uiColumn is one column of a personal dataset's column choice.
type uiColumn struct {
	Name, Header string
	Masked       bool // the principal's roles see it masked
	Checked      bool
}

// uiField is one parameter's input.
type uiField struct {
	Name, Label, Description string
	Input                    string // date, datetime-local, number, text, checkbox, select
	Multiple, Required       bool
	Min, Max, Step, Pattern  string
	MinLength, MaxLength     int
	Value                    string
	Checked                  bool
	Options                  []uiOption
	Hint                     string
	Error                    string
}

// uiOption is one choice of a select or radio group.
type uiOption struct {
	Value, Label string
	Selected     bool
}

// newUIForm builds the form of d, filled with the values of in (when
// submitted is true, or when in names the parameter) or else the defaults.
func newUIForm(d *exportd.Dataset, in url.Values, submitted bool, loc *time.Location) *uiFormData {
	title := d.Title
	if title == "" {
		title = d.Name
	}
	base := "/ui/datasets/" + url.PathEscape(d.Name)
	f := &uiFormData{Name: d.Name, Title: title, Description: d.Description, RowLimit: d.RowLimit,
		DownloadURL: base + "/download", CheckURL: base + "/check",
		JobsURL: "/v1/datasets/" + url.PathEscape(d.Name) + "/jobs"}
	chosen := in.Get("format")
	if _, err := exportd.ParseFormat(chosen); err != nil {
		chosen = string(exportd.FormatXLSX)
	}
	for _, ft := range exportd.Formats {
		f.Formats = append(f.Formats, uiOption{Value: string(ft), Label: formatLabels[ft], Selected: string(ft) == chosen})
	}
	sheets, sheetsGiven := in[keySheet]
	for _, name := range d.SheetNames() {
		f.Sheets = append(f.Sheets, uiOption{Value: name, Label: name,
			Selected: !sheetsGiven || slices.Contains(sheets, name)}) // none given: all

	}
	for _, p := range d.Params {
		vals, given := in[p.Name]
		if !given && !submitted {
			vals = p.Default
		}
		f.Fields = append(f.Fields, newUIField(p, vals, loc))
	}
	return f
}

func newUIField(p exportd.Param, vals []string, loc *time.Location) uiField {
	fd := uiField{Name: p.Name, Label: p.Label, Description: p.Description, Required: p.Required, Input: "text"}
	if fd.Label == "" {
		fd.Label = p.Name
	}
	first := ""
	if len(vals) > 0 {
		first = vals[0]
	}
	if p.List && p.Type != exportd.ParamEnum {
		// A list of free values: one text box, comma-separated.
		fd.Value = strings.Join(vals, ",")
		fd.Hint = "여러 값은 쉼표(,)로 구분합니다."
		return fd
	}
	switch p.Type {
	case exportd.ParamDate:
		fd.Input, fd.Value, fd.Min, fd.Max = "date", first, p.Min, p.Max
	case exportd.ParamDateTime:
		fd.Input, fd.Step = "datetime-local", "60"
		fd.Value, fd.Min, fd.Max = localInput(first, loc), localInput(p.Min, loc), localInput(p.Max, loc)
		for _, v := range []string{fd.Value, fd.Min, fd.Max} {
			if len(v) > len("2006-01-02T15:04") {
				fd.Step = "1"
			}
		}
		fd.Hint = "시간대: " + loc.String()
	case exportd.ParamInt, exportd.ParamFloat:
		fd.Input, fd.Value, fd.Min, fd.Max, fd.Step = "number", first, p.Min, p.Max, "1"
		if p.Type == exportd.ParamFloat {
			fd.Step = "any"
		}
	case exportd.ParamBool:
		fd.Input = "checkbox"
		v, _ := strconv.ParseBool(strings.ToLower(first))
		fd.Checked = v || first == "yes" || first == "on"
	case exportd.ParamEnum:
		fd.Input, fd.Multiple = "select", p.List
		for _, v := range p.Values {
			fd.Options = append(fd.Options, uiOption{Value: v, Label: v, Selected: slices.Contains(vals, v)})
		}
		if p.List {
			fd.Hint = "여러 개를 고를 수 있습니다 (Ctrl/⌘ 또는 길게 누르기)."
			if len(p.Default) > 0 && !p.Required {
				fd.Hint += " 고르지 않으면 기본값을 씁니다."
			}
		}
	default: // string
		fd.Value, fd.MaxLength = first, p.MaxLength
		if p.Pattern != "" {
			// HTML patterns match the whole value; RE2 patterns are not
			// anchored. A pattern the browser cannot compile is ignored by
			// it, and the server checks the value anyway.
			fd.Pattern = ".*(?:" + p.Pattern + ").*"
		}
	}
	return fd
}

// localInput turns a datetime as the config or a client writes it into
// the value of an <input type="datetime-local">.
func localInput(s string, loc *time.Location) string {
	if s == "" {
		return ""
	}
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", time.RFC3339Nano} {
		t, err := time.ParseInLocation(layout, s, loc)
		if err != nil {
			continue
		}
		t = t.In(loc)
		if t.Second() != 0 || t.Nanosecond() != 0 {
			return t.Format("2006-01-02T15:04:05")
		}
		return t.Format("2006-01-02T15:04")
	}
	return s
}

// noJobs takes the background job out of the form when the server runs
// no jobs.
func (f *uiFormData) noJobs(none bool) {
	if none {
		f.JobsURL = ""
	}
}

// setErrors puts the message of each *ParamError in err next to its field;
// one naming no field becomes the notice.
func (f *uiFormData) setErrors(err error) {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		var pe *exportd.ParamError
		if pu := (*exportd.PurposeError)(nil); errors.As(e, &pu) {
			pe = &exportd.ParamError{Param: pu.Field, Reason: pu.Reason}
		} else if !errors.As(e, &pe) {
			// Another error about one field (a column not known): the
			// API's answer names it.
			te := toError(e)
			if te.Field == "" || te.Status != http.StatusBadRequest {
				continue
			}
			pe = &exportd.ParamError{Param: te.Field, Reason: te.Message}
		}
		found := false
		for _, list := range [][]uiField{f.Fields, f.PurposeFields} {
			for i := range list {
				if list[i].Name == pe.Param {
					list[i].Error, found = pe.Reason, true
				}
			}
		}
		switch {
		case found:
		case pe.Param == keyColumns && len(f.Columns) > 0:
			f.ColumnsError = pe.Reason
		case pe.Param == keySheet && len(f.Sheets) > 0:
			f.SheetsError = pe.Reason
		case pe.Param == "format":
			f.FormatError = pe.Reason
		default:
			if f.Notice != "" {
				f.Notice += " "
			}
			f.Notice += pe.Error()
		}
	}
}

// groupDigits writes n with thousands separators: 100000 → 100,000.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
