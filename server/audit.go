package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/plan"
)

// The audit records the server writes itself: refusals before a plan runs
// and the downloads of personal results (a plan's run records its own).

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

// redacted stands for a password sent where none belongs (a job's
// parameters, a query string): the trail and its log show that one was
// sent, never what it was.
const redacted = "(redacted)"
