package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/format"
	"github.com/exportd/exportd/xlsx"
)

// errMaxDuration ends an export that ran past its dataset's max_duration.
var errMaxDuration = errors.New("export ran past its maximum duration")

// exportRequest is a validated export request.
type exportRequest struct {
	d      *exportd.Dataset
	format exportd.Format
	params map[string]any
	part   *partSpec // nil: the whole export
	gzip   bool
	client string
	// privacy: the purpose, the columns chosen and their plan (privacy.go)
	privacy   *privacyRequest
	rawParams url.Values // the query as given, for the audit record of a refusal
}

// parseExport validates the path and query of an export request. On an
// error it returns what it had found (the dataset, the format, the
// privacy request), for the audit record of the refusal.
func (s *Server) parseExport(r *http.Request) (*exportRequest, error) {
	d, err := s.cfg.Datasets.Lookup(r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	req := &exportRequest{d: d}
	file := r.PathValue("file")
	ext, ok := strings.CutPrefix(file, "export.")
	if !ok {
		return nil, &Error{Status: http.StatusNotFound, Code: "not_found", Field: "file",
			Message: fmt.Sprintf("no such route: %q (want export.xlsx, export.csv, export.tsv or export.jsonl)", file)}
	}
	f, err := exportd.ParseFormat(ext)
	if err != nil {
		return req, fmt.Errorf("%w %q (want xlsx, csv, tsv or jsonl)", errUnknownFormat, ext)
	}
	req.format = f
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return req, &Error{Status: http.StatusBadRequest, Code: "bad_query", Message: "malformed query string: " + err.Error()}
	}
	req.rawParams = url.Values{}
	for k, v := range q {
		req.rawParams[k] = v
	}
	delete(req.rawParams, keyPassword)
	// The principal's roles and pinned parameters (auth.go).
	if err := s.authorize(r, d, q); err != nil {
		return req, err
	}
	// The purpose and the columns (privacy.go).
	if req.privacy, err = s.takePrivacy(r.Context(), d, q); err != nil {
		return req, err
	}
	if q.Has(keyPassword) {
		return req, &Error{Status: http.StatusBadRequest, Code: "bad_parameter", Field: keyPassword,
			Message: "never put a password in a URL (proxies log them): password-protected workbooks are background jobs, and the password is sent in the body of POST /v1/jobs/{id}/download"}
	}
	part, err := parsePart(q, d)
	if err != nil {
		return req, err
	}
	delete(q, "part")
	delete(q, "part_rows")
	delete(q, "part_from")
	for _, k := range exportd.ReservedParamNames {
		if _, given := q[k]; given {
			msg := fmt.Sprintf("%q is reserved and not supported on this endpoint", k)
			if k == "format" {
				msg = "the format is the file extension: export.xlsx, export.csv, export.tsv or export.jsonl"
			}
			return req, &Error{Status: http.StatusBadRequest, Code: "bad_parameter", Field: k, Message: msg}
		}
	}
	params, err := d.BindParams(q, s.cfg.Datasets.Location)
	if err != nil {
		return req, err
	}
	if d.Encryption == exportd.EncryptionRequired && f == exportd.FormatXLSX {
		return req, &Error{Status: http.StatusConflict, Code: "encryption_required", Suggest: "job",
			Message: d.Name + " is exported as a password-protected workbook only: run it as a background job and download it with a password"}
	}
	req.params, req.part = params, part
	req.gzip, req.client = f != exportd.FormatXLSX && acceptsGzip(r.Header), s.cfg.ClientKey(r)
	return req, nil
}

// export streams one dataset: GET /v1/datasets/{name}/export.{format}.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	req, err := s.parseExport(r)
	if err != nil {
		if req != nil && r.Method != http.MethodHead {
			// A refused export of a personal dataset is in the audit trail.
			s.auditDenied(r, req.d, req.format, flatten(req.rawParams), req.privacy, err)
		}
		if e := toError(err); e.Status == http.StatusForbidden {
			// A denied export is in the audit log too, with the query as
			// given but without a password put in it by mistake.
			var params map[string]string
			if req != nil {
				params = flatten(req.rawParams)
			}
			s.log.Info("export", append(auditAttrs(r), "dataset", r.PathValue("name"), "params", params,
				"client", s.cfg.ClientKey(r), "outcome", e.Code, "status", e.Status, "error", err.Error())...)
		}
		s.writeError(w, r, err)
		return
	}
	d, f := req.d, req.format
	labels := []string{d.Name, string(f)}
	// The audit line: who, dataset, parameters (as bound, pins applied),
	// then rows, bytes and outcome.
	log := s.log.With(append(auditAttrs(r), "dataset", d.Name, "format", string(f), "params", auditParams(req.params), "client", req.client)...)
	refuse := func(outcome string, err error) {
		s.metrics.exports.WithLabelValues(d.Name, string(f), outcome).Inc()
		if outcome == "rejected" || outcome == "too_large" {
			s.metrics.rejected.WithLabelValues(outcome).Inc()
		}
		log.Info("export", "outcome", outcome, "status", toError(err).Status, "error", err.Error())
		if r.Method != http.MethodHead {
			s.auditDenied(r, d, f, auditParams(req.params), req.privacy, err)
		}
		s.writeError(w, r, err)
	}

	if err := s.admit.acquire(req.client); err != nil {
		e := toError(err)
		e.RetryAfter = s.cfg.RetryAfter
		refuse("rejected", e)
		return
	}
	defer s.admit.release(req.client)

	// The export's context ends when the client leaves, when the dataset's
	// maximum duration is over, or when the shutdown grace period is over.
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	stop := context.AfterFunc(s.streams, func() { cancel(context.Cause(s.streams)) })
	defer stop()
	maxDur := d.MaxDuration
	if maxDur == 0 {
		maxDur = s.cfg.MaxDuration
	}
	if maxDur > 0 {
		var c context.CancelFunc
		ctx, c = context.WithTimeoutCause(ctx, maxDur, errMaxDuration)
		defer c()
	}

	src := s.cfg.Sources[d.Connection]
	query := d.Query(req.params)
	fileName := d.FileNameFor(req.params, f)
	h := w.Header()
	if p := req.part; p != nil {
		if err := p.resolve(ctx, src, d, req.params); err != nil {
			outcome := "error"
			if e := toError(err); e.Status < 500 {
				outcome = e.Code
			}
			refuse(outcome, err)
			return
		}
		query = p.query(d, req.params)
		fileName = p.fileName(fileName)
		p.setHeaders(h, r)
	}
	if err := s.checkEstimate(ctx, src, d, query); err != nil {
		refuse("too_large", err)
		return
	}

	h.Set("Content-Type", f.ContentType())
	h.Set("Content-Disposition", contentDisposition(fileName))
	h.Set("X-Accel-Buffering", "no")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if f != exportd.FormatXLSX {
		h.Set("Vary", "Accept-Encoding")
	}
	if req.gzip {
		h.Set("Content-Encoding", "gzip")
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	if !r.ProtoAtLeast(1, 1) {
		s.metrics.http10.Inc()
		log.Warn("streaming over HTTP/1.0: an aborted download will look complete to the client; set proxy_http_version 1.1 in the proxy", "proto", r.Proto)
	}

	s.metrics.active.Inc()
	defer s.metrics.active.Dec()

	out := &stream{w: w, rc: http.NewResponseController(w), flushBytes: s.cfg.FlushBytes, writeTimeout: s.cfg.WriteTimeout}
	defer out.clearDeadline()
	// The digest of the exact bytes sent (after gzip), for the audit record.
	dig := &digestWriter{d: audit.NewDigest(out)}
	var dst io.Writer = dig
	var gz *gzip.Writer
	if req.gzip {
		gz, _ = gzip.NewWriterLevel(dig, gzip.BestSpeed)
		dst = gz
	}
	var rw exportd.RowWriter
	opts := format.Options{BOM: true, Sheet: d.SheetName(), Properties: xlsx.Properties{Title: d.Title, Description: d.Description},
		KeepAlive: s.cfg.KeepAlive > 0 && !req.gzip} // JSON Lines sent as is keeps alive with spaces
	if d.Marking {
		loc := s.cfg.Datasets.Location
		if loc == nil {
			loc = time.UTC
		}
		opts.Mark(s.cfg.Principal(r), time.Now().In(loc))
	}
	e := &exportd.Export{
		Source:  src,
		Query:   query,
		Columns: d.Columns,
		Output:  dst,
		// Masking and the choice of columns apply before the format
		// writer (privacy.go), so every format masks alike.
		NewWriter: req.privacy.wrap(func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
			fw, err := format.New(f, w, cols, opts)
			if err != nil {
				return nil, err
			}
			rw = &rowCounter{RowWriter: fw}
			return rw, nil
		}),
		MaxRows:       d.RowLimit,
		FlushInterval: s.cfg.FlushInterval,
		OnFlush: func(bool) error {
			if s.cfg.KeepAlive < 0 && !rw.(*rowCounter).seen {
				// Keep-alives off: nothing is sent before the first row
				// (the behaviour of a plain streaming server).
				return nil
			}
			if gz != nil {
				if err := gz.Flush(); err != nil {
					return err
				}
			}
			return out.Flush()
		},
	}
	if s.cfg.KeepAlive > 0 {
		e.KeepAlive = s.cfg.KeepAlive
	}
	st, err := e.Run(ctx)
	if err == nil && gz != nil {
		if err = gz.Close(); err == nil {
			err = out.Flush()
		}
	}

	outcome := "ok"
	if err != nil {
		outcome = classify(ctx, r.Context(), s.streams, err)
	}
	if d.Personal {
		rec := s.auditRecord(r, d.Name, f, auditParams(req.params))
		rec.Time = start
		rec.Columns, rec.Purpose = req.privacy.columnNames(), req.privacy.purpose
		rec.Rows, rec.Outcome = st.Rows, audit.OutcomeOf(err)
		rec.SHA256, rec.Bytes = dig.sum()
		if err != nil {
			rec.Error = outcome + ": " + err.Error()
		}
		s.appendAudit(r.Context(), rec)
	}
	s.metrics.exports.WithLabelValues(d.Name, string(f), outcome).Inc()
	s.metrics.rows.WithLabelValues(labels...).Add(float64(st.Rows))
	s.metrics.bytes.WithLabelValues(labels...).Add(float64(st.Bytes))
	s.metrics.duration.WithLabelValues(labels...).Observe(time.Since(start).Seconds())
	if st.FirstByte > 0 {
		s.metrics.ttfb.WithLabelValues(labels...).Observe(st.FirstByte.Seconds())
	}
	if outcome == "cancelled" {
		s.metrics.cancelled.WithLabelValues(labels...).Inc()
	}
	attrs := []any{"outcome", outcome, "rows", st.Rows, "bytes", st.Bytes,
		"duration", time.Since(start).Round(time.Millisecond).String(), "first_byte", st.FirstByte.Round(time.Microsecond).String()}
	if req.part != nil {
		attrs = append(attrs, "part", req.part.k, "part_rows", req.part.n)
	}
	if err == nil {
		log.Info("export", attrs...)
		return
	}
	level := slog.LevelError
	switch outcome {
	case "cancelled", "shutdown":
		level = slog.LevelInfo
	case "row_limit", "timeout", "stalled":
		level = slog.LevelWarn
	}
	log.Log(r.Context(), level, "export", append(attrs, "error", err.Error())...)

	if !out.started() {
		// Nothing was sent: the client gets a JSON error instead of a file.
		s.writeError(w, r, err)
		return
	}
	// The response has started: make sure nothing more leaves (the XLSX
	// writer's goroutine may still hold a buffer), end the writer's
	// goroutines, and abort the connection so the client sees a failed
	// download rather than a complete-looking truncated file.
	out.kill()
	if rw != nil {
		rw.Close()
	}
	panic(http.ErrAbortHandler)
}

// classify names the outcome of a failed export: ctx is the export's
// context, reqCtx the request's and streams the server's (see Serve).
func classify(ctx, reqCtx, streams context.Context, err error) string {
	cause := context.Cause(ctx)
	switch {
	// Shutdown and a stalled client end the request's context too (the
	// server closes the connection, or net/http cancels it after a failed
	// write): name them before a client that left.
	case errors.Is(cause, errShutdown), errors.Is(context.Cause(streams), errShutdown):
		return "shutdown"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "stalled" // the client stopped reading for WriteTimeout
	case reqCtx.Err() != nil:
		return "cancelled"
	case errors.Is(cause, errMaxDuration), errors.Is(err, exportd.ErrQueryTimeout):
		return "timeout"
	case errors.Is(err, exportd.ErrRowLimit):
		return "row_limit"
	}
	return "error"
}

// checkEstimate refuses, before anything is sent, an export whose source
// estimates far more rows than the dataset's row limit.
//
// The stream asks the planner only, which costs next to nothing. It does
// not count the rows as the UI's check does (checkRowLimit, ui.go): a
// count runs the query before the query, so the first bytes (and the
// keep-alives that hold a proxy) would wait for it, and an API client
// has the 409 of a far estimate, parts and background jobs already. A
// download that passes the limit anyway fails mid-stream (ErrRowLimit).
func (s *Server) checkEstimate(ctx context.Context, src exportd.Source, d *exportd.Dataset, q exportd.Query) error {
	if d.RowLimit <= 0 || s.cfg.EstimateFactor < 0 {
		return nil
	}
	n, ok := estimateRows(ctx, src, q)
	if !ok || float64(n) <= float64(d.RowLimit)*s.cfg.EstimateFactor {
		return nil
	}
	return fmt.Errorf("%w: about %d rows are expected and a direct download of %s stops at %d; download it in parts (part=1&part_rows=N) or run it as a background job",
		errTooLarge, n, d.Name, d.RowLimit)
}

// estimateRows returns src's estimate of q's rows, when src is an
// [exportd.Estimator] that answers within 2 seconds.
func estimateRows(ctx context.Context, src exportd.Source, q exportd.Query) (int64, bool) {
	est, ok := src.(exportd.Estimator)
	if !ok {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return est.EstimateRows(ctx, q)
}

// acceptsGzip reports whether an Accept-Encoding header accepts gzip.
func acceptsGzip(h http.Header) bool {
	for _, v := range h.Values("Accept-Encoding") {
		for item := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(item), ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name != "gzip" && name != "x-gzip" {
				continue
			}
			params = strings.ReplaceAll(params, " ", "")
			if q, ok := strings.CutPrefix(params, "q="); ok && strings.Trim(q, "0.") == "" {
				return false // q=0: refused
			}
			return true
		}
	}
	return false
}

// contentDisposition returns an attachment header for name: a plain ASCII
// filename for old clients and the full UTF-8 name in filename* (RFC 6266,
// RFC 8187), which browsers prefer.
func contentDisposition(name string) string {
	var b strings.Builder
	b.WriteString(`attachment; filename="`)
	b.WriteString(exportd.ASCIIFallback(name))
	b.WriteString(`"; filename*=UTF-8''`)
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(name); i++ {
		c := name[i]
		if isAttrChar(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// isAttrChar reports whether c may appear unencoded in an RFC 8187 value.
func isAttrChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		slices.Contains([]byte("!#$&+-.^_`|~"), c)
}

// rowCounter notes whether a row has been written.
type rowCounter struct {
	exportd.RowWriter
	seen bool
}

func (r *rowCounter) WriteRow(row []exportd.Value) error {
	r.seen = true
	return r.RowWriter.WriteRow(row)
}

// Unwrap returns the format writer, so that the export finds its
// keep-alive (exportd.KeepAliver).
func (r *rowCounter) Unwrap() exportd.RowWriter { return r.RowWriter }

// flatten renders query values for an audit record: each key's values
// joined by commas.
func flatten(q url.Values) map[string]string {
	out := make(map[string]string, len(q))
	for k, v := range q {
		out[k] = strings.Join(v, ",")
	}
	return out
}
