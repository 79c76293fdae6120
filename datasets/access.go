package datasets

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/exportd/exportd"
	"go.yaml.in/yaml/v3"
)

var roleNameRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

var authFields = []string{"tokens_db", "trusted_header", "signed_links", "link_secret", "anonymous"}

// defaultAuth is the auth config of a file without an auth: block.
func (p *parser) defaultAuth() *exportd.AuthConfig {
	a := &exportd.AuthConfig{}
	if dir := p.dir(); dir != "" {
		a.TokensDB = "sqlite:" + filepath.Join(dir, "exportd-auth.db")
	}
	return a
}

func (p *parser) auth(cfg *exportd.Config, n *yaml.Node) {
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
			case (exportd.Connection{URL: u}).Driver() == "postgres":
				a.TokensDB = u
			case (exportd.Connection{URL: u}).Driver() == "sqlite":
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
		case "signed_links":
			a.SignedLinks = p.boolean(f.v, "", field)
		case "link_secret":
			p.errorf(f.k.Line, "", field, "the link secret moved out of the datasets file: give it to the server with --link-secret-file FILE (EXPORTD_LINK_SECRET_FILE; one key a line, the newest last) or --link-secret (EXPORTD_LINK_SECRET), and write signed_links: true here; the same keys sign job download links")
		case "anonymous":
			an := &exportd.Anonymous{}
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

func (p *parser) trustedHeader(f pair) *exportd.TrustedHeader {
	field := "auth.trusted_header"
	th := &exportd.TrustedHeader{Roles: "X-Forwarded-Roles", AttrsPrefix: "X-Forwarded-Attr-"}
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
func (p *parser) pins(d *exportd.Dataset, n *yaml.Node) {
	d.Pins = map[string]map[string]exportd.Pin{}
	for _, rk := range p.mapping(n, d.Name, "pin") {
		rf := "pin." + rk.key
		if !roleNameRE.MatchString(rk.key) {
			p.errorf(rk.k.Line, d.Name, rf, "invalid role name (want letters, digits and _ . : -)")
		}
		byParam := map[string]exportd.Pin{}
		for _, pk := range p.mapping(rk.v, d.Name, rf) {
			pf := rf + "." + pk.key
			d.Origin.Lines[pf] = pk.k.Line
			var pin exportd.Pin
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
func (p *parser) checkPins(cfg *exportd.Config, d *exportd.Dataset) {
	roles := make([]string, 0, len(d.Pins))
	for r := range d.Pins {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		if len(d.Roles) > 0 && !slices.Contains(d.Roles, r) {
			p.errorf(d.Origin.LineOf("pin"), d.Name, "pin."+r, "role %q is not in the dataset's roles (%s)", r, strings.Join(d.Roles, ", "))
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
				p.errorf(d.Origin.LineOf(field), d.Name, field, "%q is not a declared parameter%s", name, d.DeclaredParams())
				continue
			}
			if !prm.List && len(pin.Values) > 1 {
				p.errorf(d.Origin.LineOf(field), d.Name, field, "several values, but the parameter is not a list")
			}
			for _, v := range pin.Values {
				if _, reason := prm.Parse(v, cfg.Location); reason != "" {
					p.errorf(d.Origin.LineOf(field), d.Name, field, "%s", reason)
				}
			}
		}
	}
}
