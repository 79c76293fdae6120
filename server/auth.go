package server

// Access control: who a request acts for (package auth finds the
// principal), which datasets it may export and with which parameters,
// CSRF protection of the UI's POSTs and the security headers of every
// response.

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/auth"
)

// Public paths need no principal: health and readiness checks for load
// balancers, metrics for the scraper (restrict /metrics by network at the
// proxy if its dataset names are sensitive), the API description and the
// UI's static files.
func isPublic(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics", "/v1/openapi.json":
		return true
	}
	return strings.HasPrefix(path, "/ui/static/")
}

// The security headers of every response.
const (
	contentSecurityPolicy  = "default-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	downloadSecurityPolicy = "default-src 'self'; script-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)

// securityHeaders sets the security headers on every response: no inline
// scripts, no framing, no referrer, no content sniffing.
//
// A download (an export, a job's result) may be framed by the server's
// own pages: the UI starts it in a hidden frame, so that an answer that is
// no file (an error before the first byte) loads there and is shown next
// to the button instead of replacing the page.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if _, _, ok := exportPath(r.URL.Path); ok {
			h.Set("Content-Security-Policy", downloadSecurityPolicy)
			h.Set("X-Frame-Options", "SAMEORIGIN")
		} else {
			h.Set("Content-Security-Policy", contentSecurityPolicy)
			h.Set("X-Frame-Options", "DENY")
		}
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// The CSRF token travels in this header (scripts) or form field (forms).
const (
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf_token"
)

type csrfCtxKey struct{}

// CSRFToken returns the anti-forgery token of r's principal, for a form's
// hidden csrf_token field or a script's X-CSRF-Token header. It is an HMAC
// of the principal under the server's CSRFKey, valid for 24 to 48 hours;
// it is "" for a request that did not pass through a Server's handler.
func CSRFToken(r *http.Request) string {
	f, _ := r.Context().Value(csrfCtxKey{}).(func() string)
	if f == nil {
		return ""
	}
	return f()
}

// csrfOK reports whether r carries its principal's CSRF token in the
// X-CSRF-Token header or the csrf_token form field.
func (s *Server) csrfOK(r *http.Request) bool {
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		got = r.PostFormValue(CSRFField)
	}
	if got != "" && auth.CheckCSRF(s.csrfKey, auth.From(r.Context()), got, time.Now()) {
		return true
	}
	// The UI's double-submit cookie (ui.go: the exportd_csrf cookie, the
	// same value in the header or field) is accepted as well.
	return checkCSRF(r)
}

// needsCSRF reports whether r is a request a foreign page could make with
// the browser's ambient credentials: a state-changing method, with a body
// a form can send without a CORS preflight, from a principal the browser
// proves by itself (proxy headers from a login cookie, or the network).
// Bearer tokens and signed links are never sent by the browser on its own.
func needsCSRF(r *http.Request, p *auth.Principal) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	if p != nil && (p.Via == auth.ViaToken || p.Via == auth.ViaLink) {
		return false
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return true
	}
	return mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data" || mt == "text/plain"
}

// authenticate finds the principal of every request but public ones and
// puts it in the request's context; without one it answers 401. A signed
// link is checked for the export it is presented on (403 when it does not
// match or has expired) and its link.* keys are removed from the query.
// State-changing requests that need it must carry the CSRF token (403).
// Without Config.Auth, requests pass with no principal.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p *auth.Principal
		// A signed job download link is its own credential (jobs.go); a
		// credential presented beside it must hold all the same.
		jobLink := s.cfg.Jobs != nil && isJobLink(r)
		if s.conf(r).auth != nil && jobLink {
			if err := s.presentedToken(r); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		if s.conf(r).auth != nil && !isPublic(r.URL.Path) && !jobLink {
			var err error
			p, err = s.principal(r)
			if err != nil {
				if name, _, ok := exportPath(r.URL.Path); ok {
					s.log.Info("export", "dataset", name, "outcome", toError(err).Code, "status", toError(err).Status,
						"client", remoteIP(r, s.cfg.TrustedProxies), "error", err.Error())
				}
				s.auditDeniedPath(r, err) // privacy.go: a personal dataset's refusal is in the trail
				s.writeError(w, r, err)
				return
			}
		}
		ctx := r.Context()
		if p != nil {
			ctx = auth.WithPrincipal(ctx, p)
		}
		ctx = context.WithValue(ctx, csrfCtxKey{}, func() string { return auth.CSRFToken(s.csrfKey, p, time.Now()) })
		r = r.WithContext(ctx)
		if s.conf(r).auth != nil && needsCSRF(r, p) && !s.csrfOK(r) {
			s.writeError(w, r, &Error{Status: http.StatusForbidden, Code: "csrf", Field: CSRFField,
				Message: "missing or wrong CSRF token: reload the page and try again"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// principal authenticates r, with its signed link when it carries one.
func (s *Server) principal(r *http.Request) (*auth.Principal, error) {
	q := r.URL.Query()
	if !auth.IsLink(q) {
		return s.conf(r).auth.Authenticate(r)
	}
	if err := s.presentedToken(r); err != nil {
		return nil, err
	}
	name, ext, ok := exportPath(r.URL.Path)
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return nil, fmt.Errorf("%w: a signed link is valid only for the export it names", auth.ErrBadLink)
	}
	p, err := s.conf(r).auth.VerifyLink(r, name, ext)
	if err != nil {
		return nil, err
	}
	// The export sees its parameters only; the signature covered them all.
	r.URL.RawQuery = p.Link.Params.Encode()
	return p, nil
}

// presentedToken checks the Authorization header of a request that also
// carries a signed link: a credential that fails (a revoked or unknown
// token) refuses the request, whatever else it carries, so that revoking a
// token is never worked around by a link.
func (s *Server) presentedToken(r *http.Request) error {
	if r.Header.Get("Authorization") == "" {
		return nil
	}
	_, err := s.conf(r).auth.Authenticate(r)
	return err
}

// exportPath returns the dataset and format of an export path
// /v1/datasets/{name}/export.{format}.
func exportPath(path string) (name, format string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/v1/datasets/")
	if !ok {
		return "", "", false
	}
	name, file, ok := strings.Cut(rest, "/")
	if !ok || name == "" || strings.Contains(file, "/") {
		return "", "", false
	}
	format, ok = strings.CutPrefix(file, "export.")
	return name, format, ok && format != ""
}

// PrincipalName returns the identity of r's principal, namespaced by where
// it comes from (auth.Principal.ID: "token:kim" is not "header:kim"), or
// "" when the server has no access control. Jobs belong to this name.
func PrincipalName(r *http.Request) string {
	if p := auth.From(r.Context()); p != nil {
		return p.ID()
	}
	return ""
}

// mayRun reports whether r's principal may see and export d (always, when
// the server has no access control). Pins are checked by authorize.
func mayRun(r *http.Request, d *exportd.Dataset) bool {
	p := auth.From(r.Context())
	return p == nil || d.Allows(p.Roles)
}

// authorize checks that r's principal may see and export d, and fills
// in q the parameters pinned for it: a dataset none of the principal's
// roles may run is refused (403 forbidden), and so is a pinned parameter
// given another value (403 pinned_parameter, naming it). The export's plan
// (package plan) applies the same rules to every export; this is for the
// dataset's description.
func (s *Server) authorize(r *http.Request, d *exportd.Dataset, q url.Values) error {
	p := auth.From(r.Context())
	if p == nil {
		return nil
	}
	if !d.Allows(p.Roles) {
		roles := "no roles"
		if len(p.Roles) > 0 {
			roles = "roles " + strings.Join(p.Roles, ", ")
		}
		return fmt.Errorf("%w: %s (%s) may not export %s; it needs one of the roles %s",
			auth.ErrForbidden, p.Name, roles, d.Name, strings.Join(d.Roles, ", "))
	}
	pins, err := d.PinsFor(p.Roles, p.Attrs)
	if err != nil {
		return err
	}
	return d.ApplyPins(q, pins, s.conf(r).cfg.Location)
}

// pinnedFor returns the parameters pinned for r's principal on d, for
// dataset descriptions (nil when none).
func (s *Server) pinnedFor(r *http.Request, d *exportd.Dataset) map[string][]string {
	p := auth.From(r.Context())
	if p == nil {
		return nil
	}
	pins, err := d.PinsFor(p.Roles, p.Attrs)
	if err != nil || len(pins) == 0 {
		return nil
	}
	return pins
}

// auditAttrs returns the log attributes naming r's principal.
func auditAttrs(r *http.Request) []any {
	p := auth.From(r.Context())
	if p == nil {
		return nil
	}
	roles := slices.Clone(p.Roles)
	if roles == nil {
		roles = []string{}
	}
	return []any{"principal", p.Name, "roles", roles, "via", p.Via}
}
