package datasets

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/exportd/exportd"
	"go.yaml.in/yaml/v3"
)

var privacyFields = []string{"purposes", "purpose_min_length", "audit"}

var auditFields = []string{"db", "key_file", "log", "retention"}

func (p *parser) defaultPrivacy() *exportd.PrivacyConfig {
	pc := &exportd.PrivacyConfig{PurposeMinLength: exportd.DefaultPurposeMinLength}
	if dir := p.dir(); dir != "" {
		pc.AuditDB = "sqlite:" + filepath.Join(dir, "exportd-audit.db")
	}
	return pc
}

// abs makes a path relative to the config file's directory absolute.
func (p *parser) abs(path string) string {
	if path == "" || filepath.IsAbs(path) || p.dir() == "" {
		return path
	}
	return filepath.Join(p.dir(), path)
}

func (p *parser) privacy(cfg *exportd.Config, n *yaml.Node) {
	pc := cfg.Privacy
	for _, f := range p.mapping(n, "", "privacy", privacyFields...) {
		field := "privacy." + f.key
		switch f.key {
		case "purposes":
			pairs := p.mapping(f.v, "", field)
			if len(pairs) == 0 && deref(f.v).Kind == yaml.MappingNode {
				p.errorf(f.v.Line, "", field, "empty (want category: label pairs)")
			}
			for _, kv := range pairs {
				if !datasetNameRE.MatchString(kv.key) {
					p.errorf(kv.k.Line, "", field+"."+kv.key, "invalid purpose category (want [a-z0-9_-]+)")
				}
				label, ok := p.str(kv.v, "", field+"."+kv.key)
				if ok && strings.TrimSpace(label) == "" {
					p.errorf(kv.v.Line, "", field+"."+kv.key, "empty label")
				}
				pc.Purposes = append(pc.Purposes, exportd.PurposeCategory{Name: kv.key, Label: label})
			}
		case "purpose_min_length":
			v, ok := p.integer(f.v, "", field)
			if ok && (v < 0 || v > 1000) {
				p.errorf(f.v.Line, "", field, "must be between 0 and 1000")
			}
			pc.PurposeMinLength = int(v)
		case "audit":
			for _, a := range p.mapping(f.v, "", field, auditFields...) {
				af := field + "." + a.key
				switch a.key {
				case "db":
					s, ok := p.str(a.v, "", af)
					if !ok {
						continue
					}
					u, err := p.expandEnv(s)
					if err != nil {
						p.errorf(a.v.Line, "", af, "%v", err)
						continue
					}
					switch (exportd.Connection{URL: u}).Driver() {
					case "sqlite":
						pc.AuditDB = resolveSQLite(u, p.dir())
					case "postgres":
						pc.AuditDB = u
					default:
						p.errorf(a.v.Line, "", af, "want sqlite:PATH or postgres://…")
					}
				case "key_file":
					s, ok := p.str(a.v, "", af)
					if ok && strings.TrimSpace(s) == "" {
						p.errorf(a.v.Line, "", af, "empty")
					}
					pc.AuditKeyFile = p.abs(s)
				case "log":
					s, _ := p.str(a.v, "", af)
					pc.AuditLog = p.abs(s)
				case "retention":
					pc.Retention = p.duration(a.v, "", af)
					if pc.Retention > 0 && pc.Retention < 24*time.Hour {
						p.errorf(a.v.Line, "", af, "at least 24h (the 개인정보 안전성 확보조치 기준 asks for one to two years)")
					}
				}
			}
		}
	}
}

// checkPrivacy validates what needs the whole file: a personal dataset
// needs purposes and the trail's key.
func (p *parser) checkPrivacy(cfg *exportd.Config, privacyLine int) {
	var personal []string
	for _, d := range cfg.Datasets {
		if d.Personal {
			personal = append(personal, d.Name)
		}
	}
	if len(personal) == 0 {
		return
	}
	sort.Strings(personal)
	if len(cfg.Privacy.Purposes) == 0 && !p.hasErrorFor("privacy.purposes") {
		p.errorf(privacyLine, "", "privacy.purposes", "missing: the personal dataset(s) %s need purpose categories", strings.Join(personal, ", "))
	}
	if cfg.Privacy.AuditKeyFile == "" && !p.hasErrorFor("privacy.audit.key_file") {
		p.errorf(privacyLine, "", "privacy.audit.key_file", "missing: the personal dataset(s) %s are audited, and the trail needs an HMAC key (make one with `openssl rand -hex 32 > audit.key`)", strings.Join(personal, ", "))
	}
}

// maskSpec parses a column's mask: a rule name or a mapping.
func (p *parser) maskSpec(n *yaml.Node, dataset, field string) *exportd.MaskSpec {
	n = deref(n)
	s := &exportd.MaskSpec{}
	if n.Kind == yaml.ScalarNode {
		s.Rule, _ = p.str(n, dataset, field)
	} else {
		for _, f := range p.mapping(n, dataset, field, "rule", "pattern", "replace", "first", "last", "char", "fixed", "keep") {
			ff := field + "." + f.key
			switch f.key {
			case "rule":
				s.Rule, _ = p.str(f.v, dataset, ff)
			case "pattern":
				s.Pattern, _ = p.str(f.v, dataset, ff)
			case "replace":
				s.Replace, _ = p.str(f.v, dataset, ff)
			case "first", "last":
				v, _ := p.integer(f.v, dataset, ff)
				if f.key == "first" {
					s.First = int(v)
				} else {
					s.Last = int(v)
				}
			case "char":
				s.Char, _ = p.str(f.v, dataset, ff)
			case "fixed":
				s.Rule = "fixed"
				s.Replace, _ = p.str(f.v, dataset, ff)
			case "keep":
				s.Rule = "keep"
				for _, k := range p.mapping(f.v, dataset, ff, "first", "last") {
					v, _ := p.integer(k.v, dataset, ff+"."+k.key)
					if k.key == "first" {
						s.First = int(v)
					} else {
						s.Last = int(v)
					}
				}
			}
		}
		if s.Rule == "" && s.Pattern != "" {
			s.Rule = "pattern"
		}
	}
	if err := s.Check(); err != nil {
		p.errorf(n.Line, dataset, field, "%s", strings.TrimPrefix(err.Error(), exportd.ErrMaskRule.Error()+": "))
	}
	return s
}

// access parses a dataset's access: block (role → personal column or all
// → full | masked | omitted); checkAccess validates it once the columns
// are known.
func (p *parser) access(d *exportd.Dataset, n *yaml.Node) {
	d.Access = map[string]map[string]string{}
	for _, rk := range p.mapping(n, d.Name, "access") {
		rf := "access." + rk.key
		if !roleNameRE.MatchString(rk.key) {
			p.errorf(rk.k.Line, d.Name, rf, "invalid role name (want letters, digits and _ . : -)")
		}
		m := map[string]string{}
		for _, ck := range p.mapping(rk.v, d.Name, rf) {
			cf := rf + "." + ck.key
			d.Origin.Lines[cf] = ck.k.Line
			s, ok := p.str(ck.v, d.Name, cf)
			if !ok {
				continue
			}
			if s != exportd.AccessFull && s != exportd.AccessMasked && s != exportd.AccessOmitted {
				p.errorf(ck.v.Line, d.Name, cf, "unknown access %q (want full, masked or omitted)", s)
				continue
			}
			m[ck.key] = s
		}
		d.Access[rk.key] = m
	}
}

// checkPersonal validates a dataset's privacy fields once its columns are
// known.
func (p *parser) checkPersonal(d *exportd.Dataset) {
	personalCols := d.PersonalColumns()
	if len(personalCols) > 0 && !d.Personal {
		for i, c := range d.Columns {
			if c.Personal {
				f := fmt.Sprintf("columns[%d].personal", i)
				p.errorf(d.Origin.LineOf(f), d.Name, f, "column %q is personal but the dataset is not marked personal: true", c.Name)
				break
			}
		}
	sheets:
		for i, sh := range d.Sheets {
			for j, c := range sh.Columns {
				if c.Personal {
					f := fmt.Sprintf("sheets[%d].columns[%d].personal", i, j)
					p.errorf(d.Origin.LineOf(f), d.Name, f, "column %q is personal but the dataset is not marked personal: true", c.Name)
					break sheets
				}
			}
		}
	}
	if d.Personal && len(d.AllColumns()) == 0 {
		p.errorf(d.Origin.LineOf("personal"), d.Name, "columns", "a personal dataset must declare its columns (masking and the users' choice of columns apply to them)")
	}
	if d.Access != nil && !d.Personal {
		p.errorf(d.Origin.LineOf("access"), d.Name, "access", "given on a dataset that is not marked personal: true")
	}
	roles := make([]string, 0, len(d.Access))
	for r := range d.Access {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		for c := range d.Access[r] {
			f := "access." + r + "." + c
			switch {
			case c == exportd.AccessAll:
			case !slices.ContainsFunc(d.AllColumns(), func(col exportd.Column) bool { return col.Name == c }):
				p.errorf(d.Origin.LineOf(f), d.Name, f, "%q is not a declared column (want a personal column or all)", c)
			case !slices.Contains(personalCols, c):
				p.errorf(d.Origin.LineOf(f), d.Name, f, "column %q is not personal: every role may see it in full (mark it personal: true to restrict it)", c)
			}
		}
		if len(d.Roles) > 0 && !slices.Contains(d.Roles, r) {
			p.errorf(d.Origin.LineOf("access"), d.Name, "access."+r, "role %q may not run this dataset (roles: %s)", r, strings.Join(d.Roles, ", "))
		}
	}
	if d.Encryption != "" && d.Encryption != exportd.EncryptionOptional && d.Encryption != exportd.EncryptionRequired {
		p.errorf(d.Origin.LineOf("encryption"), d.Name, "encryption", "unknown value %q (want optional or required)", d.Encryption)
	}
}
