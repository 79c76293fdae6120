package auth

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Config configures an [Authenticator]; every source of principals is
// optional.
type Config struct {
	// Tokens verifies Authorization: Bearer tokens; nil refuses them.
	Tokens *Store
	// Header, when set, takes the principal from a trusted proxy's headers.
	Header *HeaderTrust
	// Links verifies signed links; nil refuses them.
	Links *Keys
	// Anonymous is the principal of a request without credentials from
	// AnonymousFrom (any peer when empty); nil answers such requests 401.
	Anonymous     *Principal
	AnonymousFrom []netip.Prefix
	// Now returns the time links are checked at; nil means time.Now.
	Now func() time.Time
}

// HeaderTrust configures principals named by a reverse proxy. The headers
// are believed only when the request's TCP peer is in Proxies: elsewhere
// they are ignored, as if absent. The proxy must set (or clear) them on
// every request, so that a client cannot send its own.
type HeaderTrust struct {
	User        string // e.g. X-Forwarded-User; the principal's name
	Roles       string // e.g. X-Forwarded-Roles: comma-separated roles
	AttrsPrefix string // e.g. X-Forwarded-Attr-: X-Forwarded-Attr-Branch: 부산 → branch=부산
	Proxies     []netip.Prefix
}

// Authenticator finds the principal of a request.
type Authenticator struct {
	cfg Config
}

// New returns an Authenticator for cfg.
func New(cfg Config) *Authenticator {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Authenticator{cfg: cfg}
}

// LinksEnabled reports whether signed links are accepted.
func (a *Authenticator) LinksEnabled() bool { return a.cfg.Links != nil }

// Authenticate returns the principal of r from, in this order: an
// Authorization: Bearer token (which must be valid when given), a trusted
// proxy's headers, the anonymous principal. Without any of these it
// returns an error wrapping [ErrUnauthenticated]. Signed links are checked
// by [Authenticator.VerifyLink], for the export they name.
func (a *Authenticator) Authenticate(r *http.Request) (*Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return nil, fmt.Errorf("%w: want Authorization: Bearer TOKEN", ErrUnauthenticated)
		}
		if a.cfg.Tokens == nil {
			return nil, fmt.Errorf("%w: this server takes no API tokens", ErrUnauthenticated)
		}
		return a.cfg.Tokens.Lookup(r.Context(), strings.TrimSpace(tok))
	}
	peer := PeerAddr(r)
	if h := a.cfg.Header; h != nil && inPrefixes(peer, h.Proxies) {
		if name := strings.TrimSpace(r.Header.Get(h.User)); name != "" {
			p := &Principal{Name: name, Via: ViaHeader, Attrs: map[string]string{}}
			if h.Roles != "" {
				p.Roles = splitRoles(strings.Join(r.Header.Values(h.Roles), ","))
			}
			if h.AttrsPrefix != "" {
				prefix := http.CanonicalHeaderKey(h.AttrsPrefix)
				for k, vs := range r.Header {
					if rest, ok := strings.CutPrefix(k, prefix); ok && rest != "" && len(vs) > 0 {
						p.Attrs[strings.ToLower(rest)] = vs[0]
					}
				}
			}
			return p, nil
		}
	}
	if an := a.cfg.Anonymous; an != nil && (len(a.cfg.AnonymousFrom) == 0 || inPrefixes(peer, a.cfg.AnonymousFrom)) {
		p := *an
		p.Via = ViaAnonymous
		if p.Name == "" {
			p.Name = AnonymousName
		}
		return &p, nil
	}
	return nil, ErrUnauthenticated
}

// VerifyLink checks r's signed link for dataset and format (see the
// package function [VerifyLink]).
func (a *Authenticator) VerifyLink(r *http.Request, dataset, format string) (*Principal, error) {
	p, _, err := VerifyLink(a.cfg.Links, dataset, format, r.URL.Query(), a.cfg.Now())
	return p, err
}

// PeerAddr returns the address of r's TCP peer (never a forwarded one).
func PeerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, _ := netip.ParseAddr(host)
	return addr.Unmap()
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
