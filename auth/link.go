package auth

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Link is what a signed link grants: exactly one export (dataset, format
// and query parameters) for one principal until Expires.
//
// On the wire a link is the export's URL with the grant in query keys that
// no dataset parameter can take (parameter names have no dots):
//
//	/v1/datasets/{Dataset}/export.{Format}?{Params}&link.sub=NAME&link.roles=a,b
//	    &link.attr.KEY=VALUE&link.purpose=…&link.purpose_text=…&link.exp=UNIX&link.sig=HEX
//
// link.sig is the hex HMAC-SHA256, under the newest of the server's link
// keys ([Keys]; any of them verifies), of
//
//	"exportd-link-v1\n" + Dataset + "\n" + Format + "\n" + CANONICAL
//
// where CANONICAL is every other query pair, sorted by key then value,
// each escaped as in a form (space as +, unreserved A-Z a-z 0-9 - . _ ~
// kept, everything else %XX upper-case), joined by &: Python's
// urlencode(sorted(pairs)) and Go's url.QueryEscape. Every pair is signed,
// so a parameter cannot be added, removed or changed, and the link is
// refused on any other dataset or format.
type Link struct {
	Dataset string
	Format  string
	Params  url.Values // dataset parameters (and other export keys, e.g. part)
	Name    string
	Roles   []string
	Attrs   map[string]string
	// Purpose and PurposeText carry the purpose of the download that the
	// host application collected (a category and free text).
	Purpose     string
	PurposeText string
	Expires     time.Time
}

// The query keys of a signed link.
const (
	LinkSub         = "link.sub"
	LinkRoles       = "link.roles"
	LinkAttrPrefix  = "link.attr."
	LinkPurpose     = "link.purpose"
	LinkPurposeText = "link.purpose_text"
	LinkExp         = "link.exp"
	LinkSig         = "link.sig"
	linkPrefix      = "link."
	linkVersion     = "exportd-link-v1"
)

// SignLink returns the path and query of l signed with the newest of keys,
// relative to the server's root: /v1/datasets/….
func SignLink(keys *Keys, l Link) string {
	q := url.Values{}
	for k, vs := range l.Params {
		q[k] = append([]string(nil), vs...)
	}
	q.Set(LinkSub, l.Name)
	if len(l.Roles) > 0 {
		q.Set(LinkRoles, strings.Join(l.Roles, ","))
	}
	for k, v := range l.Attrs {
		q.Set(LinkAttrPrefix+k, v)
	}
	if l.Purpose != "" {
		q.Set(LinkPurpose, l.Purpose)
	}
	if l.PurposeText != "" {
		q.Set(LinkPurposeText, l.PurposeText)
	}
	q.Set(LinkExp, strconv.FormatInt(l.Expires.Unix(), 10))
	canon := canonicalQuery(q)
	sig := keys.Sign(linkMessage(l.Dataset, l.Format, canon))
	return "/v1/datasets/" + url.PathEscape(l.Dataset) + "/export." + l.Format + "?" + canon + "&" + LinkSig + "=" + sig
}

// linkMessage is what a link's signature covers.
func linkMessage(dataset, format, canon string) []byte {
	return []byte(linkVersion + "\n" + dataset + "\n" + format + "\n" + canon)
}

// canonicalQuery encodes q's pairs sorted by key, then value.
func canonicalQuery(q url.Values) string {
	type kv struct{ k, v string }
	var pairs []kv
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, kv{k, v})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(p.k))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p.v))
	}
	return b.String()
}

// IsLink reports whether query q carries a link signature.
func IsLink(q url.Values) bool { _, ok := q[LinkSig]; return ok }

// VerifyLink checks a signed link presented for dataset and format with
// query q at time now. It returns the principal the link names (Via
// ViaLink) and the query without the link.* keys: the export's
// parameters, which the signature covers. A wrong signature, a link for
// another dataset or format, or a malformed link wraps [ErrBadLink]; an
// expired one wraps [ErrLinkExpired].
func VerifyLink(keys *Keys, dataset, format string, q url.Values, now time.Time) (*Principal, url.Values, error) {
	if keys == nil {
		return nil, nil, fmt.Errorf("%w: signed links are not enabled on this server (auth.signed_links, --link-secret-file)", ErrBadLink)
	}
	sigs := q[LinkSig]
	if len(sigs) != 1 {
		return nil, nil, fmt.Errorf("%w: want one %s", ErrBadLink, LinkSig)
	}
	rest := url.Values{}
	for k, vs := range q {
		if k != LinkSig {
			rest[k] = vs
		}
	}
	if !keys.Verify(linkMessage(dataset, format, canonicalQuery(rest)), sigs[0]) {
		return nil, nil, fmt.Errorf("%w: the signature does not match (the link was changed, or is for another export)", ErrBadLink)
	}
	l := &Link{Dataset: dataset, Format: format, Params: url.Values{}}
	p := &Principal{Via: ViaLink, Link: l, Attrs: map[string]string{}}
	for k, vs := range rest {
		if !strings.HasPrefix(k, linkPrefix) {
			l.Params[k] = vs
			continue
		}
		if len(vs) != 1 {
			return nil, nil, fmt.Errorf("%w: %s given more than once", ErrBadLink, k)
		}
		v := vs[0]
		switch {
		case k == LinkSub:
			p.Name = v
		case k == LinkRoles:
			for r := range strings.SplitSeq(v, ",") {
				if r = strings.TrimSpace(r); r != "" {
					p.Roles = append(p.Roles, r)
				}
			}
		case strings.HasPrefix(k, LinkAttrPrefix) && len(k) > len(LinkAttrPrefix):
			p.Attrs[k[len(LinkAttrPrefix):]] = v
		case k == LinkPurpose:
			l.Purpose = v
		case k == LinkPurposeText:
			l.PurposeText = v
		case k == LinkExp:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s is not a Unix time", ErrBadLink, LinkExp)
			}
			l.Expires = time.Unix(n, 0)
		default:
			return nil, nil, fmt.Errorf("%w: unknown key %s", ErrBadLink, k)
		}
	}
	switch {
	case p.Name == "":
		return nil, nil, fmt.Errorf("%w: no %s", ErrBadLink, LinkSub)
	case l.Expires.IsZero():
		return nil, nil, fmt.Errorf("%w: no %s", ErrBadLink, LinkExp)
	case !now.Before(l.Expires):
		return nil, nil, fmt.Errorf("%w at %s", ErrLinkExpired, l.Expires.UTC().Format(time.RFC3339))
	}
	l.Name, l.Roles, l.Attrs = p.Name, p.Roles, p.Attrs
	return p, l.Params, nil
}
