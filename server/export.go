package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/plan"
)

// errMaxDuration ends an export that ran past its dataset's max_duration.
var errMaxDuration = errors.New("export ran past its maximum duration")

// exportRequest is a validated export request.
type exportRequest struct {
	d      *exportd.Dataset
	format exportd.Format
	plan   *plan.Plan
	part   *partSpec // nil: the whole export
	gzip   bool
	client string
	queue  string // the queue name the client gave (queue=), or ""
	// what was asked, for the audit record of a refusal
	asked     *plan.Request
	rawParams url.Values // the query as given, without a password
}

// parseExport validates the path and query of an export request and
// plans the export. On an error it returns what it had found (the
// dataset, the format, what was asked), for the audit record of the
// refusal.
func (s *Server) parseExport(r *http.Request) (*exportRequest, error) {
	d, err := s.conf(r).cfg.Lookup(r.PathValue("name"))
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
	if q.Has("format") {
		return req, badParameter("format", "the format is the file extension: export.xlsx, export.csv, export.tsv or export.jsonl")
	}
	// The parts, then the plan: the purpose and the columns (privacy.go);
	// the rest are the dataset's parameters.
	part, err := parsePart(q, d)
	if err != nil {
		return req, err
	}
	delete(q, "part")
	delete(q, "part_rows")
	delete(q, "part_from")
	// queue= names the download in the queue, for its client to ask
	// where it stands (GET /v1/queue/{id}).
	if q.Has(keyQueue) {
		req.queue = q.Get(keyQueue)
		if !validQueueName(req.queue) {
			return req, badParameter(keyQueue, "a queue name is 1 to 64 letters, digits, '-' and '_'")
		}
		delete(q, keyQueue)
	}
	if req.plan, req.asked, err = s.planExport(r, d, f, q); err != nil {
		return req, err
	}
	if d.Encryption == exportd.EncryptionRequired && f == exportd.FormatXLSX {
		return req, &Error{Status: http.StatusConflict, Code: "encryption_required", Suggest: "job",
			Message: d.Name + " is exported as a password-protected workbook only: run it as a background job and download it with a password"}
	}
	req.part = part
	// A ZIP of several sheets is deflated already.
	req.gzip, req.client = f != exportd.FormatXLSX && !req.plan.Zip() && acceptsGzip(r.Header), s.cfg.ClientKey(r)
	return req, nil
}

// export streams one dataset: GET /v1/datasets/{name}/export.{format}.
// Its plan (package plan) decides the file; this handler admits the
// request, sets the headers, keeps the connection alive and flushed, and
// aborts the connection when an export fails after its first byte.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// Until its first bytes, the request goes before the running exports
	// (turns.go); a wait for the database or for a slot ends that.
	arrived := s.arrive(r)
	defer arrived()
	arrivedAt := time.Now() // requests that come after this one are a crowd (settle)
	req, err := s.parseExport(r)
	if err != nil {
		s.refuseRequest(w, r, req, err)
		return
	}
	d, p := req.d, req.plan
	// The audit line: who, dataset, parameters (as bound, pins applied),
	// then rows, bytes and outcome.
	log := s.log.With(append(auditAttrs(r), "dataset", d.Name, "format", string(req.format), "params", p.AuditParams(), "client", req.client)...)
	refuse := func(outcome string, err error) {
		s.metrics.exports.WithLabelValues(d.Name, string(req.format), outcome).Inc()
		if outcome == "rejected" || outcome == "too_large" {
			s.metrics.rejected.WithLabelValues(outcome).Inc()
		}
		log.Info("export", "outcome", outcome, "status", toError(err).Status, "error", err.Error())
		if r.Method != http.MethodHead {
			s.auditDenied(r, d, req.format, p.AuditParams(), req.asked, err)
		}
		s.writeError(w, r, err)
	}

	// Admitted at once, run when there is a slot (admission.go): the
	// export waits in Run, after its first bytes, with keep-alives.
	ticket, err := s.admit.join(req.client)
	if err != nil {
		e := toError(err)
		e.RetryAfter = s.cfg.RetryAfter
		refuse("rejected", e)
		return
	}
	defer ticket.done()
	ctx, cleanup := s.exportContext(r, d, ticket, req.queue)
	defer cleanup()

	src := s.conf(r).sources[d.Connection]
	query, fileName := p.Query, p.FileName
	if req.part != nil || s.estimates(d) {
		arrived() // a round trip to the database
	}
	if part := req.part; part != nil {
		if err := part.resolve(ctx, src, d, p.Params); err != nil {
			outcome := "error"
			if e := toError(err); e.Status < 500 {
				outcome = e.Code
			}
			refuse(outcome, err)
			return
		}
		query = part.query(d, p.Params)
		fileName = part.fileName(fileName)
		part.setHeaders(w.Header(), r)
	}
	if err := s.checkEstimate(ctx, s.conf(r).sources, p, query); err != nil {
		refuse("too_large", err)
		return
	}
	setDownloadHeaders(w.Header(), req, fileName)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	if !r.ProtoAtLeast(1, 1) {
		s.metrics.http10.Inc()
		log.Warn("streaming over HTTP/1.0: an aborted download will look complete to the client; set proxy_http_version 1.1 in the proxy", "proto", r.Proto)
		if req.format != exportd.FormatXLSX && !req.gzip {
			// Over HTTP/1.0 the end of the body is the close of the
			// connection: an uncompressed text file ended while it waits
			// (a shutdown) would look complete. It waits before the
			// response starts instead, so that such an end is a JSON error.
			arrived()
			if _, err := ticket.wait(ctx); err != nil {
				refuse(classify(ctx, r.Context(), s.streams, err), err)
				return
			}
		}
	}
	s.metrics.active.Inc()
	defer s.metrics.active.Dec()

	sr := &streamRun{s: s, r: r, req: req, ctx: ctx, log: log, start: start, outcome: "ok",
		out: &stream{w: w, rc: http.NewResponseController(w), flushBytes: s.cfg.FlushBytes, writeTimeout: s.cfg.WriteTimeout}}
	defer sr.out.clearDeadline()
	opts := sr.options(src, ticket, arrivedAt)
	admit := opts.Admit
	opts.Admit = func(ctx context.Context) (func(), error) {
		arrived() // the first bytes are out
		return admit(ctx)
	}
	if req.part != nil {
		opts.Query = &query
	}
	res, err := p.Run(ctx, opts)
	sr.record(res, err)
	if err != nil {
		sr.abort(w, err)
	}
}

// refuseRequest answers a request whose export could not be planned: a
// refused export of a personal dataset is in the audit trail, and a denied
// one in the log too (with the query as given, a password put in it by
// mistake redacted).
func (s *Server) refuseRequest(w http.ResponseWriter, r *http.Request, req *exportRequest, err error) {
	if req != nil && r.Method != http.MethodHead {
		s.auditDenied(r, req.d, req.format, flatten(req.rawParams), req.asked, err)
	}
	if e := toError(err); e.Status == http.StatusForbidden {
		var params map[string]string
		if req != nil {
			params = flatten(req.rawParams)
		}
		s.log.Info("export", append(auditAttrs(r), "dataset", r.PathValue("name"), "params", params,
			"client", s.cfg.ClientKey(r), "outcome", e.Code, "status", e.Status, "error", err.Error())...)
	}
	s.writeError(w, r, err)
}

// exportContext returns the context of an export: it ends when the client
// leaves, when the dataset's maximum duration is over, when the shutdown
// grace period is over, or when the client ends its place in the queue
// (queue names it). cleanup releases it.
func (s *Server) exportContext(r *http.Request, d *exportd.Dataset, t *ticket, queue string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(r.Context())
	stop := context.AfterFunc(s.streams, func() { cancel(context.Cause(s.streams)) })
	if queue != "" {
		t.setName(queue, func() { cancel(errLeftQueue) })
	}
	maxDur := cmp.Or(d.MaxDuration, s.cfg.MaxDuration)
	cancelTimeout := func() {}
	if maxDur > 0 {
		ctx, cancelTimeout = context.WithTimeoutCause(ctx, maxDur, errMaxDuration)
	}
	return ctx, func() {
		cancelTimeout()
		stop()
		cancel(nil)
	}
}

// setDownloadHeaders sets the headers of a download: its type and file
// name, no buffering in a proxy, no caching, no sniffing, and the encoding.
func setDownloadHeaders(h http.Header, req *exportRequest, fileName string) {
	h.Set("Content-Type", req.plan.ContentType())
	h.Set("Content-Disposition", contentDisposition(fileName))
	h.Set("X-Accel-Buffering", "no")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if req.format != exportd.FormatXLSX {
		h.Set("Vary", "Accept-Encoding")
	}
	if req.gzip {
		h.Set("Content-Encoding", "gzip")
	}
}

// streamRun is one streamed export under way: what its plan's options,
// its metrics and log line, and its abort share.
type streamRun struct {
	s       *Server
	r       *http.Request
	req     *exportRequest
	ctx     context.Context
	log     *slog.Logger
	start   time.Time
	out     *stream
	rw      *rowCounter // the writer of the current sheet
	outcome string
}

// options returns the plan's options of the stream; arrivedAt is when
// its request began to count as arriving (turns.go).
func (sr *streamRun) options(src exportd.Source, t *ticket, arrivedAt time.Time) plan.Options {
	s, r := sr.s, sr.r
	turns := s.turns.forExport()
	opts := plan.Options{
		Source:  src,
		Sources: s.conf(r).sources,
		Output:  sr.out,
		Direct:  true,
		Gzip:    sr.req.gzip,
		Finish:  sr.out.Flush,
		Audit:   s.auditor(),
		// The audit record's error names the outcome (cancelled, stalled…).
		Describe: func(err error) string {
			sr.outcome = classify(sr.ctx, r.Context(), s.streams, err)
			return sr.outcome + ": " + err.Error()
		},
		OnAuditError: func(err error) { s.auditFailed(sr.req.d.Name, sr.req.plan.Principal.Name, err) },
		// Called once per sheet: a row seen in an earlier sheet stays seen.
		WrapWriter: func(w exportd.RowWriter) exportd.RowWriter {
			sr.rw = &rowCounter{RowWriter: w, seen: sr.rw != nil && sr.rw.seen}
			return sr.rw
		},
		FlushInterval: s.cfg.FlushInterval,
		Admit:         s.admitted(t, func(ctx context.Context) error { return turns.settle(ctx, arrivedAt) }),
		Turn:          turns.take,
		OnFlush: func(bool) error {
			if s.cfg.KeepAlive < 0 && (sr.rw == nil || !sr.rw.seen) {
				// Keep-alives off: nothing is sent before the first row
				// (the behaviour of a plain streaming server).
				return nil
			}
			return sr.out.Flush()
		},
	}
	if s.cfg.KeepAlive > 0 {
		opts.KeepAlive = s.cfg.KeepAlive
	}
	return opts
}

// record counts the export in the metrics and writes its log line.
func (sr *streamRun) record(res plan.Result, err error) {
	s, st := sr.s, res.Stats
	if err != nil {
		sr.outcome = classify(sr.ctx, sr.r.Context(), s.streams, err)
	}
	if errors.Is(err, plan.ErrAuditUnavailable) {
		s.metrics.auditErrors.Inc()
		sr.outcome = "audit_unavailable"
	}
	d, f := sr.req.d.Name, string(sr.req.format)
	s.metrics.exports.WithLabelValues(d, f, sr.outcome).Inc()
	s.metrics.rows.WithLabelValues(d, f).Add(float64(st.Rows))
	s.metrics.bytes.WithLabelValues(d, f).Add(float64(st.Bytes))
	s.metrics.duration.WithLabelValues(d, f).Observe(time.Since(sr.start).Seconds())
	if st.FirstByte > 0 {
		s.metrics.ttfb.WithLabelValues(d, f).Observe(st.FirstByte.Seconds())
	}
	if sr.outcome == "cancelled" {
		s.metrics.cancelled.WithLabelValues(d, f).Inc()
	}
	attrs := []any{"outcome", sr.outcome, "rows", st.Rows, "bytes", st.Bytes,
		"duration", time.Since(sr.start).Round(time.Millisecond).String(), "first_byte", st.FirstByte.Round(time.Microsecond).String()}
	if p := sr.req.part; p != nil {
		attrs = append(attrs, "part", p.k, "part_rows", p.n)
	}
	if err == nil {
		sr.log.Info("export", attrs...)
		return
	}
	level := slog.LevelError
	switch sr.outcome {
	case "cancelled", "shutdown":
		level = slog.LevelInfo
	case "row_limit", "timeout", "stalled":
		level = slog.LevelWarn
	}
	sr.log.Log(sr.r.Context(), level, "export", append(attrs, "error", err.Error())...)
}

// abort ends a failed export. Before the first byte the client gets a JSON
// error instead of a file. After it, nothing more may leave (the XLSX
// writer's goroutine may still hold a buffer): the writer's goroutines
// end and the connection is aborted, so that the client sees a failed
// download rather than a complete-looking truncated file.
func (sr *streamRun) abort(w http.ResponseWriter, err error) {
	if !sr.out.started() {
		sr.s.writeError(w, sr.r, err)
		return
	}
	sr.out.kill()
	if sr.rw != nil {
		sr.rw.Close()
	}
	panic(http.ErrAbortHandler)
}

// admitted returns the wait of ticket for the engine: no slot is taken,
// and so no query starts, once the shutdown's grace period is over (the
// streams' context ends before each export's own does). With its slot,
// the export settles (turns.go) before its query starts.
func (s *Server) admitted(t *ticket, settle func(context.Context) error) func(context.Context) (func(), error) {
	return func(ctx context.Context) (func(), error) {
		release, err := t.wait(ctx)
		if err != nil {
			return nil, err
		}
		if s.streams.Err() != nil {
			release()
			return nil, context.Cause(s.streams)
		}
		if err := settle(ctx); err != nil {
			release()
			return nil, err
		}
		return release, nil
	}
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
	case reqCtx.Err() != nil, errors.Is(cause, errLeftQueue):
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
//
// The estimate of a dataset of several sheets is the sum of its sheets'.
func (s *Server) checkEstimate(ctx context.Context, sources map[string]exportd.Source, p *plan.Plan, q exportd.Query) error {
	d := p.Dataset
	src := sources[d.Connection]
	if !s.estimates(d) {
		return nil
	}
	var n int64
	ok := true
	if p.Sheets == nil {
		n, ok = estimateRows(ctx, src, q)
	}
	for _, sh := range p.Sheets {
		ssrc := src
		if sh.Connection != d.Connection {
			ssrc = sources[sh.Connection]
		}
		k, known := estimateRows(ctx, ssrc, sh.Query)
		n, ok = n+k, ok && known
	}
	if !ok || float64(n) <= float64(d.RowLimit)*s.cfg.EstimateFactor {
		return nil
	}
	return fmt.Errorf("%w: about %d rows are expected and a direct download of %s stops at %d; download it in parts (part=1&part_rows=N) or run it as a background job",
		errTooLarge, n, d.Name, d.RowLimit)
}

// estimates says whether a download of d asks its source for an estimate
// of its rows before it starts (checkEstimate).
func (s *Server) estimates(d *exportd.Dataset) bool {
	return d.RowLimit > 0 && s.cfg.EstimateFactor >= 0
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
