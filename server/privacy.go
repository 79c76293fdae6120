package server

// Personal data: the request's purpose and choice of columns, handed to
// the export's plan (package plan), which applies the rules alike on every
// path — the direct stream, a signed link (the same handler, the purpose
// carried by the link) and a background job (submitted here, run by its
// worker). The refusals and a job's downloads are audited by audit.go and
// jobresult.go.

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/mask"
	"github.com/exportd/exportd/plan"
)

// The request keys of the privacy rules.
const (
	keyPurpose     = "purpose"
	keyPurposeText = "purpose_text"
	keyColumns     = "columns"
	keySheet       = "sheet"
	keyPassword    = "password"
)

// planRequest turns the query q of a request for an export in format f
// into the plan's request: the privacy keys (purpose, purpose_text,
// columns) are taken out of q, and what remains are the dataset's
// parameters; the principal is r's. A signed link's purpose, which the
// host application collected, takes precedence over the query's.
func (s *Server) planRequest(r *http.Request, f exportd.Format, q url.Values) plan.Request {
	req := plan.Request{Format: f, Principal: s.planPrincipal(r),
		Purpose: audit.Purpose{Category: strings.TrimSpace(q.Get(keyPurpose)), Text: strings.TrimSpace(q.Get(keyPurposeText))}}
	if p := auth.From(r.Context()); p != nil && p.Link != nil && (p.Link.Purpose != "" || p.Link.PurposeText != "") {
		req.Purpose = audit.Purpose{Category: strings.TrimSpace(p.Link.Purpose), Text: strings.TrimSpace(p.Link.PurposeText)}
	}
	if cols, ok := q[keyColumns]; ok {
		req.Columns = []string{}
		for _, c := range cols {
			for name := range strings.SplitSeq(c, ",") {
				if name = strings.TrimSpace(name); name != "" {
					req.Columns = append(req.Columns, name)
				}
			}
		}
	}
	// sheet= is repeated for several sheets (a sheet's name may hold a comma).
	if sheets, ok := q[keySheet]; ok {
		req.Sheets = []string{}
		for _, name := range sheets {
			if name = strings.TrimSpace(name); name != "" {
				req.Sheets = append(req.Sheets, name)
			}
		}
	}
	delete(q, keyPurpose)
	delete(q, keyPurposeText)
	delete(q, keyColumns)
	delete(q, keySheet)
	req.Params = q
	return req
}

// planExport plans the export of d that r asks for with the query q (see
// planRequest), and returns what was asked with it, for the audit record
// of a refusal. A password in q is refused once access is granted: it
// would be logged by every proxy, and stored with a job.
func (s *Server) planExport(r *http.Request, d *exportd.Dataset, f exportd.Format, q url.Values) (*plan.Plan, *plan.Request, error) {
	_, password := q[keyPassword]
	delete(q, keyPassword)
	req := s.planRequest(r, f, q)
	p, err := plan.New(s.conf(r).cfg, d.Name, req)
	if err == nil && password {
		err = badParameter(keyPassword, "never put a password in a URL or a job's parameters (proxies log them, the job would store it): "+
			"a password-protected workbook is a background job's, and its password is sent in the body of POST /v1/jobs/{id}/download")
	}
	if err != nil {
		return nil, &req, err
	}
	return p, &req, nil
}

// planPrincipal returns the plan's principal for r: its name as jobs and
// the audit trail know it, roles and attributes, and the client's
// address. Access rules apply when the server has access control.
func (s *Server) planPrincipal(r *http.Request) plan.Principal {
	pr := plan.Principal{Name: s.cfg.Principal(r), Client: remoteIP(r, s.cfg.TrustedProxies)}
	if p := auth.From(r.Context()); p != nil {
		pr.Roles, pr.Attrs, pr.Enforce = p.Roles, p.Attrs, true
	}
	return pr
}

// policies returns the masking policy of every dataset, by name: the UI's
// form shows the columns a principal may choose, and a job's download
// record names the columns of its file.
func policies(cfg *exportd.Config) (map[string]*mask.Policy, error) {
	out := map[string]*mask.Policy{}
	for _, d := range cfg.Datasets {
		p, err := mask.PolicyFor(d)
		if err != nil {
			return nil, err
		}
		out[d.Name] = p
	}
	return out, nil
}
