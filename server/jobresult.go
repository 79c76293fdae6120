package server

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/encrypt"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/plan"
)

// A job's download: the privacy rules of its result (refusals audited, a
// password-protected workbook encrypted as it is sent) and the audited
// writer that records what was sent.

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
	if len(d.Sheets) > 0 {
		// The file's columns (SHEET.COLUMN) as the worker planned them,
		// and the rows of each sheet.
		if p, err := plan.New(s.conf(r).cfg, d.Name, plan.Request{Format: exportd.Format(res.Job.Format), Params: res.Job.Params,
			Columns: res.Job.Columns, Sheets: res.Job.Sheets, Principal: plan.Principal{Name: res.Job.Owner(), Roles: res.Job.Roles()},
			Purpose: rec.Purpose}); err == nil {
			rec.Columns = p.Columns()
		}
		for _, sh := range res.Job.SheetRows {
			rec.Sheets = append(rec.Sheets, audit.Sheet{Name: sh.Name, Rows: sh.Rows})
		}
	}
	return rec
}
