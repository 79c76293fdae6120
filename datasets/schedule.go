package datasets

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/exportd/exportd"
)

var scheduleFields = []string{"name", "cron", "timezone", "format", "params", "columns", "owner", "purpose", "email", "webhook", "attach", "keep"}

// schedules reads a dataset's schedules: list (see exportd.Schedule) and
// checks each one (exportd.Schedule.Validate: the cron expression, the
// parameters resolved for the next run, the owner, the purpose, the
// recipients), every mistake with its line and field.
func (p *parser) schedules(cfg *exportd.Config, d *exportd.Dataset, n *yaml.Node) {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.errorf(n.Line, d.Name, "schedules", "want a list of schedules, got %s", describeNode(n))
		return
	}
	seen := map[string]int{}
	for i, e := range n.Content {
		field := fmt.Sprintf("schedules[%d]", i)
		s := p.schedule(cfg, d, deref(e), field)
		if s == nil {
			continue
		}
		if first, dup := seen[s.Name]; dup && s.Name != "" {
			p.errorf(s.Line, d.Name, field+".name", "schedule %q is declared twice (first at line %d)", s.Name, first)
			continue
		}
		seen[s.Name] = s.Line
		d.Schedules = append(d.Schedules, s)
	}
}

func (p *parser) schedule(cfg *exportd.Config, d *exportd.Dataset, n *yaml.Node, field string) *exportd.Schedule {
	name := d.Name
	s := &exportd.Schedule{Dataset: d.Name, Line: n.Line, Timezone: cfg.Timezone, Location: cfg.Location}
	lines := map[string]int{}
	pairs := p.mapping(n, name, field, scheduleFields...)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	errs := len(p.errs)
	for _, f := range pairs {
		ff := field + "." + f.key
		lines[f.key] = f.k.Line
		switch f.key {
		case "name":
			s.Name, _ = p.str(f.v, name, ff)
		case "cron":
			s.Cron, _ = p.str(f.v, name, ff)
		case "timezone":
			if tz, ok := p.str(f.v, name, ff); ok {
				loc, err := time.LoadLocation(tz)
				if err != nil || tz == "" {
					p.errorf(f.v.Line, name, ff, "unknown time zone %q (want an IANA name such as Asia/Seoul or UTC)", tz)
				} else {
					s.Timezone, s.Location = tz, loc
				}
			}
		case "format":
			if v, ok := p.str(f.v, name, ff); ok {
				s.Format = exportd.Format(v)
			}
		case "params":
			s.Params = map[string][]string{}
			for _, kv := range p.mapping(f.v, name, ff) {
				lines["params."+kv.key] = kv.k.Line
				if vals, ok := p.strList(kv.v, name, ff+"."+kv.key); ok {
					s.Params[kv.key] = vals
				}
			}
		case "columns":
			s.Columns, _ = p.strList(f.v, name, ff)
		case "owner":
			for _, o := range p.mapping(f.v, name, ff, "name", "roles", "attrs") {
				lines["owner."+o.key] = o.k.Line
				switch o.key {
				case "name":
					s.Owner.Name, _ = p.str(o.v, name, ff+".name")
				case "roles":
					s.Owner.Roles = p.roles(o.v, name, ff+".roles")
				case "attrs":
					s.Owner.Attrs = map[string]string{}
					for _, a := range p.mapping(o.v, name, ff+".attrs") {
						if v, ok := p.str(a.v, name, ff+".attrs."+a.key); ok {
							s.Owner.Attrs[a.key] = v
						}
					}
				}
			}
		case "purpose":
			for _, o := range p.mapping(f.v, name, ff, "category", "text") {
				lines["purpose."+o.key] = o.k.Line
				switch o.key {
				case "category":
					s.Purpose, _ = p.str(o.v, name, ff+".category")
				case "text":
					s.PurposeText, _ = p.str(o.v, name, ff+".text")
				}
			}
		case "email":
			s.Email, _ = p.strList(f.v, name, ff)
		case "webhook":
			hooks, _ := p.strList(f.v, name, ff)
			for i, h := range hooks {
				// A webhook URL may carry a token: ${VAR} from the environment.
				u, err := p.expandEnv(h)
				if err != nil {
					p.errorf(f.v.Line, name, fmt.Sprintf("%s[%d]", ff, i), "%v", err)
				}
				s.Webhooks = append(s.Webhooks, u)
			}
		case "attach":
			s.Attach = p.boolean(f.v, name, ff)
		case "keep":
			s.Keep = p.duration(f.v, name, ff)
		}
	}
	if _, ok := lines["name"]; !ok {
		p.errorf(n.Line, name, field+".name", "missing (want [a-z0-9_-]+, unique in the dataset)")
	}
	if _, ok := lines["cron"]; !ok {
		p.errorf(n.Line, name, field+".cron", "missing (want e.g. \"30 0 1 * *\": 00:30 on the 1st of each month)")
	}
	if _, ok := lines["owner"]; !ok {
		p.errorf(n.Line, name, field+".owner", "missing: the principal the file is made for, e.g. {name: kim, roles: [manager]}")
	}
	bad := func(f string) bool { // a field already reported (its type), or within one
		for _, e := range p.errs[errs:] {
			if e.Field == f || strings.HasPrefix(f, e.Field+".") || strings.HasPrefix(f, e.Field+"[") {
				return true
			}
		}
		return false
	}
	lineOf := func(f string) int {
		for f != "" {
			if l, ok := lines[f]; ok {
				return l
			}
			i := strings.LastIndexAny(f, ".[")
			if i < 0 {
				break
			}
			f = f[:i]
		}
		return s.Line
	}
	for _, prob := range s.Validate(cfg, d, time.Now()) { // every problem, at its field's line
		if bad(field + "." + prob.Field) {
			continue
		}
		p.errorf(lineOf(prob.Field), name, field+"."+prob.Field, "%s", prob.Msg)
	}
	return s
}
