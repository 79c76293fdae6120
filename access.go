package exportd

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"
)

// AuthConfig is the auth: block of a datasets file: where principals come
// from. Every field is optional:
//
//	auth:
//	  tokens_db: sqlite:exportd-auth.db   # API tokens; default beside this file; or postgres://…
//	  trusted_header:                     # a reverse proxy names the user
//	    user: X-Forwarded-User            # required when the block is given
//	    roles: X-Forwarded-Roles          # comma-separated; default X-Forwarded-Roles
//	    attrs_prefix: X-Forwarded-Attr-   # X-Forwarded-Attr-Branch: 부산 → attribute branch
//	    proxies: [127.0.0.1/32]           # only these TCP peers are believed; required
//	  signed_links: true                  # accept links signed by a host application (keys: --link-secret-file)
//	  anonymous:                          # no credentials: this principal instead of 401
//	    roles: [admin]
//	    from: [127.0.0.0/8, ::1/128]      # only for these peers; default any
type AuthConfig struct {
	// TokensDB is the database of API tokens: sqlite:PATH (made absolute
	// against the config file's directory) or postgres://…. Default:
	// sqlite:exportd-auth.db beside the config file.
	TokensDB string
	// TrustedHeader, when set, takes the principal from headers set by a
	// reverse proxy at one of its Proxies.
	TrustedHeader *TrustedHeader
	// SignedLinks accepts export links signed by a host application with
	// the server's link keys (the keys are the server's setting, not the
	// file's: they also sign job download links).
	SignedLinks bool
	// Anonymous, when set, is the principal of a request without
	// credentials; nil means such a request gets 401.
	Anonymous *Anonymous
}

// TrustedHeader configures principals named by a reverse proxy's headers.
type TrustedHeader struct {
	User        string         // header naming the principal, e.g. X-Forwarded-User
	Roles       string         // header listing roles, comma-separated
	AttrsPrefix string         // prefix of attribute headers
	Proxies     []netip.Prefix // TCP peers whose headers are believed
}

// Anonymous configures the principal of requests without credentials.
type Anonymous struct {
	Roles []string
	From  []netip.Prefix // peers it applies to; none means any
}

// Pin fixes the value of one parameter for one role: either Values (one
// for a scalar parameter, one or more for a list) or the principal's
// attribute Attr.
type Pin struct {
	Values []string
	Attr   string
}

// PinError refuses a request that gives a pinned parameter another value,
// or that cannot be pinned (the principal lacks the attribute).
type PinError struct {
	Param  string
	Reason string
}

func (e *PinError) Error() string { return fmt.Sprintf("parameter %q: %s", e.Param, e.Reason) }

// Allows reports whether a principal with roles may run d: d declares no
// roles, or the principal has one of them.
func (d *Dataset) Allows(roles []string) bool {
	if len(d.Roles) == 0 {
		return true
	}
	for _, r := range roles {
		if slices.Contains(d.Roles, r) {
			return true
		}
	}
	return false
}

// PinsFor returns the values pinned for a principal with roles and
// attributes, by parameter name. Roles add rights: a parameter is pinned
// only when every role of the principal that grants d pins it; the values
// allowed are then those of all these pins. A pin to an attribute the
// principal lacks is a *PinError.
func (d *Dataset) PinsFor(roles []string, attrs map[string]string) (map[string][]string, error) {
	var granting []string
	for _, r := range roles {
		if (len(d.Roles) == 0 || slices.Contains(d.Roles, r)) && !slices.Contains(granting, r) {
			granting = append(granting, r)
		}
	}
	out := map[string][]string{}
	if len(granting) == 0 || len(d.Pins) == 0 {
		return out, nil
	}
	for _, prm := range d.Params {
		var vals []string
		pinned := true
		for _, r := range granting {
			pin, ok := d.Pins[r][prm.Name]
			if !ok {
				pinned = false
				break
			}
			if pin.Attr != "" {
				v, ok := attrs[pin.Attr]
				if !ok || v == "" {
					return nil, &PinError{Param: prm.Name, Reason: fmt.Sprintf("pinned to your attribute %q, which you do not have", pin.Attr)}
				}
				vals = append(vals, v)
				continue
			}
			vals = append(vals, pin.Values...)
		}
		if pinned {
			slices.Sort(vals)
			out[prm.Name] = slices.Compact(vals)
		}
	}
	return out, nil
}

// ApplyPins checks the raw parameter values in (as for [Dataset.BindParams])
// against pins (see [Dataset.PinsFor]) and fills in the pinned values of
// parameters not given. A value given that is not pinned is a *PinError:
// pinned parameters cannot be overridden. A scalar parameter pinned to
// several values must be given one of them.
func (d *Dataset) ApplyPins(in map[string][]string, pins map[string][]string, loc *time.Location) error {
	if loc == nil {
		loc = time.UTC
	}
	names := make([]string, 0, len(pins))
	for n := range pins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		prm, ok := d.Param(name)
		if !ok {
			continue
		}
		allowed := pins[name]
		given := prm.split(in[name])
		if len(given) == 0 {
			if !prm.List && len(allowed) > 1 {
				return &PinError{Param: name, Reason: "pinned for you to one of " + strings.Join(allowed, ", ") + "; choose one"}
			}
			in[name] = slices.Clone(allowed)
			continue
		}
		for _, g := range given {
			gv, reason := prm.Parse(g, loc)
			ok := false
			for _, a := range allowed {
				if av, r := prm.Parse(a, loc); reason == "" && r == "" && sameValue(gv, av) {
					ok = true
					break
				}
			}
			if !ok {
				return &PinError{Param: name, Reason: fmt.Sprintf("pinned for your role to %s; it cannot be overridden", strings.Join(allowed, ", "))}
			}
		}
	}
	return nil
}

// sameValue compares two values parsed for the same parameter.
func sameValue(a, b any) bool {
	switch a.(type) {
	case int64, float64, DateArg, time.Time:
		return compare(a, b) == 0
	}
	return a == b
}
