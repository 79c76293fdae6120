// Package auth establishes who an exportd request acts for: a [Principal]
// with a name, roles and attributes, from an API token (Authorization:
// Bearer, stored hashed in a [Store]), from headers set by a trusted
// reverse proxy, from a link signed by a host application ([SignLink]),
// or, when configured, as the anonymous principal.
//
// The server's middleware puts the principal into the request's context;
// handlers read it with [From]:
//
//	p := auth.From(r.Context())
//	if p != nil && !d.Allows(p.Roles) { … 403 … }
//
// A host application signs a download link for one of its users with the
// server's link key (the Go form of the README's Python recipe):
//
//	keys, _ := auth.NewKeys(secret) // the newest key last: it signs
//	u := auth.SignLink(keys, auth.Link{
//		Dataset: "member_scores", Format: "xlsx",
//		Params:  url.Values{"from": {"2024-01-01"}},
//		Name:    "kim", Roles: []string{"manager"}, Attrs: map[string]string{"branch": "부산"},
//		Expires: time.Now().Add(5 * time.Minute),
//	})
//	// "/v1/datasets/member_scores/export.xlsx?from=2024-01-01&link.attr.branch=…&link.sig=…"
package auth
