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

// --- the form ---------------------------------------------------------------

var formatLabels = map[exportd.Format]string{
	exportd.FormatXLSX: "Excel (.xlsx)", exportd.FormatCSV: "CSV", exportd.FormatTSV: "TSV", exportd.FormatJSONL: "JSON Lines",
}
