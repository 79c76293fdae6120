package server

// The web UI: server-rendered pages (html/template) with one small CSS file
// and one small script, all embedded. Every page works without JavaScript
// for the direct download; the script adds validation before submitting,
// the background job with its progress bar, and the "My exports" list.
// Pages carry no inline script, style or event handler, so they run under
// a Content-Security-Policy of script-src 'self'.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/plan"
)

//go:embed ui
var uiFiles embed.FS

// uiAssetVersion is a digest of the static files: asset URLs carry it, so
// they can be cached for long and still change with each release.
var uiAssetVersion = func() string {
	h := sha256.New()
	fs.WalkDir(uiFiles, "ui/static", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := uiFiles.ReadFile(path)
			h.Write([]byte(path))
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

// uiPages holds each page's template: the layout plus the page.
var uiPages = func() map[string]*template.Template {
	funcs := template.FuncMap{
		"asset": func(name string) string { return "/ui/static/" + name + "?v=" + uiAssetVersion },
		"num":   groupDigits,
	}
	pages := map[string]*template.Template{}
	for _, p := range []string{"index", "form", "jobs", "schedules"} {
		pages[p] = template.Must(template.New(p).Funcs(funcs).ParseFS(uiFiles, "ui/layout.html", "ui/"+p+".html"))
	}
	return pages
}()

// uiRoutes lists the UI's routes. They are not part of the JSON API (nor
// of openapi.json).
func (s *Server) uiRoutes() []route {
	static, _ := fs.Sub(uiFiles, "ui/static")
	files := http.StripPrefix("/ui/static/", http.FileServerFS(static))
	return []route{
		{"GET", "/{$}", "", http.HandlerFunc(s.uiIndex)},
		{"GET", "/ui/datasets/{name}", "", http.HandlerFunc(s.uiForm)},
		{"GET", "/ui/datasets/{name}/download", "", http.HandlerFunc(s.uiDownload)},
		{"GET", "/ui/datasets/{name}/check", "", http.HandlerFunc(s.uiCheck)},
		{"GET", "/ui/jobs", "", http.HandlerFunc(s.uiJobs)},
		{"GET", "/ui/schedules", "", http.HandlerFunc(s.uiSchedules)},
		{"POST", "/ui/schedules/{dataset}/{name}/run", "", http.HandlerFunc(s.uiRunSchedule)},
		{"GET", "/ui/static/", "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("v") == uiAssetVersion {
				w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
			} else {
				w.Header().Set("Cache-Control", "no-cache")
			}
			w.Header().Set("X-Content-Type-Options", "nosniff")
			files.ServeHTTP(w, r)
		})},
	}
}

// mayExport reports whether the request's principal may see and export d:
// the UI calls it for every dataset it lists, shows or validates.
func (s *Server) mayExport(r *http.Request, d *exportd.Dataset) bool { return mayRun(r, d) }

// --- pages ------------------------------------------------------------------

// uiPage is what the layout renders.
type uiPage struct {
	Title string
	Nav   string // "datasets" or "jobs": the current menu entry
	Jobs  bool   // the server runs background jobs
	Data  any
}

// render writes page with status.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p uiPage) {
	p.Jobs = s.cfg.Jobs != nil
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if h.Get("Content-Security-Policy") == "" {
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	}
	var b strings.Builder
	if err := uiPages[name].ExecuteTemplate(&b, "layout", p); err != nil {
		s.log.Error("ui: render", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write([]byte(b.String()))
	}
}

// uiDatasetLink is one entry of the dataset list.
type uiDatasetLink struct {
	Name, Title, Description, URL string
	RowLimit                      int64
	Sheets                        []string // of a dataset of several sheets
}

// uiIndex lists the datasets the request may export: GET /.
func (s *Server) uiIndex(w http.ResponseWriter, r *http.Request) {
	var list []uiDatasetLink
	for _, d := range s.conf(r).cfg.Datasets {
		if !s.mayExport(r, d) {
			continue
		}
		title := d.Title
		if title == "" {
			title = d.Name
		}
		list = append(list, uiDatasetLink{Name: d.Name, Title: title, Description: d.Description,
			URL: "/ui/datasets/" + url.PathEscape(d.Name), RowLimit: d.RowLimit, Sheets: d.SheetNames()})
	}
	s.render(w, r, http.StatusOK, "index", uiPage{Title: "데이터 내보내기", Nav: "datasets", Data: list})
}

// uiJobs is the "My exports" page: GET /ui/jobs. The script fills it from
// GET /v1/jobs (which shows the caller's jobs only).
func (s *Server) uiJobs(w http.ResponseWriter, r *http.Request) {
	// The datasets' titles, for the list (the API names datasets only).
	titles := map[string]string{}
	for _, d := range s.conf(r).cfg.Datasets {
		if d.Title != "" && s.mayExport(r, d) {
			titles[d.Name] = d.Title
		}
	}
	b, _ := json.Marshal(titles)
	s.render(w, r, http.StatusOK, "jobs", uiPage{Title: "내 내보내기", Nav: "jobs", Data: string(b)})
}

// uiDataset returns the dataset named in the path, or answers 404.
func (s *Server) uiDataset(w http.ResponseWriter, r *http.Request) (*exportd.Dataset, bool) {
	d, err := s.conf(r).cfg.Lookup(r.PathValue("name"))
	if err != nil || !s.mayExport(r, d) {
		// A dataset the principal may not see does not exist for it.
		s.render(w, r, http.StatusNotFound, "index", uiPage{Title: "찾을 수 없음", Nav: "datasets"})
		return nil, false
	}
	return d, true
}

// uiForm shows a dataset's export form: GET /ui/datasets/{name}. Values in
// the query string pre-fill the form.
func (s *Server) uiForm(w http.ResponseWriter, r *http.Request) {
	d, ok := s.uiDataset(w, r)
	if !ok {
		return
	}
	form := newUIForm(d, r.URL.Query(), false, s.conf(r).cfg.Location)
	form.noJobs(s.cfg.Jobs == nil)
	s.privacyForm(form, r, d, r.URL.Query(), false)
	s.render(w, r, http.StatusOK, "form", uiPage{Title: form.Title, Nav: "datasets", Data: form})
}

// uiDownload is where the form is submitted (GET, so it works without
// JavaScript): valid values redirect (303) to the streaming URL, so the
// browser's own download starts; invalid ones show the form again with a
// message next to each field at fault (400); an export expected to pass
// the row limit shows the form with the background job offered (409).
func (s *Server) uiDownload(w http.ResponseWriter, r *http.Request) {
	d, ok := s.uiDataset(w, r)
	if !ok {
		return
	}
	in := r.URL.Query()
	sub, err := s.uiSubmit(r, d, in)
	if err == nil {
		http.Redirect(w, r, sub.URL, http.StatusSeeOther)
		return
	}
	form := newUIForm(d, in, true, s.conf(r).cfg.Location)
	form.noJobs(s.cfg.Jobs == nil)
	s.privacyForm(form, r, d, in, true)
	e := toError(err)
	form.setErrors(err)
	if e.Code == "row_limit" {
		form.TooLarge = true
		if form.JobsURL != "" {
			form.Notice = "이 조건은 바로 내려받기에는 너무 큽니다: 백그라운드에서 준비하세요. (" + e.Message + ")"
		} else {
			form.Notice = "이 조건은 바로 내려받기에는 너무 큽니다: 조건을 좁혀 주세요. (" + e.Message + ")"
		}
	} else if e.Status != http.StatusBadRequest {
		form.Notice = e.Message
	}
	s.render(w, r, e.Status, "form", uiPage{Title: form.Title, Nav: "datasets", Data: form})
}

// uiCheck validates the form as uiDownload does but answers JSON, for the
// script: 200 {"url", "format", "params", "file_name", "queue"}, or the API's error
// (400 bad_parameter with details naming each field, 409 row_limit with
// suggest "job").
func (s *Server) uiCheck(w http.ResponseWriter, r *http.Request) {
	d, err := s.conf(r).cfg.Lookup(r.PathValue("name"))
	if err == nil && !s.mayExport(r, d) {
		err = exportd.ErrUnknownDataset
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sub, err := s.uiSubmit(r, d, r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sub.Queue = rand.Text()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, sub)
}

// uiSubmission is a validated form.
type uiSubmission struct {
	URL      string              `json:"url"`    // the streaming download
	Format   exportd.Format      `json:"format"` // as chosen
	Params   map[string][]string `json:"params"` // the values given, as sent to the API
	FileName string              `json:"file_name"`
	// Queue is a fresh queue name for the download: the script adds
	// queue=Queue to URL and asks GET /v1/queue/{Queue} where it stands.
	Queue string `json:"queue,omitempty"`
}

// uiSubmit validates a submitted form (parameters plus "format") by
// planning the export the streaming endpoint will run, and checks the row
// limit (checkRowLimit). A refusal of a personal dataset's download is in
// the audit trail, as the stream's refusals are: the script's check and
// the form's submission without JavaScript are the UI's attempts to
// export.
func (s *Server) uiSubmit(r *http.Request, d *exportd.Dataset, in url.Values) (_ *uiSubmission, err error) {
	ctx := r.Context()
	var preq *plan.Request
	var p *plan.Plan
	raw := formParams(d, in)
	f := exportd.FormatXLSX
	defer func() {
		if err == nil || r.Method == http.MethodHead {
			return
		}
		var recorded any = flatten(raw)
		if p != nil {
			recorded = p.AuditParams()
		}
		s.auditDenied(r, d, f, recorded, preq, err)
	}()
	var formatErr error
	if v := in.Get("format"); v != "" {
		if f, err = exportd.ParseFormat(v); err != nil {
			f = exportd.FormatXLSX
			formatErr = &exportd.ParamError{Param: "format", Reason: err.Error()}
		}
	}
	// The privacy keys (purpose, purpose_text, columns: the form's
	// fields) go to the plan with the parameters, as on the stream.
	priv := url.Values{}
	for _, k := range []string{keyPurpose, keyPurposeText, keyColumns, keySheet} {
		for _, v := range in[k] {
			if v != "" {
				priv.Add(k, v)
			}
		}
	}
	if _, ok := in[keyColumns]; ok && len(priv[keyColumns]) == 0 {
		// The form's column choice came back with no box ticked (its
		// hidden empty "columns" field is there): that is no column,
		// not all of them.
		priv[keyColumns] = []string{""}
	}
	if _, ok := in[keySheet]; ok && len(priv[keySheet]) == 0 {
		priv[keySheet] = []string{""} // no sheet ticked: none, not all
	}
	q := cloneValues(url.Values(raw))
	for k, v := range priv {
		q[k] = v
	}
	p, preq, err = s.planExport(r, d, f, q)
	if formatErr != nil && (err == nil || toError(err).Status == http.StatusBadRequest) {
		err = joinParamErrors(formatErr, err)
	}
	if err != nil {
		p = nil
		return nil, err
	}
	// The link carries the parameters as planned (pinned ones filled in)
	// and the privacy keys.
	link := cloneValues(p.Raw)
	for k, v := range priv {
		link[k] = v
	}
	sub := &uiSubmission{Format: f, Params: link, FileName: p.FileName,
		URL: "/v1/datasets/" + url.PathEscape(d.Name) + "/export." + string(f)}
	if len(link) > 0 {
		sub.URL += "?" + link.Encode()
	}
	if p.Sheets != nil {
		// Several queries: the stream's estimate (checkEstimate) and its
		// row limit over every sheet apply.
		return sub, nil
	}
	if err := s.checkRowLimit(ctx, s.conf(r).sources[d.Connection], d, p.Query); err != nil {
		return nil, err
	}
	return sub, nil
}

// uiCountBudget bounds the time checkRowLimit spends counting rows.
var uiCountBudget = 3 * time.Second

// checkRowLimit refuses (409 row_limit, suggesting a background job) a
// direct download from the UI whose result passes d's row limit, so that
// the page offers the job instead of a download that would abort at the
// limit. On every source it counts the rows, up to one more than the
// limit:
//
//	SELECT count(*) FROM (SELECT 1 FROM (<dataset sql>) LIMIT row_limit+1)
//
// within uiCountBudget and the request's context; a count that does not
// finish in time (or fails) lets the download proceed, which then stops
// at the limit as before. A source with a row estimate (PostgreSQL's
// planner) is not counted when the estimate is clearly on one side of the
// limit, by the factor of Config.EstimateFactor: far above is refused at
// once, far below proceeds. A negative EstimateFactor turns the check
// off, as it does for the stream (which never counts: see checkEstimate).
//
// The count runs the query a first time, as far as the limit; the budget
// is what the button's wait may cost on a query that is slow to return
// its rows.
func (s *Server) checkRowLimit(ctx context.Context, src exportd.Source, d *exportd.Dataset, q exportd.Query) error {
	factor := s.cfg.EstimateFactor
	if d.RowLimit <= 0 || factor < 0 || src == nil {
		return nil
	}
	if n, ok := estimateRows(ctx, src, q); ok {
		switch limit := float64(d.RowLimit); {
		case float64(n) > limit*factor:
			return fmt.Errorf("%w: about %d rows are expected and a direct download of %s stops at %d",
				errTooLarge, n, d.Name, d.RowLimit)
		case float64(n)*factor < limit:
			return nil
		}
	}
	cctx, cancel := context.WithTimeout(ctx, uiCountBudget)
	defer cancel()
	n, err := countRows(cctx, src, d, q, d.RowLimit+1)
	if err != nil {
		s.log.Debug("ui: row count not finished; the download proceeds", "dataset", d.Name, "error", err.Error())
		return nil
	}
	if n > d.RowLimit {
		return fmt.Errorf("%w: more than %d rows: a direct download of %s stops at %d",
			errTooLarge, d.RowLimit, d.Name, d.RowLimit)
	}
	return nil
}

// countRows counts the rows of q, d's query, up to most.
func countRows(ctx context.Context, src exportd.Source, d *exportd.Dataset, q exportd.Query, most int64) (int64, error) {
	q.SQL = fmt.Sprintf("SELECT count(*) FROM (SELECT 1 AS one FROM (\n%s\n) AS exportd_q LIMIT %d) AS exportd_n", baseSQL(d), most)
	rows, err := src.Query(ctx, q)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	v := make([]exportd.Value, 1)
	if !rows.Next(v) {
		if err := rows.Err(); err != nil {
			return 0, err
		}
		return 0, errors.New("count: no row")
	}
	var n int64
	switch v[0].Kind {
	case exportd.KindInt:
		n = v[0].I
	case exportd.KindFloat:
		n = int64(v[0].F)
	default:
		if n, err = strconv.ParseInt(v[0].S, 10, 64); err != nil {
			return 0, fmt.Errorf("count: %w", err)
		}
	}
	return n, rows.Close()
}

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

// --- the form ---------------------------------------------------------------

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

var formatLabels = map[exportd.Format]string{
	exportd.FormatXLSX: "Excel (.xlsx)", exportd.FormatCSV: "CSV", exportd.FormatTSV: "TSV", exportd.FormatJSONL: "JSON Lines",
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
