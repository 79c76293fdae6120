package datasets

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/internal/sqlparam"
	"go.yaml.in/yaml/v3"
)

var datasetFields = []string{"title", "description", "connection", "sql", "params", "columns", "sheet", "sheets", "total_label", "filename", "row_limit", "timeout", "max_duration", "key", "roles", "pin", "personal", "access", "encryption", "marking", "schedules"}

func (p *parser) dataset(cfg *exportd.Config, kv pair) *exportd.Dataset {
	d := &exportd.Dataset{Name: kv.key, Origin: exportd.Origin{File: p.file, Line: kv.k.Line, Lines: map[string]int{}}}
	name := d.Name
	if !datasetNameRE.MatchString(name) {
		p.errorf(kv.k.Line, name, "", "invalid dataset name (want [a-z0-9_-]+)")
	}
	var paramsNode, columnsNode, pinNode, accessNode, sheetsNode, schedulesNode *yaml.Node
	for _, f := range p.mapping(kv.v, name, "", datasetFields...) {
		d.Origin.Lines[f.key] = f.k.Line
		switch f.key {
		case "title":
			d.Title, _ = p.str(f.v, name, f.key)
		case "description":
			d.Description, _ = p.str(f.v, name, f.key)
		case "connection":
			d.Connection, _ = p.str(f.v, name, f.key)
		case "sql":
			var ok bool
			d.SQL, ok = p.str(f.v, name, f.key)
			if f.v.Style == yaml.LiteralStyle || f.v.Style == yaml.FoldedStyle {
				d.Origin.Lines["sql"] = f.v.Line + 1 // the text starts on the next line
				d.Origin.SQLBlock = f.v.Style == yaml.LiteralStyle
			}
			if ok && strings.TrimSpace(d.SQL) == "" {
				p.errorf(d.Origin.LineOf("sql"), name, "sql", "empty")
			}
		case "params":
			paramsNode = f.v
		case "columns":
			columnsNode = f.v
		case "sheet":
			d.Sheet, _ = p.str(f.v, name, f.key)
		case "sheets":
			sheetsNode = f.v
		case "total_label":
			d.TotalLabel, _ = p.str(f.v, name, f.key)
		case "filename":
			d.FileName, _ = p.str(f.v, name, f.key)
		case "row_limit":
			d.RowLimit, _ = p.integer(f.v, name, f.key)
			if d.RowLimit < 0 {
				p.errorf(f.v.Line, name, f.key, "must not be negative (0 means no limit)")
			}
		case "timeout":
			d.Timeout = p.duration(f.v, name, f.key)
		case "max_duration":
			d.MaxDuration = p.duration(f.v, name, f.key)
		case "key":
			d.Key, _ = p.str(f.v, name, f.key)
		case "roles":
			d.Roles = p.roles(f.v, name, f.key)
		case "pin":
			pinNode = f.v
		case "personal":
			d.Personal = p.boolean(f.v, name, f.key)
		case "access":
			accessNode = f.v
		case "encryption":
			d.Encryption, _ = p.str(f.v, name, f.key)
		case "marking":
			d.Marking = p.boolean(f.v, name, f.key)
		case "schedules":
			schedulesNode = f.v
		}
	}
	if deref(kv.v).Kind != yaml.MappingNode {
		return d
	}

	// connection
	conn, connOK := p.datasetConnection(cfg, d)

	// sql, or sheets
	_, hasSQL := d.Origin.Lines["sql"]
	if sheetsNode != nil {
		// One query or several: the fields of one query are the sheets'.
		for _, f := range []string{"sql", "columns", "sheet", "key"} {
			if _, given := d.Origin.Lines[f]; given {
				why := map[string]string{
					"sql":     "each sheet has its own sql",
					"columns": "each sheet declares its own columns",
					"sheet":   "each sheet has its name",
					"key":     "a dataset of several sheets is not downloaded in parts",
				}[f]
				p.errorf(d.Origin.LineOf(f), name, f, "given together with sheets: (%s)", why)
			}
		}
	} else if !hasSQL {
		p.errorf(d.Origin.Line, name, "sql", "missing")
	}

	// params
	if paramsNode != nil {
		p.params(cfg, d, paramsNode)
	}
	dialect := sqlparam.SQLite
	if connOK {
		dialect = sqlparam.Of(conn.Driver())
	}
	used := map[string]bool{}
	for _, u := range paramUses(d.SQL, dialect) {
		used[u.name] = true
		if _, ok := d.Param(u.name); !ok {
			p.errorf(sqlLine(d, u.offset), name, "sql", "uses :%s, which is not declared in params", u.name)
		}
	}
	anySQL := strings.TrimSpace(d.SQL) != ""
	if sheetsNode != nil {
		anySQL = p.sheets(cfg, d, sheetsNode, used) || anySQL
	}
	for i, prm := range d.Params {
		if exportd.ValidParamName(prm.Name) && !used[prm.Name] && anySQL {
			f := fmt.Sprintf("params[%d].name", i)
			p.errorf(d.Origin.LineOf(f), name, f, "parameter %q is declared but the sql never uses :%s", prm.Name, prm.Name)
		}
	}

	// pin
	if pinNode != nil {
		p.pins(d, pinNode)
		p.checkPins(cfg, d)
	}

	// columns
	if columnsNode != nil {
		d.Columns = p.columns(d, columnsNode, "")
	}

	// personal, access, encryption (privacy.go)
	if accessNode != nil {
		p.access(d, accessNode)
	}
	p.checkPersonal(d)

	// sheet
	if _, given := d.Origin.Lines["sheet"]; given {
		if msg := sheetNameProblem(d.Sheet); msg != "" {
			p.errorf(d.Origin.LineOf("sheet"), name, "sheet", "%s", msg)
		}
	}

	// filename
	if _, given := d.Origin.Lines["filename"]; given {
		fields, msg := exportd.FileNameFields(d.FileName)
		if msg != "" {
			p.errorf(d.Origin.LineOf("filename"), name, "filename", "%s", msg)
		}
		for _, f := range fields {
			if _, ok := d.Param(f); !ok && exportd.ValidParamName(f) {
				p.errorf(d.Origin.LineOf("filename"), name, "filename", "{%s} is not a declared parameter", f)
			}
		}
		if strings.TrimSpace(d.FileName) == "" {
			p.errorf(d.Origin.LineOf("filename"), name, "filename", "empty")
		}
	}

	// key
	if _, given := d.Origin.Lines["key"]; given {
		switch {
		case strings.TrimSpace(d.Key) == "":
			p.errorf(d.Origin.LineOf("key"), name, "key", "empty")
		case len(d.Columns) > 0 && !slices.ContainsFunc(d.Columns, func(c exportd.Column) bool { return c.Name == d.Key }):
			p.errorf(d.Origin.LineOf("key"), name, "key", "%q is not a declared column", d.Key)
		}
	}
	// schedules (schedule.go), once the rest of the dataset is known
	if schedulesNode != nil {
		p.schedules(cfg, d, schedulesNode)
	}
	return d
}

// sqlLine returns the line of byte offset off of the dataset's SQL, when
// the SQL is a literal block (|), else the line of the sql field.
func sqlLine(d *exportd.Dataset, off int) int {
	if !d.Origin.SQLBlock {
		return d.Origin.LineOf("sql")
	}
	return d.Origin.LineOf("sql") + strings.Count(d.SQL[:off], "\n")
}

func (p *parser) datasetConnection(cfg *exportd.Config, d *exportd.Dataset) (exportd.Connection, bool) {
	names := make([]string, 0, len(cfg.Connections))
	for n := range cfg.Connections {
		names = append(names, n)
	}
	sort.Strings(names)
	if _, given := d.Origin.Lines["connection"]; !given {
		switch len(names) {
		case 0:
			return exportd.Connection{}, false
		case 1:
			d.Connection = names[0]
			return cfg.Connections[names[0]], true
		}
		p.errorf(d.Origin.Line, d.Name, "connection", "missing (the file has several connections: %s)", strings.Join(names, ", "))
		return exportd.Connection{}, false
	}
	c, ok := cfg.Connections[d.Connection]
	if !ok {
		p.errorf(d.Origin.LineOf("connection"), d.Name, "connection", "unknown connection %q (want %s)", d.Connection, strings.Join(names, ", "))
	}
	return c, ok
}

var paramFields = []string{"name", "label", "description", "type", "list", "required", "default", "min", "max", "max_length", "pattern", "values"}

func (p *parser) params(cfg *exportd.Config, d *exportd.Dataset, n *yaml.Node) {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.errorf(n.Line, d.Name, "params", "want a list, got %s", describeNode(n))
		return
	}
	seen := map[string]int{}
	for i, e := range n.Content {
		field := fmt.Sprintf("params[%d]", i)
		prm := exportd.Param{}
		lines := map[string]int{}
		for _, f := range p.mapping(e, d.Name, field, paramFields...) {
			ff := field + "." + f.key
			lines[f.key] = f.k.Line
			switch f.key {
			case "name":
				prm.Name, _ = p.str(f.v, d.Name, ff)
			case "label":
				prm.Label, _ = p.str(f.v, d.Name, ff)
			case "description":
				prm.Description, _ = p.str(f.v, d.Name, ff)
			case "type":
				s, _ := p.str(f.v, d.Name, ff)
				prm.Type = exportd.ParamType(s)
			case "list":
				prm.List = p.boolean(f.v, d.Name, ff)
			case "required":
				prm.Required = p.boolean(f.v, d.Name, ff)
			case "default":
				if f.v.Kind == yaml.ScalarNode && f.v.Tag == "!!null" {
					continue
				}
				prm.Default, _ = p.strList(f.v, d.Name, ff)
			case "min":
				prm.Min, _ = p.str(f.v, d.Name, ff)
			case "max":
				prm.Max, _ = p.str(f.v, d.Name, ff)
			case "max_length":
				v, _ := p.integer(f.v, d.Name, ff)
				prm.MaxLength = int(v)
			case "pattern":
				prm.Pattern, _ = p.str(f.v, d.Name, ff)
			case "values":
				prm.Values, _ = p.strList(f.v, d.Name, ff)
			}
		}
		line := deref(e).Line
		d.Origin.Lines[field+".name"] = line
		if l, ok := lines["name"]; ok {
			d.Origin.Lines[field+".name"] = l
		}
		if deref(e).Kind != yaml.MappingNode {
			continue
		}
		if _, ok := lines["name"]; !ok {
			p.errorf(line, d.Name, field+".name", "missing")
		} else if first, dup := seen[prm.Name]; dup && prm.Name != "" {
			p.errorf(lines["name"], d.Name, field+".name", "repeated parameter %q (also params[%d])", prm.Name, first)
		} else {
			seen[prm.Name] = i
		}
		for _, pr := range prm.Check(cfg.Location) {
			if pr.Field == "name" && lines["name"] == 0 {
				continue // reported as missing above
			}
			key, _, _ := strings.Cut(pr.Field, "[")
			l, ok := lines[key]
			if !ok {
				l = line
			}
			p.errorf(l, d.Name, field+"."+pr.Field, "%s", pr.Msg)
		}
		d.Params = append(d.Params, prm)
	}
}

var columnFields = []string{"name", "header", "type", "format", "width", "personal", "mask", "total"}

// columns parses a list of columns: the dataset's (prefix "") or a
// sheet's (prefix "sheets[i].").
func (p *parser) columns(d *exportd.Dataset, n *yaml.Node, prefix string) []exportd.Column {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.errorf(n.Line, d.Name, prefix+"columns", "want a list, got %s", describeNode(n))
		return nil
	}
	var out []exportd.Column
	seen := map[string]int{}
	for i, e := range n.Content {
		field := fmt.Sprintf("%scolumns[%d]", prefix, i)
		var c exportd.Column
		given := map[string]int{}
		for _, f := range p.mapping(e, d.Name, field, columnFields...) {
			ff := field + "." + f.key
			given[f.key] = f.k.Line
			d.Origin.Lines[ff] = f.k.Line
			switch f.key {
			case "name":
				c.Name, _ = p.str(f.v, d.Name, ff)
			case "header":
				c.Header, _ = p.str(f.v, d.Name, ff)
			case "type":
				s, _ := p.str(f.v, d.Name, ff)
				c.Type = exportd.Type(s)
				if !slices.Contains(exportd.ColumnTypes, c.Type) {
					names := make([]string, len(exportd.ColumnTypes))
					for i, t := range exportd.ColumnTypes {
						names[i] = string(t)
					}
					p.errorf(f.v.Line, d.Name, ff, "unknown type %q (want %s)", s, strings.Join(names, ", "))
				}
			case "format":
				c.Format, _ = p.str(f.v, d.Name, ff)
				if strings.TrimSpace(c.Format) == "" && f.v.Tag != "!!null" {
					p.errorf(f.v.Line, d.Name, ff, "empty number format (leave the field out for the default)")
				}
			case "width":
				c.Width, _ = p.number(f.v, d.Name, ff)
				if c.Width < 0 || c.Width > 255 {
					p.errorf(f.v.Line, d.Name, ff, "must be between 0 and 255 characters")
				}
			case "personal":
				c.Personal = p.boolean(f.v, d.Name, ff)
			case "mask":
				c.Mask = p.maskSpec(f.v, d.Name, ff)
			case "total":
				s, _ := p.str(f.v, d.Name, ff)
				c.Total = exportd.TotalFunc(s)
				if !slices.Contains(exportd.TotalFuncs, c.Total) {
					names := make([]string, len(exportd.TotalFuncs))
					for i, t := range exportd.TotalFuncs {
						names[i] = string(t)
					}
					p.errorf(f.v.Line, d.Name, ff, "unknown total %q (want %s)", s, strings.Join(names, ", "))
				}
			}
		}
		line := deref(e).Line
		if _, ok := d.Origin.Lines[field+".name"]; !ok {
			d.Origin.Lines[field+".name"] = line
		}
		if deref(e).Kind != yaml.MappingNode {
			continue
		}
		switch l, ok := given["name"]; {
		case !ok:
			p.errorf(line, d.Name, field+".name", "missing")
		case strings.TrimSpace(c.Name) == "":
			p.errorf(l, d.Name, field+".name", "empty")
		default:
			if first, dup := seen[c.Name]; dup {
				p.errorf(l, d.Name, field+".name", "repeated column %q (also %scolumns[%d])", c.Name, prefix, first)
			} else {
				seen[c.Name] = i
			}
		}
		if c.Mask != nil && !c.Personal {
			p.errorf(given["mask"], d.Name, field+".mask", "given on a column that is not personal: true")
		}
		if l, ok := given["total"]; ok && c.Total != "" && c.Type != "" && !numericType(c.Type) {
			p.errorf(l, d.Name, field+".total", "a total needs a numeric column (type int, float or decimal); %q is %s", c.Name, c.Type)
		}
		out = append(out, c)
	}
	return out
}

// numericType reports whether a column of type t holds numbers a total
// can add up.
func numericType(t exportd.Type) bool {
	return t == exportd.TypeInt || t == exportd.TypeFloat || t == exportd.TypeDecimal
}

var sheetFields = []string{"name", "connection", "sql", "columns"}

// sheets parses a dataset's sheets: list (each with its name, sql,
// columns and optionally connection), notes the parameters their queries
// use in used, and reports whether any sheet has SQL.
func (p *parser) sheets(cfg *exportd.Config, d *exportd.Dataset, n *yaml.Node, used map[string]bool) bool {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.errorf(n.Line, d.Name, "sheets", "want a list, got %s", describeNode(n))
		return false
	}
	if len(n.Content) == 0 {
		p.errorf(n.Line, d.Name, "sheets", "empty (want at least one sheet; a dataset of one query has sql: instead)")
		return false
	}
	anySQL := false
	seen := map[string]int{} // lower-cased names: Excel compares them so
	for i, e := range n.Content {
		field := fmt.Sprintf("sheets[%d]", i)
		var sh exportd.Sheet
		given := map[string]int{}
		var columnsNode *yaml.Node
		sqlLine0, sqlBlock := 0, false
		for _, f := range p.mapping(e, d.Name, field, sheetFields...) {
			ff := field + "." + f.key
			given[f.key] = f.k.Line
			d.Origin.Lines[ff] = f.k.Line
			switch f.key {
			case "name":
				sh.Name, _ = p.str(f.v, d.Name, ff)
			case "connection":
				sh.Connection, _ = p.str(f.v, d.Name, ff)
			case "sql":
				var ok bool
				sh.SQL, ok = p.str(f.v, d.Name, ff)
				sqlLine0 = f.k.Line
				if f.v.Style == yaml.LiteralStyle || f.v.Style == yaml.FoldedStyle {
					sqlLine0 = f.v.Line + 1
					sqlBlock = f.v.Style == yaml.LiteralStyle
					d.Origin.Lines[ff] = sqlLine0
				}
				if ok && strings.TrimSpace(sh.SQL) == "" {
					p.errorf(sqlLine0, d.Name, ff, "empty")
				}
			case "columns":
				columnsNode = f.v
			}
		}
		line := deref(e).Line
		if _, ok := d.Origin.Lines[field+".name"]; !ok {
			d.Origin.Lines[field+".name"] = line
		}
		if deref(e).Kind != yaml.MappingNode {
			continue
		}
		if l, ok := given["name"]; !ok {
			p.errorf(line, d.Name, field+".name", "missing")
		} else if msg := sheetNameProblem(sh.Name); msg != "" {
			p.errorf(l, d.Name, field+".name", "%s", msg)
		} else if strings.Contains(sh.Name, ",") {
			p.errorf(l, d.Name, field+".name", "must not contain a comma (columns= separates SHEET.COLUMN names with commas)")
		} else if first, dup := seen[strings.ToLower(sh.Name)]; dup {
			p.errorf(l, d.Name, field+".name", "repeated sheet %q (also sheets[%d]; Excel compares sheet names without case)", sh.Name, first)
		} else {
			seen[strings.ToLower(sh.Name)] = i
		}
		dialect := sqlparam.SQLite
		if l, ok := given["connection"]; ok {
			c, known := cfg.Connections[sh.Connection]
			if !known {
				names := make([]string, 0, len(cfg.Connections))
				for n := range cfg.Connections {
					names = append(names, n)
				}
				sort.Strings(names)
				p.errorf(l, d.Name, field+".connection", "unknown connection %q (want %s)", sh.Connection, strings.Join(names, ", "))
			} else {
				dialect = sqlparam.Of(c.Driver())
			}
			if sh.Connection == d.Connection {
				sh.Connection = "" // the dataset's
			}
		} else if c, ok := cfg.Connections[d.Connection]; ok {
			dialect = sqlparam.Of(c.Driver())
		}
		if _, ok := given["sql"]; !ok {
			p.errorf(line, d.Name, field+".sql", "missing")
		} else if strings.TrimSpace(sh.SQL) != "" {
			anySQL = true
		}
		for _, u := range paramUses(sh.SQL, dialect) {
			used[u.name] = true
			if _, ok := d.Param(u.name); !ok {
				l := sqlLine0
				if sqlBlock {
					l += strings.Count(sh.SQL[:u.offset], "\n")
				}
				p.errorf(l, d.Name, field+".sql", "uses :%s, which is not declared in params", u.name)
			}
		}
		if columnsNode == nil {
			p.errorf(line, d.Name, field+".columns", "missing (each sheet declares its columns: its header leaves before its query runs)")
		} else {
			sh.Columns = p.columns(d, columnsNode, field+".")
			if len(sh.Columns) == 0 && deref(columnsNode).Kind == yaml.SequenceNode {
				p.errorf(given["columns"], d.Name, field+".columns", "empty")
			}
		}
		d.Sheets = append(d.Sheets, sh)
	}
	return anySQL
}

// sheetNameProblem returns why s is not a valid worksheet name, or "".
func sheetNameProblem(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "empty"
	case utf8.RuneCountInString(s) > exportd.MaxSheetName:
		return fmt.Sprintf("longer than %d characters", exportd.MaxSheetName)
	case strings.ContainsAny(s, `[]:*?/\`):
		return `must not contain any of [ ] : * ? / \`
	case strings.HasPrefix(s, "'") || strings.HasSuffix(s, "'"):
		return "must not begin or end with an apostrophe"
	case strings.EqualFold(s, "History"):
		return `"History" is reserved by Excel`
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "must not contain control characters"
		}
	}
	return ""
}

// paramUse is one use of a named parameter in SQL, at byte offset offset.
type paramUse struct {
	name   string
	offset int
}

// paramUses returns every use of a named parameter in sql.
func paramUses(sql string, d sqlparam.Dialect) []paramUse {
	var (
		uses []paramUse
		b    strings.Builder
	)
	sqlparam.Scan(sql, d, func(name string) string {
		// b holds sql up to the parameter, since each is replaced by itself.
		uses = append(uses, paramUse{name, b.Len()})
		return ":" + name
	}, &b)
	return uses
}
