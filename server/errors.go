package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/exportd/exportd"
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
	if e := authError(err); e != nil { // auth.go
		return e
	}
	var pe *exportd.ParamError
	switch {
	case errors.Is(err, exportd.ErrUnknownDataset):
		return &Error{Status: http.StatusNotFound, Code: "unknown_dataset", Message: err.Error(), Field: "name"}
	case errors.As(err, &pe):
		out := &Error{Status: http.StatusBadRequest, Code: "bad_parameter", Field: pe.Param, Message: pe.Error()}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				if pe, ok := e.(*exportd.ParamError); ok {
					out.Details = append(out.Details, FieldError{Field: pe.Param, Message: pe.Reason})
				}
			}
			if len(out.Details) > 1 {
				out.Message = err.Error()
			}
		}
		return out
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
