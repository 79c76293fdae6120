package server

// The web UI's fields for personal datasets: the purpose of the
// export (a category and a free text), the choice of columns (only those
// the principal's roles may see, the masked ones labelled), and the offer
// of a password-protected workbook, which is made on a background job's
// done state (POST /v1/jobs/{id}/download with a password; privacy.go says
// why encrypted workbooks are jobs only).

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/mask"
)

// privacyForm adds the purpose, the column choice and the encryption
// offer of d to f, filled from in (a submitted form, or values in the
// form's URL).
func (s *Server) privacyForm(f *uiFormData, r *http.Request, d *exportd.Dataset, in url.Values, submitted bool) {
	if d.Encryption != "" && s.cfg.Jobs != nil {
		f.Encryption = d.Encryption
	}
	if !d.Personal {
		return
	}
	f.Personal = true
	pc := s.conf(r).cfg.Privacy
	cat := uiField{Name: keyPurpose, Label: "목적", Input: "select", Required: true,
		Description: "이 파일을 내려받는 이유의 분류입니다. 내려받기마다 기록됩니다."}
	for _, c := range pc.Purposes {
		label := c.Label
		if label == "" {
			label = c.Name
		}
		cat.Options = append(cat.Options, uiOption{Value: c.Name, Label: label, Selected: in.Get(keyPurpose) == c.Name})
	}
	text := uiField{Name: keyPurposeText, Label: "목적 설명", Input: "text", Required: true,
		MinLength: pc.PurposeMinLength, MaxLength: 500, Value: in.Get(keyPurposeText),
		Description: "구체적으로 적어 주세요 (예: 회원 문의 1234번 응대를 위한 확인)."}
	if pc.PurposeMinLength > 0 {
		text.Hint = strconv.Itoa(pc.PurposeMinLength) + "자 이상"
	}
	f.PurposeFields = []uiField{cat, text}

	// The dataset's columns, or each sheet's (named SHEET.COLUMN).
	type columnSet struct {
		sheet string
		cols  []exportd.Column
		pol   *mask.Policy
	}
	var sets []columnSet
	if len(d.Sheets) == 0 {
		sets = []columnSet{{cols: d.Columns, pol: s.conf(r).policies[d.Name]}}
	}
	for _, sh := range d.Sheets {
		if pol, err := mask.PolicyForColumns(d, sh.Columns); err == nil {
			sets = append(sets, columnSet{sheet: sh.Name, cols: sh.Columns, pol: pol})
		}
	}
	chosen := map[string]bool{}
	_, given := in[keyColumns]
	for _, v := range in[keyColumns] {
		chosen[v] = true
	}
	for _, set := range sets {
		if len(set.cols) == 0 || set.pol == nil {
			continue
		}
		plan, err := set.pol.Plan(s.planPrincipal(r).Roles, set.cols, nil)
		if err != nil {
			continue // no column for these roles: the export is refused anyway
		}
		for _, c := range set.cols {
			a := plan.Access(c.Name)
			if a == mask.Omitted {
				continue
			}
			name, h := c.Name, c.Header
			if h == "" {
				h = c.Name
			}
			if set.sheet != "" {
				name, h = set.sheet+"."+c.Name, set.sheet+" · "+h
			}
			f.Columns = append(f.Columns, uiColumn{Name: name, Header: h, Masked: a == mask.Masked,
				Checked: (!given && !submitted) || chosen[name]})
		}
	}
	if submitted && !given {
		// A submission without the column fieldset (a link or a script
		// that leaves it out) means every column the roles may see.
		for i := range f.Columns {
			f.Columns[i].Checked = true
		}
	}
}
