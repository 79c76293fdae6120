package server

// Reloading the datasets: the server serves one configuration (the
// datasets file, a source per connection, the masking policies) at a time,
// swapped whole by Reload. Each request keeps the configuration it started
// with, so a download in flight finishes on it while new requests see the
// new one.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/mask"
)

// served is one configuration of the datasets the server serves.
type served struct {
	cfg      *exportd.Config
	sources  map[string]exportd.Source
	policies map[string]*mask.Policy // each dataset's masking policy (privacy.go)
	auth     *auth.Authenticator     // nil: no access control
}

// newServed checks that cfg can be served with sources and makes its
// configuration: a source for every dataset's connection, plain key
// columns, no parameter named as the server's own, an audit trail for
// personal data.
func newServed(cfg *exportd.Config, sources map[string]exportd.Source, a *auth.Authenticator, audited bool) (*served, error) {
	if cfg == nil {
		return nil, errors.New("server: no datasets config")
	}
	for _, d := range cfg.Datasets {
		if _, ok := sources[d.Connection]; !ok {
			return nil, fmt.Errorf("server: dataset %s: no source for connection %q", d.Name, d.Connection)
		}
		if d.Key != "" && !identRE.MatchString(d.Key) {
			return nil, fmt.Errorf("server: dataset %s: key %q is not a plain column name", d.Name, d.Key)
		}
		if _, ok := d.Param("part_from"); ok {
			return nil, fmt.Errorf("server: dataset %s: parameter name part_from is used by the server for parts", d.Name)
		}
		if d.Personal && !audited {
			return nil, fmt.Errorf("dataset %s holds personal data: its exports must be audited (Config.Audit)", d.Name)
		}
	}
	pols, err := policies(cfg)
	if err != nil {
		return nil, err
	}
	return &served{cfg: cfg, sources: sources, policies: pols, auth: a}, nil
}

type servedKey struct{}

// withServed gives each request the configuration served when it arrived.
func (s *Server) withServed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), servedKey{}, s.served.Load())))
	})
}

// conf returns the configuration r started with (the current one for a
// request that did not pass through the server's handler).
func (s *Server) conf(r *http.Request) *served {
	if c, ok := r.Context().Value(servedKey{}).(*served); ok {
		return c
	}
	return s.served.Load()
}

// Reload makes the server serve cfg on sources from now on, with a as its
// access control (nil: none; a reloaded datasets file's auth block and
// link secret). It checks them as New does; on an error the running
// configuration stays. Requests already under way finish on the
// configuration they started with. The background jobs' manager, if any,
// is the caller's to reload.
func (s *Server) Reload(cfg *exportd.Config, sources map[string]exportd.Source, a *auth.Authenticator) error {
	c, err := newServed(cfg, sources, a, s.cfg.Audit != nil)
	if err != nil {
		s.ReloadRefused()
		return err
	}
	s.served.Store(c)
	s.metrics.reloads.WithLabelValues("ok").Inc()
	s.log.Info("datasets reloaded", "datasets", len(cfg.Datasets))
	return nil
}

// ReloadRefused counts a reload refused before it reached Reload (a
// datasets file that did not check), in exportd_reloads_total.
func (s *Server) ReloadRefused() { s.metrics.reloads.WithLabelValues("failed").Inc() }

// adminRoutes lists the routes of an operator, served when Config.Reload
// is set.
func (s *Server) adminRoutes() []route {
	return []route{{"POST", "/v1/admin/reload", "/v1/admin/reload", http.HandlerFunc(s.reload)}}
}

// reload re-reads the datasets file (Config.Reload), as SIGHUP does: POST
// /v1/admin/reload, for a principal with the admin role (without access
// control: from this machine only). A file that does not check is
// refused with the reason (422 reload_refused) and the running
// configuration stays.
func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if !s.mayAdminister(r) {
		s.writeError(w, r, &Error{Status: http.StatusForbidden, Code: "forbidden",
			Message: "reloading needs the admin role (or, on a server without access control, a request from this machine)"})
		return
	}
	n, err := s.cfg.Reload(r.Context())
	if err != nil {
		s.writeError(w, r, &Error{Status: http.StatusUnprocessableEntity, Code: "reload_refused",
			Message: "the datasets file was not reloaded, the running configuration stays: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"reloaded": true, "datasets": n})
}

// mayAdminister reports whether r may act as the server's operator.
func (s *Server) mayAdminister(r *http.Request) bool {
	if s.conf(r).auth != nil {
		p := auth.From(r.Context())
		return p != nil && p.HasRole("admin")
	}
	ip, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && ip.Addr().IsLoopback()
}
