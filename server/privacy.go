package server

// Personal data: the request's purpose and choice of columns, handed to
// the export's plan (package plan), which applies the rules alike on every
// path — the direct stream, a signed link (the same handler, the purpose
// carried by the link) and a background job (submitted here, run by its
// worker); the refusals and a job's downloads are audited here.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/encrypt"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/mask"
	"github.com/exportd/exportd/plan"
)

// The request keys of the privacy rules.
const (
	keyPurpose     = "purpose"
	keyPurposeText = "purpose_text"
	keyColumns     = "columns"
	keySheet       = "sheet"
	keyPassword    = "password"
)

// planRequest turns the query q of a request for an export in format f
// into the plan's request: the privacy keys (purpose, purpose_text,
// columns) are taken out of q, and what remains are the dataset's
// parameters; the principal is r's. A signed link's purpose, which the
// host application collected, takes precedence over the query's.
func (s *Server) planRequest(r *http.Request, f exportd.Format, q url.Values) plan.Request {
	req := plan.Request{Format: f, Principal: s.planPrincipal(r),
		Purpose: audit.Purpose{Category: strings.TrimSpace(q.Get(keyPurpose)), Text: strings.TrimSpace(q.Get(keyPurposeText))}}
	if p := auth.From(r.Context()); p != nil && p.Link != nil && (p.Link.Purpose != "" || p.Link.PurposeText != "") {
		req.Purpose = audit.Purpose{Category: strings.TrimSpace(p.Link.Purpose), Text: strings.TrimSpace(p.Link.PurposeText)}
	}
	if cols, ok := q[keyColumns]; ok {
		req.Columns = []string{}
		for _, c := range cols {
			for name := range strings.SplitSeq(c, ",") {
				if name = strings.TrimSpace(name); name != "" {
					req.Columns = append(req.Columns, name)
				}
			}
		}
	}
	// sheet= is repeated for several sheets (a sheet's name may hold a comma).
	if sheets, ok := q[keySheet]; ok {
		req.Sheets = []string{}
		for _, name := range sheets {
			if name = strings.TrimSpace(name); name != "" {
				req.Sheets = append(req.Sheets, name)
			}
		}
	}
	delete(q, keyPurpose)
	delete(q, keyPurposeText)
	delete(q, keyColumns)
	delete(q, keySheet)
	req.Params = q
	return req
}

// planExport plans the export of d that r asks for with the query q (see
// planRequest), and returns what was asked with it, for the audit record
// of a refusal. A password in q is refused once access is granted: it
// would be logged by every proxy, and stored with a job.
func (s *Server) planExport(r *http.Request, d *exportd.Dataset, f exportd.Format, q url.Values) (*plan.Plan, *plan.Request, error) {
	_, password := q[keyPassword]
	delete(q, keyPassword)
	req := s.planRequest(r, f, q)
	p, err := plan.New(s.conf(r).cfg, d.Name, req)
	if err == nil && password {
		err = badParameter(keyPassword, "never put a password in a URL or a job's parameters (proxies log them, the job would store it): "+
			"a password-protected workbook is a background job's, and its password is sent in the body of POST /v1/jobs/{id}/download")
	}
	if err != nil {
		return nil, &req, err
	}
	return p, &req, nil
}

// planPrincipal returns the plan's principal for r: its name as jobs and
// the audit trail know it, roles and attributes, and the client's
// address. Access rules apply when the server has access control.
func (s *Server) planPrincipal(r *http.Request) plan.Principal {
	pr := plan.Principal{Name: s.cfg.Principal(r), Client: remoteIP(r, s.cfg.TrustedProxies)}
	if p := auth.From(r.Context()); p != nil {
		pr.Roles, pr.Attrs, pr.Enforce = p.Roles, p.Attrs, true
	}
	return pr
}

// policies returns the masking policy of every dataset, by name: the UI's
// form shows the columns a principal may choose, and a job's download
// record names the columns of its file.
func policies(cfg *exportd.Config) (map[string]*mask.Policy, error) {
	out := map[string]*mask.Policy{}
	for _, d := range cfg.Datasets {
		p, err := mask.PolicyFor(d)
		if err != nil {
			return nil, err
		}
		out[d.Name] = p
	}
	return out, nil
}

// auditRecord starts the audit record of an export of d by r's principal.
func (s *Server) auditRecord(r *http.Request, d string, f exportd.Format, params any) *audit.Record {
	rec := &audit.Record{Principal: AnonymousPrincipal, Client: remoteIP(r, s.cfg.TrustedProxies), Dataset: d, Format: string(f)}
	if p := auth.From(r.Context()); p != nil {
		// Who, with where the identity comes from (token:kim is not
		// header:kim), as jobs and the export's plan record it.
		rec.Principal, rec.Roles = p.ID(), p.Roles
	}
	if m, ok := params.(map[string]string); ok {
		params = redactPassword(m)
	}
	if params != nil {
		if b, err := json.Marshal(params); err == nil {
			rec.Params = b
		}
	}
	return rec
}

// redacted stands for a password sent where none belongs (a job's
// parameters, a query string): the trail and its log show that one was
// sent, never what it was.
const redacted = "(redacted)"

// redactPassword returns params with the value of a password key
// replaced (a copy; params itself when it has none).
func redactPassword(params map[string]string) map[string]string {
	if _, ok := params[keyPassword]; !ok {
		return params
	}
	out := make(map[string]string, len(params))
	for k, v := range params {
		out[k] = v
	}
	out[keyPassword] = redacted
	return out
}

// appendAudit appends rec to the trail; a failure is logged (the export
// has happened or been refused either way) and counted.
func (s *Server) appendAudit(ctx context.Context, rec *audit.Record) {
	if s.cfg.Audit == nil {
		return
	}
	// The record is appended even when the client has gone.
	ctx = context.WithoutCancel(ctx)
	if err := s.cfg.Audit.Append(ctx, rec); err != nil {
		s.metrics.auditErrors.Inc()
		msg := "audit append failed: the export is NOT in the audit trail"
		if errors.Is(err, audit.ErrNotLogged) {
			msg = "audit log line not written: the record is in the trail, but not in its log"
		}
		s.log.Error(msg, "dataset", rec.Dataset, "principal", rec.Principal, "outcome", string(rec.Outcome),
			"seq", rec.Seq, "error", err.Error())
	}
}

// auditor returns the trail for a plan's run (nil without one).
func (s *Server) auditor() plan.Auditor {
	if s.cfg.Audit == nil {
		return nil
	}
	return s.cfg.Audit
}

// auditFailed reports an export whose outcome could not be recorded.
func (s *Server) auditFailed(dataset, principal string, err error) {
	s.metrics.auditErrors.Inc()
	msg := "audit outcome not recorded: the trail shows the export as started without an outcome"
	if errors.Is(err, audit.ErrNotLogged) {
		msg = "audit log line not written: the record is in the trail, but not in its log"
	}
	s.log.Error(msg, "dataset", dataset, "principal", principal, "error", err.Error())
}

// auditDenied records a refused export of a personal dataset, with what
// the request asked (its purpose and columns) when it got that far.
func (s *Server) auditDenied(r *http.Request, d *exportd.Dataset, f exportd.Format, params any, req *plan.Request, err error) {
	if d == nil || !d.Personal {
		return
	}
	rec := s.auditRecord(r, d.Name, f, params)
	rec.Outcome, rec.Error = audit.OutcomeDenied, fmt.Sprintf("%d %s", toError(err).Status, err.Error())
	if req != nil {
		rec.Purpose, rec.Columns = req.Purpose, req.Columns
		if pu := (*exportd.PurposeError)(nil); errors.As(err, &pu) {
			rec.Columns = nil // refused before the columns were read
		}
	}
	s.appendAudit(r.Context(), rec)
}

// auditDeniedPath records a request refused before its handler (by
// authentication: no or a bad credential, a tampered or expired signed
// link) when it named the export of a personal dataset.
func (s *Server) auditDeniedPath(r *http.Request, err error) {
	name, ext, ok := exportPath(r.URL.Path)
	if !ok {
		return
	}
	d, found := s.conf(r).cfg.Dataset(name)
	if !found || !d.Personal {
		return
	}
	q := r.URL.Query()
	rec := s.auditRecord(r, d.Name, exportd.Format(ext), nil)
	if sub := q.Get(auth.LinkSub); sub != "" {
		rec.Principal = "" // the link's claim is not proven
		err = fmt.Errorf("%w (the link names %q)", err, sub)
	}
	rec.Purpose = audit.Purpose{Category: q.Get(auth.LinkPurpose) + q.Get(keyPurpose), Text: q.Get(auth.LinkPurposeText) + q.Get(keyPurposeText)}
	if c := q.Get(keyColumns); c != "" {
		rec.Columns = strings.Split(c, ",")
	}
	params := map[string]string{}
	for k, v := range q {
		if !strings.HasPrefix(k, "link.") && k != keyPurpose && k != keyPurposeText && k != keyColumns {
			params[k] = strings.Join(v, ",")
		}
	}
	if b, err := json.Marshal(redactPassword(params)); err == nil {
		rec.Params = b
	}
	rec.Outcome, rec.Error = audit.OutcomeDenied, fmt.Sprintf("%d %s", toError(err).Status, err.Error())
	s.appendAudit(r.Context(), rec)
}

// minPasswordLength is the shortest password a user may type for a
// password-protected workbook.
const minPasswordLength = 8

// PasswordHeader carries a generated password (password=generate), shown
// once: it is neither stored nor logged.
const PasswordHeader = "X-Exportd-Password"

// personalDownload handles the privacy rules of a job's download and
// reports whether it has answered the request: a refusal (audited for a
// personal dataset), or a password-protected workbook (POST with a
// password), encrypted from the finished result as it is sent
// (encrypt.Encrypt: the result's size gives every size in the file, so the
// header, Content-Length and the first bytes leave at once, then the
// segments as they are encrypted, without a temporary file) and audited
// with the digest of the encrypted bytes sent. Any other download is left
// to serveJobResult.
//
// Why encrypted workbooks are background jobs only: the compound file's
// header holds the package's size, so nothing can be sent before the
// whole workbook is built, and a direct download would leave the proxy
// silent for as long as the query runs (504). As a job, the slow part
// (the query) runs off the request; the download then only reads a
// finished file of known size and encrypts it at disk and AES speed,
// sending as it goes. The password is typed at download (never in the
// queue or the storage), or generated and shown once in the
// X-Exportd-Password header.
func (s *Server) personalDownload(w http.ResponseWriter, r *http.Request, res *jobs.Result) bool {
	d, ok := s.conf(r).cfg.Dataset(res.Job.Dataset)
	if !ok {
		return false
	}
	f := exportd.Format(res.Job.Format)
	offered := f == exportd.FormatXLSX && d.Encryption != ""
	post := r.Method == http.MethodPost
	rec := s.jobRecord(r, d, res)
	refuse := func(err error) bool {
		if d.Personal {
			rec.Outcome, rec.Error = audit.OutcomeDenied, fmt.Sprintf("%d %s", toError(err).Status, err.Error())
			s.appendAudit(r.Context(), rec)
		}
		s.writeError(w, r, err)
		return true
	}
	switch {
	case post && !offered:
		return refuse(badParameter(keyPassword, "this download is not offered with a password (the dataset's encryption: is not set, or the file is not XLSX)"))
	case !post && offered && d.Encryption == exportd.EncryptionRequired:
		return refuse(&Error{Status: http.StatusConflict, Code: "encryption_required", Field: keyPassword,
			Message: d.Name + " is downloaded as a password-protected workbook only: POST the password (or password=generate) to this URL"})
	case !post:
		return false // served, and audited as sent, by serveJobResult
	}

	password, err := postedPassword(r)
	if err != nil {
		return refuse(err)
	}
	shown := "" // a generated password, sent once in the response
	if password == "generate" {
		password = encrypt.GeneratePassword()
		shown = password
	}
	size := encrypt.EncryptedSize(res.Size())
	if size < 0 {
		return refuse(encrypt.ErrTooLarge)
	}
	h := w.Header()
	h.Set("Content-Type", f.ContentType())
	h.Set("Content-Disposition", contentDisposition(res.Job.FileName))
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("Cache-Control", "no-store")
	if shown != "" {
		h.Set(PasswordHeader, shown)
	}
	// Audited as sent (see sentWriter): the record is appended before the
	// last byte leaves.
	rec.Format = string(f) + "+password"
	sw := newSentWriter(w, func(sw *sentWriter) {
		rec.Outcome = audit.OutcomeOK
		rec.SHA256, rec.Bytes = sw.sum(), sw.n
		s.appendAudit(r.Context(), rec)
	})
	_, err = encrypt.Encrypt(sw, res, res.Size(), password)
	password = ""
	if err != nil && sw.status == 0 {
		// Refused before a byte was written (the password): the
		// response is still an error's to make.
		for _, k := range []string{"Content-Type", "Content-Disposition", "Content-Length", "Cache-Control", PasswordHeader} {
			h.Del(k)
		}
		return refuse(err)
	}
	if err != nil && sw.err == nil {
		sw.err = err // reading the stored result
	}
	s.auditSendFailure(w, r, sw, rec)
	return true
}

// serveJobResult sends a job's result with http.ServeContent (Range,
// If-Range, ETag, Last-Modified). A GET of a personal dataset's result is
// audited with what the response carried, not what is stored:
//
//   - the whole file: outcome ok, its size and digest;
//   - a range (206, a resumed download): outcome partial, the bytes and
//     digest of the response body, with the range ("bytes 100-199/1234", or
//     the Range header of several ranges) and the stored file's digest in
//     the record's parameters (range, file_sha256);
//   - cut short (the client left, storage failed): outcome failed, with the
//     count and digest of the bytes that left;
//   - no file at all (304, 412, 416): outcome failed, nothing sent.
//
// As for a password-protected download, the record of a complete response
// is appended before its last byte leaves, so that no client holds a
// complete response the trail does not show.
func (s *Server) serveJobResult(w http.ResponseWriter, r *http.Request, res *jobs.Result) {
	d, ok := s.conf(r).cfg.Dataset(res.Job.Dataset)
	if !ok || !d.Personal || r.Method != http.MethodGet || s.cfg.Audit == nil {
		http.ServeContent(w, r, "", res.ModTime(), res)
		return
	}
	rec := s.jobRecord(r, d, res)
	rec.Time = time.Now()
	describe := func(sw *sentWriter) {
		rec.SHA256, rec.Bytes, rec.Outcome = sw.sum(), sw.n, audit.OutcomeOK
		if sw.status == http.StatusPartialContent {
			rng := sw.Header().Get("Content-Range")
			if rng == "" {
				rng = r.Header.Get("Range") // several ranges: multipart/byteranges
			}
			setParams(rec, "range", rng, "file_sha256", res.Job.SHA256)
			rec.Outcome = audit.OutcomePartial
		}
	}
	sw := newSentWriter(w, func(sw *sentWriter) {
		describe(sw)
		s.appendAudit(r.Context(), rec)
	})
	http.ServeContent(sw, r, "", res.ModTime(), res)
	switch {
	case sw.held:
		s.auditSendFailure(w, r, sw, rec)
	case sw.status != http.StatusOK && sw.status != http.StatusPartialContent:
		rec.Outcome = audit.OutcomeFailed
		rec.Error = fmt.Sprintf("%d %s: the file was not sent", sw.status, http.StatusText(sw.status))
		s.appendAudit(r.Context(), rec)
	case sw.n == sw.size:
		describe(sw) // an empty body, or one of unknown length
		s.appendAudit(r.Context(), rec)
	default:
		describe(sw)
		rec.Outcome, rec.Error = audit.OutcomeFailed, sw.cutShort()
		s.appendAudit(r.Context(), rec)
	}
}

// auditSendFailure finishes the audit of a response sent through sw whose
// record (rec) the hold-back appended, or was to append: when the response
// failed before its last byte, rec is appended now as failed with the
// bytes that left; when it failed at the last byte, or the response could
// not be flushed to the client, a second record says so.
func (s *Server) auditSendFailure(w http.ResponseWriter, r *http.Request, sw *sentWriter, rec *audit.Record) {
	if !sw.held {
		rec.SHA256, rec.Bytes = sw.sum(), sw.n
		rec.Outcome, rec.Error = audit.OutcomeFailed, sw.cutShort()
		s.appendAudit(r.Context(), rec)
		return
	}
	why := ""
	if sw.err != nil {
		why = "the last byte was not sent: " + sw.err.Error()
	} else if err := http.NewResponseController(w).Flush(); err != nil {
		why = "the response did not reach the client: " + err.Error()
	}
	if why == "" {
		return
	}
	fail := *rec
	fail.Time, fail.Seq, fail.MAC, fail.PrevMAC, fail.KeyID = time.Time{}, 0, nil, nil, ""
	fail.Outcome, fail.Error = audit.OutcomeFailed, why
	if sw.err != nil {
		fail.SHA256, fail.Bytes = sw.before, sw.n
	}
	s.appendAudit(r.Context(), &fail)
}

// setParams adds key-value pairs to rec's parameters (a JSON object of
// strings).
func setParams(rec *audit.Record, kv ...string) {
	m := map[string]string{}
	json.Unmarshal(rec.Params, &m)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	if b, err := json.Marshal(m); err == nil {
		rec.Params = b
	}
}

// sentWriter is the ResponseWriter of an audited download: it counts and
// hashes the body bytes the ResponseWriter accepted (the exact bytes sent),
// and, when the body's length is known (Content-Length), holds back its
// last byte until beforeLast has run with the count and digest the body
// has once that byte is sent: the audit record of a complete response is
// in the trail before the client has all of it.
type sentWriter struct {
	http.ResponseWriter
	beforeLast func(*sentWriter) // called once, before the last byte of a body of known length

	status int       // the response's status; 0 before WriteHeader
	size   int64     // the body's length (Content-Length); -1 when unknown
	n      int64     // body bytes accepted (with held: the last byte included)
	h      hash.Hash // SHA-256 of those bytes
	held   bool      // beforeLast has run
	before string    // with held: the digest without the last byte
	err    error     // the first error sending the body
}

func newSentWriter(w http.ResponseWriter, beforeLast func(*sentWriter)) *sentWriter {
	return &sentWriter{ResponseWriter: w, beforeLast: beforeLast, size: -1, h: sha256.New()}
}

// WriteHeader notes the status and the body's length.
func (w *sentWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		if v, err := strconv.ParseInt(w.Header().Get("Content-Length"), 10, 64); err == nil {
			w.size = v
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write writes p, holding back the body's last byte until beforeLast has
// run.
func (w *sentWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	k := w.size - 1 - w.n // bytes before the last one
	if w.held || w.size <= 0 || k < 0 || k >= int64(len(p)) {
		return w.write(p)
	}
	n, err := w.write(p[:k])
	if err != nil {
		return n, err
	}
	w.before = w.sum()
	w.h.Write(p[k : k+1])
	w.n++
	w.held = true
	w.beforeLast(w)
	if _, err := w.ResponseWriter.Write(p[k : k+1]); err != nil {
		w.n--
		w.err = err
		return n, err
	}
	if rest := p[k+1:]; len(rest) > 0 { // beyond Content-Length: net/http refuses it
		m, err := w.write(rest)
		return n + 1 + m, err
	}
	return n + 1, nil
}

func (w *sentWriter) write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// sum returns the hex SHA-256 of the body bytes sent; empty when none were.
func (w *sentWriter) sum() string {
	if w.n == 0 {
		return ""
	}
	return hex.EncodeToString(w.h.Sum(nil))
}

// cutShort describes a body that did not leave in full.
func (w *sentWriter) cutShort() string {
	msg := fmt.Sprintf("cut short: %d of %d bytes sent", w.n, w.size)
	if w.err != nil {
		msg += ": " + w.err.Error()
	}
	return msg
}

// Unwrap returns the ResponseWriter (for http.ResponseController).
func (w *sentWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// postedPassword reads the password of a POST: the form field password or
// the JSON body {"password": "…"}; "generate" asks for one.
func postedPassword(r *http.Request) (string, error) {
	var pw string
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/json" {
		var body struct {
			Password string `json:"password"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err != nil {
			return "", &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: "malformed JSON body"}
		}
		pw = body.Password
	} else {
		r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
		if r.URL.Query().Has(keyPassword) {
			return "", badParameter(keyPassword, "never put a password in a URL (proxies log them): send it in the body")
		}
		pw = r.PostFormValue(keyPassword)
	}
	if pw != "generate" && utf8.RuneCountInString(pw) < minPasswordLength {
		return "", &Error{Status: http.StatusBadRequest, Code: "bad_password", Field: keyPassword,
			Message: fmt.Sprintf("type a password of at least %d characters, or password=generate", minPasswordLength)}
	}
	return pw, nil
}

// jobRecord starts the audit record of a download of a job's result.
func (s *Server) jobRecord(r *http.Request, d *exportd.Dataset, res *jobs.Result) *audit.Record {
	params := map[string]string{"job": res.Job.ID}
	for k, v := range res.Job.Params {
		params[k] = strings.Join(v, ",")
	}
	rec := s.auditRecord(r, d.Name, exportd.Format(res.Job.Format), params)
	if auth.From(r.Context()) == nil {
		// a signed download link: the job's owner, who submitted it
		rec.Principal, rec.Roles = res.Job.Owner(), res.Job.Roles()
	}
	rec.Rows = res.Job.Rows
	rec.Purpose = audit.Purpose{Category: res.Job.Purpose, Text: res.Job.PurposeText}
	if pol := s.conf(r).policies[d.Name]; pol != nil && len(d.Columns) > 0 {
		if plan, err := pol.Plan(res.Job.Roles(), d.Columns, res.Job.Columns); err == nil {
			rec.Columns = plan.Names()
		}
	}
	return rec
}
