package auth

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// Principal is who a request acts for.
type Principal struct {
	Name  string            // the user or client; owns jobs
	Roles []string          // decide which datasets it may run and what is pinned
	Attrs map[string]string // e.g. branch=부산, for pinned parameters
	// Via says how the principal was established: ViaToken, ViaHeader,
	// ViaLink or ViaAnonymous.
	Via string
	// Link is the signed link's grant when Via is ViaLink, else nil.
	Link *Link
}

// How a principal was established.
const (
	ViaToken     = "token"     // Authorization: Bearer with an API token
	ViaHeader    = "header"    // a trusted reverse proxy's headers
	ViaLink      = "link"      // a link signed by a host application
	ViaAnonymous = "anonymous" // no credentials, auth.anonymous configured
)

// AnonymousName is the name of the anonymous principal.
const AnonymousName = "anonymous"

// ID returns the principal's identity namespaced by where it comes from
// ("token:kim", "header:kim", "link:kim", "anonymous:anonymous"): the user
// kim a proxy names is not the API token named kim, nor a host
// application's link for kim. Jobs belong to it, and records of who did
// what should keep it. A principal without Via (made by hand) is its Name.
func (p *Principal) ID() string {
	if p == nil {
		return ""
	}
	if p.Via == "" {
		return p.Name
	}
	return p.Via + ":" + p.Name
}

// NameOf returns the name in an identity made by ID (kim of header:kim),
// for people to read (a workbook's marking); an id without a source is
// returned as it is.
func NameOf(id string) string {
	for _, via := range []string{ViaToken, ViaHeader, ViaLink, ViaAnonymous} {
		if name, ok := strings.CutPrefix(id, via+":"); ok {
			return name
		}
	}
	return id
}

// HasRole reports whether p has role.
func (p *Principal) HasRole(role string) bool { return p != nil && slices.Contains(p.Roles, role) }

// Errors of authentication. A server answers ErrUnauthenticated with 401
// and the others with 403.
var (
	// ErrUnauthenticated: no credentials, or credentials that are not
	// valid (unknown or revoked token).
	ErrUnauthenticated = errors.New("authentication required")
	// ErrForbidden: the principal may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrBadLink: a signed link whose signature does not match (tampered
	// with, or signed with another secret) or that is malformed.
	ErrBadLink = errors.New("invalid signed link")
	// ErrLinkExpired: a signed link past its expiry.
	ErrLinkExpired = errors.New("signed link expired")
)

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// From returns the principal ctx carries, or nil when it carries none
// (a server without access control).
func From(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}
