package exportd

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
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
//	  link_secret: ${EXPORTD_LINK_SECRET} # HMAC key of signed links (at least 32 bytes)
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
	// LinkSecret is the shared HMAC key of signed links; empty turns
	// signed links off.
	LinkSecret string
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

var roleNameRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

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
			gv, reason := prm.parse(g, loc)
			ok := false
			for _, a := range allowed {
				if av, r := prm.parse(a, loc); reason == "" && r == "" && sameValue(gv, av) {
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

var authFields = []string{"tokens_db", "trusted_header", "link_secret", "anonymous"}

// defaultAuth is the auth config of a file without an auth: block.
func (p *parser) defaultAuth() *AuthConfig {
	a := &AuthConfig{}
	if dir := p.dir(); dir != "" {
		a.TokensDB = "sqlite:" + filepath.Join(dir, "exportd-auth.db")
	}
	return a
}

func (p *parser) auth(cfg *Config, n *yaml.Node) {
	a := cfg.Auth
	for _, f := range p.mapping(n, "", "auth", authFields...) {
		field := "auth." + f.key
		switch f.key {
		case "tokens_db":
			s, ok := p.str(f.v, "", field)
			if !ok {
				continue
			}
			u, err := p.expandEnv(s)
			switch {
			case err != nil:
				p.errorf(f.v.Line, "", field, "%v", err)
			case (Connection{URL: u}).Driver() == "postgres":
				a.TokensDB = u
			case (Connection{URL: u}).Driver() == "sqlite":
				if strings.TrimPrefix(u, "sqlite:") == "" {
					p.errorf(f.v.Line, "", field, "empty path (want sqlite:PATH or postgres://…)")
					continue
				}
				a.TokensDB = resolveSQLite(u, p.dir())
			default:
				p.errorf(f.v.Line, "", field, "want sqlite:PATH or postgres://…, got %s", describeNode(f.v))
			}
		case "trusted_header":
			a.TrustedHeader = p.trustedHeader(f)
		case "link_secret":
			s, ok := p.str(f.v, "", field)
			if !ok {
				continue
			}
			v, err := p.expandEnv(s)
			switch {
			case err != nil:
				p.errorf(f.v.Line, "", field, "%v", err)
			case len(v) < 32:
				p.errorf(f.v.Line, "", field, "too short: %d bytes (want at least 32, e.g. from `openssl rand -hex 32`)", len(v))
			default:
				a.LinkSecret = v
			}
		case "anonymous":
			an := &Anonymous{}
			for _, g := range p.mapping(f.v, "", field, "roles", "from") {
				gf := field + "." + g.key
				switch g.key {
				case "roles":
					an.Roles = p.roles(g.v, "", gf)
				case "from":
					an.From = p.prefixes(g.v, gf)
				}
			}
			a.Anonymous = an
		}
	}
}

func (p *parser) trustedHeader(f pair) *TrustedHeader {
	field := "auth.trusted_header"
	th := &TrustedHeader{Roles: "X-Forwarded-Roles", AttrsPrefix: "X-Forwarded-Attr-"}
	given := map[string]bool{}
	for _, g := range p.mapping(f.v, "", field, "user", "roles", "attrs_prefix", "proxies") {
		gf := field + "." + g.key
		given[g.key] = true
		if g.key == "proxies" {
			th.Proxies = p.prefixes(g.v, gf)
			if len(th.Proxies) == 0 && !p.hasErrorFor(gf) {
				p.errorf(g.v.Line, "", gf, "empty (want the proxies' addresses, e.g. [127.0.0.1/32])")
			}
			continue
		}
		s, ok := p.str(g.v, "", gf)
		if !ok {
			continue
		}
		if !headerNameRE.MatchString(s) {
			p.errorf(g.v.Line, "", gf, "not a header name: %q", s)
			continue
		}
		switch g.key {
		case "user":
			th.User = s
		case "roles":
			th.Roles = s
		case "attrs_prefix":
			th.AttrsPrefix = s
		}
	}
	if deref(f.v).Kind == yaml.MappingNode {
		if !given["user"] {
			p.errorf(f.k.Line, "", field+".user", "missing (want the header naming the user, e.g. X-Forwarded-User)")
		}
		if !given["proxies"] {
			p.errorf(f.k.Line, "", field+".proxies", "missing (headers are believed only from these addresses, e.g. [127.0.0.1/32])")
		}
	}
	return th
}

var headerNameRE = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")

// prefixes parses a list of CIDR prefixes or plain addresses.
func (p *parser) prefixes(n *yaml.Node, field string) []netip.Prefix {
	list, ok := p.strList(n, "", field)
	if !ok {
		return nil
	}
	var out []netip.Prefix
	for i, s := range list {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			addr, err2 := netip.ParseAddr(s)
			if err2 != nil {
				p.errorf(n.Line, "", fmt.Sprintf("%s[%d]", field, i), "not an address or CIDR prefix: %q", s)
				continue
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		out = append(out, pfx.Masked())
	}
	return out
}

// roles parses a list of role names.
func (p *parser) roles(n *yaml.Node, dataset, field string) []string {
	list, ok := p.strList(n, dataset, field)
	if !ok {
		return nil
	}
	out := []string{}
	for i, r := range list {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !roleNameRE.MatchString(r):
			p.errorf(n.Line, dataset, f, "invalid role name %q (want letters, digits and _ . : -)", r)
		case slices.Contains(out, r):
			p.errorf(n.Line, dataset, f, "repeated role %q", r)
		default:
			out = append(out, r)
		}
	}
	return out
}

// pins parses a dataset's pin: block (role → parameter → value, list of
// values or {attr: NAME}); checkPins validates it once params are known.
func (p *parser) pins(d *Dataset, n *yaml.Node) {
	d.Pins = map[string]map[string]Pin{}
	for _, rk := range p.mapping(n, d.Name, "pin") {
		rf := "pin." + rk.key
		if !roleNameRE.MatchString(rk.key) {
			p.errorf(rk.k.Line, d.Name, rf, "invalid role name (want letters, digits and _ . : -)")
		}
		byParam := map[string]Pin{}
		for _, pk := range p.mapping(rk.v, d.Name, rf) {
			pf := rf + "." + pk.key
			d.lines[pf] = pk.k.Line
			var pin Pin
			if v := deref(pk.v); v.Kind == yaml.MappingNode {
				for _, a := range p.mapping(v, d.Name, pf, "attr") {
					s, ok := p.str(a.v, d.Name, pf+".attr")
					if ok && strings.TrimSpace(s) == "" {
						p.errorf(a.v.Line, d.Name, pf+".attr", "empty (want an attribute name, e.g. branch)")
					}
					pin.Attr = s
				}
				if pin.Attr == "" && !p.hasErrorFor(pf+".attr") && len(v.Content) == 0 {
					p.errorf(pk.k.Line, d.Name, pf, "want a value, a list of values or {attr: NAME}")
				}
			} else {
				pin.Values, _ = p.strList(v, d.Name, pf)
				if v.Kind == yaml.SequenceNode && len(pin.Values) == 0 {
					p.errorf(pk.k.Line, d.Name, pf, "empty list (want at least one value)")
				}
			}
			byParam[pk.key] = pin
		}
		d.Pins[rk.key] = byParam
	}
}

// checkPins checks each pin against the dataset's roles and parameters.
func (p *parser) checkPins(cfg *Config, d *Dataset) {
	roles := make([]string, 0, len(d.Pins))
	for r := range d.Pins {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		if len(d.Roles) > 0 && !slices.Contains(d.Roles, r) {
			p.errorf(d.lineOf("pin"), d.Name, "pin."+r, "role %q is not in the dataset's roles (%s)", r, strings.Join(d.Roles, ", "))
		}
		names := make([]string, 0, len(d.Pins[r]))
		for n := range d.Pins[r] {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			pin := d.Pins[r][name]
			field := "pin." + r + "." + name
			prm, ok := d.Param(name)
			if !ok {
				p.errorf(d.lineOf(field), d.Name, field, "%q is not a declared parameter%s", name, d.declaredParams())
				continue
			}
			if !prm.List && len(pin.Values) > 1 {
				p.errorf(d.lineOf(field), d.Name, field, "several values, but the parameter is not a list")
			}
			for _, v := range pin.Values {
				if _, reason := prm.parse(v, cfg.Location); reason != "" {
					p.errorf(d.lineOf(field), d.Name, field, "%s", reason)
				}
			}
		}
	}
}
