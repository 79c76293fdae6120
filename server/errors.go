package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/mask"
	"github.com/exportd/exportd/plan"
)

// Error is an API error: the JSON body of every answer that is not a
// success, {"error": {...}}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`            // machine-readable, e.g. "bad_parameter"
	Message string `json:"message"`         // for people
	Field   string `json:"field,omitempty"` // the parameter or path field at fault
	// Details lists every field at fault when there are several.
	Details []FieldError `json:"details,omitempty"`
	// Suggest names what to do instead: "job" (run the export as a
	// background job) or "retry".
	Suggest    string        `json:"suggest,omitempty"`
	RetryAfter time.Duration `json:"-"`
	// Quota describes the job quota reached (code job_quota).
	Quota *QuotaDetail `json:"quota,omitempty"`
}

// QuotaDetail names a job quota, what counts against it and when it frees.
type QuotaDetail struct {
	Name   string `json:"name"` // jobs or bytes
	Limit  int64  `json:"limit"`
	Used   int64  `json:"used"`
	Counts string `json:"counts"`
	// FreesAt is when the quota frees; absent when it frees as one of the
	// principal's jobs ends.
	FreesAt *time.Time `json:"frees_at,omitempty"`
}

// FieldError is one field at fault.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Sentinels the handlers return; toError maps them to statuses.
var (
	errUnknownFormat = errors.New("unknown format")
	errBusy          = errors.New("too many exports")
	errTooLarge      = errors.New("too many rows for a direct download")
)

// toError maps any error to the API error answered for it. It is the one
// place where errors become HTTP statuses.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if e := authError(err); e != nil {
		return e
	}
	if e := jobError(err); e != nil {
		return e
	}
	if e := fieldError(err); e != nil {
		return e
	}
	switch {
	case errors.Is(err, exportd.ErrUnknownDataset):
		return &Error{Status: http.StatusNotFound, Code: "unknown_dataset", Message: err.Error(), Field: "name"}
	case errors.Is(err, mask.ErrUnknownColumn):
		return &Error{Status: http.StatusBadRequest, Code: "unknown_column", Field: keyColumns, Message: err.Error()}
	case errors.Is(err, mask.ErrForbiddenColumn):
		return &Error{Status: http.StatusForbidden, Code: "forbidden_column", Field: keyColumns, Message: err.Error()}
	case errors.Is(err, plan.ErrAuditUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: "audit_unavailable", Suggest: "retry", Message: err.Error()}
	case errors.Is(err, errUnknownFormat):
		return &Error{Status: http.StatusBadRequest, Code: "unknown_format", Field: "format", Message: err.Error()}
	case errors.Is(err, errBusy):
		return &Error{Status: http.StatusServiceUnavailable, Code: "too_many_exports", Suggest: "job", Message: err.Error()}
	case errors.Is(err, errTooLarge), errors.Is(err, exportd.ErrRowLimit):
		return &Error{Status: http.StatusConflict, Code: "row_limit", Suggest: "job", Message: err.Error()}
	case errors.Is(err, exportd.ErrQueryTimeout), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusGatewayTimeout, Code: "timeout", Message: err.Error()}
	case errors.Is(err, errShutdown):
		return &Error{Status: http.StatusServiceUnavailable, Code: "shutting_down", Suggest: "retry", Message: err.Error()}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: err.Error()}
}

// badParameter is the answer to a request field at fault (400
// bad_parameter naming it).
func badParameter(field, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "bad_parameter", Field: field, Message: msg}
}

// fieldError maps the errors of a request's fields (*exportd.ParamError,
// *exportd.PurposeError, joined when there are several) to one 400 that
// names the first field and lists every one in Details; nil when err
// names no field.
func fieldError(err error) *Error {
	var fields []FieldError
	code, joined := "", false
	var walk func(error)
	walk = func(err error) {
		var pe *exportd.ParamError
		var pu *exportd.PurposeError
		switch {
		case err == nil:
		case errors.As(err, &pu) && pu == err:
			fields = append(fields, FieldError{Field: pu.Field, Message: pu.Reason})
			if code == "" {
				code = "bad_purpose"
			}
		case errors.As(err, &pe) && pe == err:
			fields = append(fields, FieldError{Field: pe.Param, Message: pe.Reason})
			if code == "" {
				code = "bad_parameter"
			}
		default:
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				joined = true
				for _, e := range j.Unwrap() {
					walk(e)
				}
				return
			}
			if next := errors.Unwrap(err); next != nil {
				walk(next)
			}
		}
	}
	walk(err)
	if len(fields) == 0 {
		return nil
	}
	out := &Error{Status: http.StatusBadRequest, Code: code, Field: fields[0].Field, Message: err.Error()}
	if joined {
		out.Details = fields
	}
	if len(fields) == 1 && code == "bad_purpose" {
		out.Message = fields[0].Message
	}
	return out
}

// writeError answers err as JSON. It must be called before anything of
// the response was written.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toError(err)
	h := w.Header()
	for _, k := range []string{"Content-Disposition", "Content-Encoding", "Vary"} {
		h.Del(k)
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="exportd"`)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	w.WriteHeader(e.Status)
	if r.Method == http.MethodHead {
		return
	}
	json.NewEncoder(w).Encode(struct {
		Error *Error `json:"error"`
	}{e})
}

// writeJSON answers v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// authError maps the errors of access control to API errors (see toError).
func authError(err error) *Error {
	var pe *exportd.PinError
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		return &Error{Status: http.StatusUnauthorized, Code: "unauthenticated", Message: err.Error() +
			" (send Authorization: Bearer TOKEN, or sign in through the proxy)"}
	case errors.Is(err, auth.ErrLinkExpired):
		return &Error{Status: http.StatusForbidden, Code: "link_expired", Message: err.Error()}
	case errors.Is(err, auth.ErrBadLink):
		return &Error{Status: http.StatusForbidden, Code: "bad_link", Message: err.Error()}
	case errors.Is(err, auth.ErrForbidden):
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: err.Error()}
	case errors.As(err, &pe):
		return &Error{Status: http.StatusForbidden, Code: "pinned_parameter", Field: pe.Param, Message: err.Error()}
	}
	return nil
}

// jobError maps the errors of background jobs to API errors, or returns
// nil.
func jobError(err error) *Error {
	var qe *jobs.QuotaError
	switch {
	case errors.As(err, &qe):
		e := &Error{Status: http.StatusTooManyRequests, Code: "job_quota", Field: qe.Quota, Message: err.Error(),
			Quota: &QuotaDetail{Name: qe.Quota, Limit: qe.Limit, Used: qe.Used, Counts: qe.Counts}}
		if !qe.FreesAt.IsZero() {
			e.Quota.FreesAt = &qe.FreesAt
			e.RetryAfter = max(time.Until(qe.FreesAt), time.Second)
		}
		return e
	case errors.Is(err, jobs.ErrUnknownSchedule):
		return &Error{Status: http.StatusNotFound, Code: "unknown_schedule", Field: "name", Message: err.Error()}
	case errors.Is(err, jobs.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: "unknown_job", Field: "id", Message: err.Error()}
	case errors.Is(err, jobs.ErrNotReady):
		return &Error{Status: http.StatusConflict, Code: "not_ready", Message: err.Error()}
	case errors.Is(err, jobs.ErrExpired):
		return &Error{Status: http.StatusGone, Code: "expired", Message: err.Error()}
	case errors.Is(err, jobs.ErrBadLink):
		return &Error{Status: http.StatusForbidden, Code: "bad_link", Message: err.Error()}
	case errors.Is(err, jobs.ErrLinkExpired):
		return &Error{Status: http.StatusForbidden, Code: "link_expired", Message: err.Error()}
	}
	return nil
}
