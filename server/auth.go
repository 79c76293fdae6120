package server

// Access control: who a request acts for (package auth finds the
// principal), which datasets it may export and with which parameters,
// CSRF protection of the UI's POSTs and the security headers of every
// response.

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/plan"
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

// Cross-site request forgery: a state-changing request that a browser
// sends from another site (Sec-Fetch-Site, or an Origin that is not the
// server's) is refused, by net/http's CrossOriginProtection. Requests
// that are not a browser's (no Sec-Fetch-Site and no Origin: an API
// client, curl) and same-origin ones (the UI's scripts and forms) pass,
// so no token has to travel with a form or a script.

// crossOrigin checks r with the server's cross-origin protection.
func (s *Server) crossOrigin(r *http.Request) error {
	if err := s.cop.Check(r); err != nil {
		return &Error{Status: http.StatusForbidden, Code: "csrf",
			Message: "a state-changing request from another site is refused (cross-site request forgery): " + err.Error()}
	}
	return nil
}

// authenticate finds the principal of every request but public ones and
// puts it in the request's context; without one it answers 401. A signed
// link is checked for the export it is presented on (403 when it does not
// match or has expired) and its link.* keys are removed from the query.
// A state-changing request from another site is refused (403 csrf).
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
		r = r.WithContext(ctx)
		if err := s.crossOrigin(r); err != nil {
			s.writeError(w, r, err)
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
	pr := s.planPrincipal(r)
	if !pr.Enforce {
		return nil
	}
	return plan.Authorize(d, pr, q, s.conf(r).cfg.Location)
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
