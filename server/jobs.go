package server

// Background jobs (package jobs): submit, follow, cancel, list and
// download. The routes are served when Config.Jobs is set.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/jobs"
)

// AnonymousPrincipal owns every job until access control arrives: the
// default Config.Principal when the server has no Auth.
const AnonymousPrincipal = "anonymous"

// jobRoutes lists the job API's routes, served when Config.Jobs is set
// (New registers them then; the OpenAPI document is tested against them
// either way).
func (s *Server) jobRoutes() []route {
	return []route{
		{"POST", "/v1/datasets/{name}/jobs", "/v1/datasets/{name}/jobs", http.HandlerFunc(s.submitJob)},
		{"GET", "/v1/jobs", "/v1/jobs", http.HandlerFunc(s.listJobs)},
		{"GET", "/v1/jobs/{id}", "/v1/jobs/{id}", http.HandlerFunc(s.getJob)},
		{"DELETE", "/v1/jobs/{id}", "/v1/jobs/{id}", http.HandlerFunc(s.cancelJob)},
		{"GET", "/v1/jobs/{id}/events", "/v1/jobs/{id}/events", http.HandlerFunc(s.jobEvents)},
		{"GET", "/v1/jobs/{id}/download", "/v1/jobs/{id}/download", http.HandlerFunc(s.downloadJob)},
		{"POST", "/v1/jobs/{id}/download", "/v1/jobs/{id}/download", http.HandlerFunc(s.downloadJob)}, // with a password (privacy.go)
	}
}

// isJobLink reports whether r is a job download carrying a signed link,
// which is its own credential (checked by downloadJob).
func isJobLink(r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/jobs/")
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	id, tail, _ := strings.Cut(rest, "/")
	return id != "" && tail == "download" && jobs.IsSignedLink(r.URL.Query())
}

// jobRequest is the body of POST /v1/datasets/{name}/jobs: JSON
// {"format": "xlsx", "params": {"from": "2024-01-01", "ids": [1, 2]}}, or
// a form (format=xlsx&from=2024-01-01).
type jobRequest struct {
	Format string                     `json:"format"`
	Params map[string]json.RawMessage `json:"params"`
}

// submitJob plans the export as the stream would (access, pins,
// parameters, purpose, columns: refused here with the same errors) and
// queues it; the worker plans it again from what is stored and runs it.
func (s *Server) submitJob(w http.ResponseWriter, r *http.Request) {
	d, err := s.conf(r).cfg.Lookup(r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f, q, err := parseJobRequest(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rawParams := flatten(q)
	p, preq, err := s.planExport(r, d, f, q)
	if err != nil {
		s.auditDenied(r, d, f, rawParams, preq, err)
		s.writeError(w, r, err)
		return
	}
	owner := p.Principal.Name
	j, joined, err := s.cfg.Jobs.Submit(r.Context(), jobs.Request{Owner: owner, Roles: p.Principal.Roles, Dataset: d.Name, Format: f,
		Params: p.Raw, Columns: p.Chosen, Sheets: p.ChosenSheets, Purpose: p.Purpose.Category, PurposeText: p.Purpose.Text})
	if err != nil {
		s.auditDenied(r, d, f, rawParams, preq, err)
		s.writeError(w, r, err)
		return
	}
	s.log.Info("job submitted", append(auditAttrs(r), "job", j.ID, "dataset", d.Name, "format", string(f),
		"params", p.Raw.Encode(), "joined", joined, "owner", owner)...)
	w.Header().Set("Location", "/v1/jobs/"+url.PathEscape(j.ID))
	if joined {
		w.Header().Set("X-Exportd-Joined", "true")
	}
	writeJSON(w, http.StatusAccepted, j)
}

// maxJobBody is the largest job request body: 413 beyond it.
const maxJobBody = 1 << 20

// parseJobRequest reads the format and parameters of a job request; a body
// over maxJobBody is 413 body_too_large.
func parseJobRequest(r *http.Request) (exportd.Format, url.Values, error) {
	bad := func(msg string) error {
		return &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: msg}
	}
	tooLarge := func(err error) error {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
				Message: fmt.Sprintf("the request body is larger than %d bytes", mb.Limit)}
		}
		return nil
	}
	q := url.Values{}
	format := ""
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/json":
		var req jobRequest
		dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxJobBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			if e := tooLarge(err); e != nil {
				return "", nil, e
			}
			return "", nil, bad("malformed JSON body: " + err.Error())
		}
		format = req.Format
		for k, raw := range req.Params {
			vals, err := jsonParam(raw)
			if err != nil {
				return "", nil, badParameter(k, fmt.Sprintf("parameter %s: %v", k, err))
			}
			q[k] = vals
		}
	case "application/x-www-form-urlencoded", "multipart/form-data", "":
		r.Body = http.MaxBytesReader(nil, r.Body, maxJobBody)
		if err := r.ParseForm(); err != nil {
			if e := tooLarge(err); e != nil {
				return "", nil, e
			}
			return "", nil, bad("malformed form: " + err.Error())
		}
		for k, v := range r.PostForm {
			switch k {
			case "format":
				format = v[0]
			default:
				q[k] = v
			}
		}
		if format == "" {
			format = r.URL.Query().Get("format")
		}
	default:
		return "", nil, &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: "send JSON ({\"format\": …, \"params\": {…}}) or a form"}
	}
	if format == "" {
		format = string(exportd.FormatXLSX)
	}
	f, err := exportd.ParseFormat(format)
	if err != nil {
		return "", nil, fmt.Errorf("%w %q (want xlsx, csv, tsv or jsonl)", errUnknownFormat, format)
	}
	return f, q, nil
}

// jsonParam turns a JSON parameter value into its query-string values: a
// string, number or boolean is one value, an array one value per item.
func jsonParam(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, err
		}
		var out []string
		for _, it := range items {
			v, err := jsonScalar(it)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	v, err := jsonScalar(raw)
	if err != nil {
		return nil, err
	}
	return []string{v}, nil
}

func jsonScalar(raw json.RawMessage) (string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return fmt.Sprint(v), nil
	}
	return "", errors.New("want a string, number, boolean or an array of them")
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	j, err := s.cfg.Jobs.Get(r.Context(), s.cfg.Principal(r), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	list, err := s.cfg.Jobs.List(r.Context(), s.cfg.Principal(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"jobs": list})
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request) {
	j, err := s.cfg.Jobs.Cancel(r.Context(), s.cfg.Principal(r), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("job cancel", append(auditAttrs(r), "job", j.ID, "state", j.State)...)
	writeJSON(w, http.StatusOK, j)
}

// jobEventsEvery is how often the events stream looks at the job; an
// event is sent only when the job changed.
const jobEventsEvery = 250 * time.Millisecond

// jobEvents streams a job's progress as Server-Sent Events: an event
// "progress" (data: the job's JSON) each time the job changed, at most
// four a second, and a last event "done" at its final state, after which
// the stream ends. A comment line every 15 s keeps proxies from timing
// out while a job waits. A retry shows as the job's attempt going up and
// its rows starting again from 0 (see jobs.Job.Rows).
//
// When the server begins to shut down, the stream ends within a tick,
// without "done": it would otherwise hold the shutdown for its whole
// grace period, and a browser's EventSource (or the UI, which then
// polls) asks again, reaching another node. Downloads are not cut.
func (s *Server) jobEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	owner, id := s.cfg.Principal(r), r.PathValue("id")
	j, err := s.cfg.Jobs.Get(ctx, owner, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	var last []byte
	lastSent := time.Now()
	tick := time.NewTicker(jobEventsEvery)
	defer tick.Stop()
	for {
		data, _ := json.Marshal(j)
		event := "progress"
		if j.Final() {
			event = "done"
		}
		switch {
		case !bytes.Equal(data, last) || j.Final():
			rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data); err != nil {
				return
			}
			last, lastSent = data, time.Now()
		case time.Since(lastSent) >= 15*time.Second:
			if _, err := io.WriteString(w, ": waiting\n\n"); err != nil {
				return
			}
			lastSent = time.Now()
		}
		if err := rc.Flush(); err != nil || j.Final() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.streams.Done(): // shutting down: the client reconnects elsewhere
			return
		case <-tick.C:
		}
		if s.draining.Load() {
			return
		}
		if j, err = s.cfg.Jobs.Get(ctx, owner, id); err != nil {
			return
		}
	}
}

// downloadJob serves a succeeded job's result, with Content-Length, ETag,
// Last-Modified and Range (http.ServeContent over the stored object,
// which seeks by range reads on S3). A signed link (expires, sig) is its
// own credential; without one, the job must be the caller's.
func (s *Server) downloadJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	signed := jobs.IsSignedLink(r.URL.Query())
	var (
		res *jobs.Result
		err error
	)
	if signed {
		res, err = s.cfg.Jobs.OpenLink(r.Context(), id, r.URL.Query(), time.Now())
		if errors.Is(err, jobs.ErrBadLink) || errors.Is(err, jobs.ErrLinkExpired) {
			s.log.Info("job download", "job", id, "outcome", toError(err).Code, "client", remoteIP(r, s.cfg.TrustedProxies), "error", err.Error())
		}
	} else {
		res, err = s.cfg.Jobs.Open(r.Context(), s.cfg.Principal(r), id)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer res.Close()
	if err := limitRanges(r, res.Size()); err != nil {
		// answered 416 by ServeContent below, so that a personal
		// dataset's refused attempt is in the trail like any other
		w.Header().Set("Exportd-Range-Error", err.Error())
		r.Header.Set("Range", fmt.Sprintf("bytes=%d-", res.Size()))
	}
	// A personal dataset's download is audited; a password-protected one
	// is encrypted on the way (privacy.go).
	if s.personalDownload(w, r, res) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", res.Job.ContentType())
	h.Set("Content-Disposition", contentDisposition(res.Job.FileName))
	h.Set("ETag", res.Job.ETag())
	h.Set("Cache-Control", "private, no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Header.Get("Range") == "" {
		s.log.Info("job download", append(auditAttrs(r), "job", id, "owner", res.Job.Owner(), "signed", signed,
			"bytes", res.Size(), "sha256", res.Job.SHA256, "client", remoteIP(r, s.cfg.TrustedProxies))...)
	}
	s.serveJobResult(w, r, res) // http.ServeContent; a personal dataset's download is audited as sent (privacy.go)
}
