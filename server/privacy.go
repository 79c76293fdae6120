package server

// Personal data (issue 8): the purpose of an export, the columns a
// principal may have (masked by role), and the audit trail, applied alike
// on every path that exports a dataset — the direct stream, a signed link
// (the same handler, the purpose carried by the link) and a background job
// (submitted here, masked by its worker, audited on each download).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/encrypt"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/mask"
)

// The request keys of the privacy rules.
const (
	keyPurpose     = "purpose"
	keyPurposeText = "purpose_text"
	keyColumns     = "columns"
	keyPassword    = "password"
)

// privacyRequest is what a request asks of the privacy rules: the stated
// purpose, the columns chosen, and the resulting plan.
type privacyRequest struct {
	purpose audit.Purpose
	want    []string // the columns asked for; nil means all the roles may see
	plan    mask.Plan
	planned bool // plan applies (the dataset declares its columns)
}

// columnNames returns the plan's column names, or nil without a plan.
func (pr *privacyRequest) columnNames() []string {
	if pr == nil || !pr.planned {
		return nil
	}
	return pr.plan.Names()
}

// wrap returns newWriter with the plan applied (masking before the format
// writer), or newWriter itself without a plan.
func (pr *privacyRequest) wrap(newWriter func(io.Writer, []exportd.Column) (exportd.RowWriter, error)) func(io.Writer, []exportd.Column) (exportd.RowWriter, error) {
	if pr == nil || !pr.planned {
		return newWriter
	}
	return pr.plan.NewWriter(newWriter)
}

// policies returns the masking policy of every dataset, by name.
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

// principalRoles returns the roles of ctx's principal (nil without one: a
// server without access control sees no personal column, as a Policy
// fails closed).
func principalRoles(ctx context.Context) []string {
	if p := auth.From(ctx); p != nil {
		return p.Roles
	}
	return nil
}

// takePrivacy removes the privacy keys (purpose, purpose_text, columns)
// from q and checks them for d and ctx's principal: a personal dataset
// needs a purpose (400 naming purpose or purpose_text; a signed link's
// purpose, which the host application collected, takes precedence); the
// columns asked for must exist (400) and be visible to the principal's
// roles (403 naming columns). A password in the query string is refused
// (it would be logged by every proxy).
func (s *Server) takePrivacy(ctx context.Context, d *exportd.Dataset, q url.Values) (*privacyRequest, error) {
	pr := &privacyRequest{purpose: audit.Purpose{Category: strings.TrimSpace(q.Get(keyPurpose)), Text: strings.TrimSpace(q.Get(keyPurposeText))}}
	if p := auth.From(ctx); p != nil && p.Link != nil && (p.Link.Purpose != "" || p.Link.PurposeText != "") {
		pr.purpose = audit.Purpose{Category: strings.TrimSpace(p.Link.Purpose), Text: strings.TrimSpace(p.Link.PurposeText)}
	}
	cols, hasCols := q[keyColumns]
	delete(q, keyPurpose)
	delete(q, keyPurposeText)
	delete(q, keyColumns)
	if d.Personal {
		if err := s.cfg.Datasets.Privacy.CheckPurpose(pr.purpose.Category, pr.purpose.Text); err != nil {
			var pe *exportd.PurposeError
			errors.As(err, &pe)
			return pr, &Error{Status: http.StatusBadRequest, Code: "bad_purpose", Field: pe.Field, Message: pe.Reason}
		}
	}
	if hasCols {
		pr.want = []string{}
		for _, c := range cols {
			for name := range strings.SplitSeq(c, ",") {
				if name = strings.TrimSpace(name); name != "" {
					pr.want = append(pr.want, name)
				}
			}
		}
		if len(d.Columns) == 0 {
			return pr, &Error{Status: http.StatusBadRequest, Code: "bad_parameter", Field: keyColumns,
				Message: "columns= needs a dataset that declares its columns; " + d.Name + " does not"}
		}
		if len(pr.want) == 0 {
			return pr, &Error{Status: http.StatusBadRequest, Code: "bad_parameter", Field: keyColumns, Message: "no column chosen"}
		}
	}
	if len(d.Columns) == 0 {
		return pr, nil
	}
	plan, err := s.policies[d.Name].Plan(principalRoles(ctx), d.Columns, pr.want)
	if err != nil {
		return pr, columnError(err)
	}
	pr.plan, pr.planned = plan, true
	return pr, nil
}

// columnError maps an error of mask.Policy.Plan to an API error.
func columnError(err error) error {
	switch {
	case errors.Is(err, mask.ErrUnknownColumn):
		return &Error{Status: http.StatusBadRequest, Code: "unknown_column", Field: keyColumns, Message: err.Error()}
	case errors.Is(err, mask.ErrForbiddenColumn):
		return &Error{Status: http.StatusForbidden, Code: "forbidden_column", Field: keyColumns, Message: err.Error()}
	}
	return &Error{Status: http.StatusBadRequest, Code: "bad_parameter", Field: keyColumns, Message: err.Error()}
}

// auditRecord starts the audit record of an export of d by r's principal.
func (s *Server) auditRecord(r *http.Request, d string, f exportd.Format, params any) *audit.Record {
	rec := &audit.Record{Principal: AnonymousPrincipal, Client: remoteIP(r, s.cfg.TrustedProxies), Dataset: d, Format: string(f)}
	if p := auth.From(r.Context()); p != nil {
		rec.Principal, rec.Roles = p.Name, p.Roles
	}
	if params != nil {
		if b, err := json.Marshal(params); err == nil {
			rec.Params = b
		}
	}
	return rec
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
		s.log.Error("audit append failed: the export is NOT in the audit trail", "dataset", rec.Dataset,
			"principal", rec.Principal, "outcome", string(rec.Outcome), "error", err.Error())
	}
}

// auditDenied records a refused export of a personal dataset.
func (s *Server) auditDenied(r *http.Request, d *exportd.Dataset, f exportd.Format, params any, pr *privacyRequest, err error) {
	if d == nil || !d.Personal {
		return
	}
	rec := s.auditRecord(r, d.Name, f, params)
	rec.Outcome, rec.Error = audit.OutcomeDenied, fmt.Sprintf("%d %s", toError(err).Status, err.Error())
	if pr != nil {
		rec.Purpose, rec.Columns = pr.purpose, pr.want
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
	d, found := s.cfg.Datasets.Dataset(name)
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
	if b, err := json.Marshal(params); err == nil {
		rec.Params = b
	}
	rec.Outcome, rec.Error = audit.OutcomeDenied, fmt.Sprintf("%d %s", toError(err).Status, err.Error())
	s.appendAudit(r.Context(), rec)
}

// digestWriter is an audit.Digest safe for the XLSX writer's goroutine
// and the export's flushes.
type digestWriter struct {
	mu sync.Mutex
	d  *audit.Digest
}

func (w *digestWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.d.Write(p)
}

func (w *digestWriter) sum() (string, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.d.Sum(), w.d.N()
}

// minPasswordLength is the shortest password a user may type for a
// password-protected workbook.
const minPasswordLength = 8

// PasswordHeader carries a generated password (password=generate), shown
// once: it is neither stored nor logged.
const PasswordHeader = "X-Exportd-Password"

// personalDownload handles the privacy rules of a job's download and
// reports whether it has answered the request. A personal dataset's
// download is audited (the digest of the stored file, which the job
// recorded, on each download). A password-protected workbook (POST with a
// password) is encrypted here, from the finished result, into a temporary
// file, then sent with Content-Length.
//
// Why encrypted workbooks are background jobs only: the compound file's
// header holds the package's size, so nothing can be sent before the
// whole workbook is built, and a direct download would leave the proxy
// silent for as long as the query runs (504). As a job, the slow part
// (the query) runs off the request; the download then only reads a
// finished file and encrypts it at disk and AES speed (a 1M-row workbook
// in about a second), far inside any proxy timeout. The password is typed
// at download (never in the queue or the storage), or generated and shown
// once in the X-Exportd-Password header.
func (s *Server) personalDownload(w http.ResponseWriter, r *http.Request, res *jobs.Result) bool {
	d, ok := s.cfg.Datasets.Dataset(res.Job.Dataset)
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
		return refuse(&Error{Status: http.StatusBadRequest, Code: "bad_parameter", Field: keyPassword,
			Message: "this download is not offered with a password (the dataset's encryption: is not set, or the file is not XLSX)"})
	case !post && offered && d.Encryption == exportd.EncryptionRequired:
		return refuse(&Error{Status: http.StatusConflict, Code: "encryption_required", Field: keyPassword,
			Message: d.Name + " is downloaded as a password-protected workbook only: POST the password (or password=generate) to this URL"})
	case !post:
		if d.Personal && r.Method == http.MethodGet {
			rec.SHA256, rec.Bytes, rec.Outcome = res.Job.SHA256, res.Size(), audit.OutcomeOK
			s.appendAudit(r.Context(), rec)
		}
		return false
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
	dir := s.cfg.TempDir
	tmp, err := os.CreateTemp(dir, "exportd-encrypted-*.xlsx")
	if err != nil {
		return refuse(err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	ew, err := encrypt.NewWriter(tmp, password)
	password = ""
	if err != nil {
		return refuse(err)
	}
	if _, err := io.Copy(ew, res); err != nil {
		ew.Close()
		return refuse(fmt.Errorf("encrypt: %w", err))
	}
	if err := ew.Close(); err != nil {
		return refuse(fmt.Errorf("encrypt: %w", err))
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return refuse(err)
	}
	h := w.Header()
	h.Set("Content-Type", f.ContentType())
	h.Set("Content-Disposition", contentDisposition(res.Job.FileName))
	h.Set("Content-Length", strconv.FormatInt(ew.Size(), 10))
	h.Set("Cache-Control", "no-store")
	if shown != "" {
		h.Set(PasswordHeader, shown)
	}
	// The record is appended before the last byte leaves, so that no
	// client holds a complete file the trail does not show; a failure to
	// send that byte is recorded after it.
	rec.Format = string(f) + "+password"
	h256 := sha256.New()
	size := ew.Size()
	n, err := io.CopyN(io.MultiWriter(w, h256), tmp, size-1)
	var last [1]byte
	if err == nil {
		_, err = io.ReadFull(tmp, last[:])
		h256.Write(last[:])
		n++
	}
	rec.SHA256, rec.Bytes, rec.Outcome = hex.EncodeToString(h256.Sum(nil)), n, audit.OutcomeOf(err)
	if err != nil {
		rec.Error = err.Error()
	}
	s.appendAudit(r.Context(), rec)
	if err == nil {
		if _, err := w.Write(last[:]); err != nil {
			fail := *rec
			fail.Time, fail.Seq, fail.MAC, fail.PrevMAC, fail.KeyID = time.Time{}, 0, nil, nil, ""
			fail.Outcome, fail.Error, fail.Bytes = audit.OutcomeFailed, "the last byte was not sent: "+err.Error(), size-1
			s.appendAudit(r.Context(), &fail)
		}
	}
	return true
}

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
			return "", &Error{Status: http.StatusBadRequest, Code: "bad_parameter", Field: keyPassword,
				Message: "never put a password in a URL (proxies log them): send it in the body"}
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
	if pol := s.policies[d.Name]; pol != nil && len(d.Columns) > 0 {
		if plan, err := pol.Plan(res.Job.Roles(), d.Columns, res.Job.Columns); err == nil {
			rec.Columns = plan.Names()
		}
	}
	return rec
}
