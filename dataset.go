package exportd

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Dataset is one named export declared in a datasets file: parameterised
// SQL, its typed parameters and the columns of its result.
type Dataset struct {
	Name        string // [a-z0-9_-]+
	Title       string
	Description string
	Connection  string // the name of a connection of the config
	SQL         string // with named parameters :name, always bound
	Params      []Param
	Columns     []Column // declared output columns; none means "as the query returns them"
	Sheet       string   // worksheet name; see SheetName
	FileName    string   // file-name template with {param} fields; see FileNameFor
	RowLimit    int64    // most rows of a direct download; 0 = no limit
	Timeout     time.Duration
	MaxDuration time.Duration
	Key         string // key column for keyset-partitioned downloads; "" = none
	// Roles may run the dataset; none means any authenticated principal.
	Roles []string
	// Pins fixes parameters per role: role → parameter → pin. See
	// [Dataset.PinsFor] and [Dataset.ApplyPins].
	Pins map[string]map[string]Pin
	// Personal marks a dataset holding personal data: an export needs a
	// stated purpose and is recorded in the audit trail (see PrivacyConfig).
	Personal bool
	// Access says, per role, which personal columns it sees: role →
	// column (or AccessAll) → AccessFull, AccessMasked or AccessOmitted.
	Access map[string]map[string]string
	// Encryption is "", EncryptionOptional or EncryptionRequired: whether
	// an XLSX may or must be password-protected.
	Encryption string
	// Marking puts the downloader and the time in the sheet's printed
	// header/footer and in the document properties.
	Marking bool
	// Sheets, when not empty, are the dataset's sheets: it has no SQL and
	// no Columns of its own then (see [Sheet]).
	Sheets []Sheet
	// TotalLabel is the label of a totals row; "" means DefaultTotalLabel.
	TotalLabel string

	file  string         // the config file it was read from
	line  int            // the line of its name
	lines map[string]int // field (as in ConfigError.Field) → line
	// sqlBlock is true when the SQL is a literal block (|), so that the
	// line of each of its lines is known.
	sqlBlock bool
}

// Query returns the dataset's query with the given bound parameters (see
// [Dataset.BindParams]) and its statement timeout.
func (d *Dataset) Query(params map[string]any) Query {
	return Query{SQL: d.SQL, Params: params, Timeout: d.Timeout}
}

// SheetName returns the worksheet name: Sheet, else the dataset's name cut
// to Excel's 31 characters.
func (d *Dataset) SheetName() string {
	if d.Sheet != "" {
		return d.Sheet
	}
	if r := []rune(d.Name); len(r) > maxSheetName {
		return string(r[:maxSheetName])
	}
	return d.Name
}

// lineOf returns the line of field, else the line of the dataset.
func (d *Dataset) lineOf(field string) int {
	if l, ok := d.lines[field]; ok {
		return l
	}
	return d.line
}

const maxSheetName = 31

var datasetFields = []string{"title", "description", "connection", "sql", "params", "columns", "sheet", "filename", "row_limit", "timeout", "max_duration", "key", "roles", "pin", "personal", "access", "encryption", "marking"}

func (p *parser) dataset(cfg *Config, kv pair) *Dataset {
	d := &Dataset{Name: kv.key, file: p.file, line: kv.k.Line, lines: map[string]int{}}
	name := d.Name
	if !datasetNameRE.MatchString(name) {
		p.errorf(kv.k.Line, name, "", "invalid dataset name (want [a-z0-9_-]+)")
	}
	var paramsNode, columnsNode, pinNode, accessNode *yaml.Node
	for _, f := range p.mapping(kv.v, name, "", datasetFields...) {
		d.lines[f.key] = f.k.Line
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
				d.lines["sql"] = f.v.Line + 1 // the text starts on the next line
				d.sqlBlock = f.v.Style == yaml.LiteralStyle
			}
			if ok && strings.TrimSpace(d.SQL) == "" {
				p.errorf(d.lineOf("sql"), name, "sql", "empty")
			}
		case "params":
			paramsNode = f.v
		case "columns":
			columnsNode = f.v
		case "sheet":
			d.Sheet, _ = p.str(f.v, name, f.key)
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
		}
	}
	if deref(kv.v).Kind != yaml.MappingNode {
		return d
	}

	// connection
	conn, connOK := p.datasetConnection(cfg, d)

	// sql
	if _, ok := d.lines["sql"]; !ok {
		p.errorf(d.line, name, "sql", "missing")
	}

	// params
	if paramsNode != nil {
		p.params(cfg, d, paramsNode)
	}
	dialect := DialectSQLite
	if connOK {
		dialect = conn.Dialect()
	}
	used := map[string]bool{}
	for _, u := range paramUses(d.SQL, dialect) {
		used[u.name] = true
		if _, ok := d.Param(u.name); !ok {
			p.errorf(d.sqlLine(u.offset), name, "sql", "uses :%s, which is not declared in params", u.name)
		}
	}
	for i, prm := range d.Params {
		if paramNameRE.MatchString(prm.Name) && !used[prm.Name] && strings.TrimSpace(d.SQL) != "" {
			f := fmt.Sprintf("params[%d].name", i)
			p.errorf(d.lineOf(f), name, f, "parameter %q is declared but the sql never uses :%s", prm.Name, prm.Name)
		}
	}

	// pin
	if pinNode != nil {
		p.pins(d, pinNode)
		p.checkPins(cfg, d)
	}

	// columns
	if columnsNode != nil {
		p.columns(d, columnsNode)
	}

	// personal, access, encryption (privacy.go)
	if accessNode != nil {
		p.access(d, accessNode)
	}
	p.checkPersonal(d)

	// sheet
	if _, given := d.lines["sheet"]; given {
		if msg := sheetNameProblem(d.Sheet); msg != "" {
			p.errorf(d.lineOf("sheet"), name, "sheet", "%s", msg)
		}
	}

	// filename
	if _, given := d.lines["filename"]; given {
		fields, msg := templateFields(d.FileName)
		if msg != "" {
			p.errorf(d.lineOf("filename"), name, "filename", "%s", msg)
		}
		for _, f := range fields {
			if _, ok := d.Param(f); !ok && paramNameRE.MatchString(f) {
				p.errorf(d.lineOf("filename"), name, "filename", "{%s} is not a declared parameter", f)
			}
		}
		if strings.TrimSpace(d.FileName) == "" {
			p.errorf(d.lineOf("filename"), name, "filename", "empty")
		}
	}

	// key
	if _, given := d.lines["key"]; given {
		switch {
		case strings.TrimSpace(d.Key) == "":
			p.errorf(d.lineOf("key"), name, "key", "empty")
		case len(d.Columns) > 0 && !slices.ContainsFunc(d.Columns, func(c Column) bool { return c.Name == d.Key }):
			p.errorf(d.lineOf("key"), name, "key", "%q is not a declared column", d.Key)
		}
	}
	return d
}

// sqlLine returns the line of byte offset off of the dataset's SQL, when
// the SQL is a literal block (|), else the line of the sql field.
func (d *Dataset) sqlLine(off int) int {
	if !d.sqlBlock {
		return d.lineOf("sql")
	}
	return d.lineOf("sql") + strings.Count(d.SQL[:off], "\n")
}

func (p *parser) datasetConnection(cfg *Config, d *Dataset) (Connection, bool) {
	names := make([]string, 0, len(cfg.Connections))
	for n := range cfg.Connections {
		names = append(names, n)
	}
	sort.Strings(names)
	if _, given := d.lines["connection"]; !given {
		switch len(names) {
		case 0:
			return Connection{}, false
		case 1:
			d.Connection = names[0]
			return cfg.Connections[names[0]], true
		}
		p.errorf(d.line, d.Name, "connection", "missing (the file has several connections: %s)", strings.Join(names, ", "))
		return Connection{}, false
	}
	c, ok := cfg.Connections[d.Connection]
	if !ok {
		p.errorf(d.lineOf("connection"), d.Name, "connection", "unknown connection %q (want %s)", d.Connection, strings.Join(names, ", "))
	}
	return c, ok
}

var paramFields = []string{"name", "label", "description", "type", "list", "required", "default", "min", "max", "max_length", "pattern", "values"}

func (p *parser) params(cfg *Config, d *Dataset, n *yaml.Node) {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.errorf(n.Line, d.Name, "params", "want a list, got %s", describeNode(n))
		return
	}
	seen := map[string]int{}
	for i, e := range n.Content {
		field := fmt.Sprintf("params[%d]", i)
		prm := Param{}
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
				prm.Type = ParamType(s)
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
		d.lines[field+".name"] = line
		if l, ok := lines["name"]; ok {
			d.lines[field+".name"] = l
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
		for _, pr := range prm.check(cfg.Location) {
			if pr.field == "name" && lines["name"] == 0 {
				continue // reported as missing above
			}
			key, _, _ := strings.Cut(pr.field, "[")
			l, ok := lines[key]
			if !ok {
				l = line
			}
			p.errorf(l, d.Name, field+"."+pr.field, "%s", pr.msg)
		}
		d.Params = append(d.Params, prm)
	}
}

var columnFields = []string{"name", "header", "type", "format", "width", "personal", "mask"}

// ColumnTypes lists the valid declared column types.
var ColumnTypes = []Type{TypeString, TypeInt, TypeFloat, TypeDecimal, TypeBool, TypeDate, TypeDateTime}

func (p *parser) columns(d *Dataset, n *yaml.Node) {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.errorf(n.Line, d.Name, "columns", "want a list, got %s", describeNode(n))
		return
	}
	seen := map[string]int{}
	for i, e := range n.Content {
		field := fmt.Sprintf("columns[%d]", i)
		var c Column
		given := map[string]int{}
		for _, f := range p.mapping(e, d.Name, field, columnFields...) {
			ff := field + "." + f.key
			given[f.key] = f.k.Line
			d.lines[ff] = f.k.Line
			switch f.key {
			case "name":
				c.Name, _ = p.str(f.v, d.Name, ff)
			case "header":
				c.Header, _ = p.str(f.v, d.Name, ff)
			case "type":
				s, _ := p.str(f.v, d.Name, ff)
				c.Type = Type(s)
				if !slices.Contains(ColumnTypes, c.Type) {
					names := make([]string, len(ColumnTypes))
					for i, t := range ColumnTypes {
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
			}
		}
		line := deref(e).Line
		if _, ok := d.lines[field+".name"]; !ok {
			d.lines[field+".name"] = line
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
				p.errorf(l, d.Name, field+".name", "repeated column %q (also columns[%d])", c.Name, first)
			} else {
				seen[c.Name] = i
			}
		}
		if c.Mask != nil && !c.Personal {
			p.errorf(given["mask"], d.Name, field+".mask", "given on a column that is not personal: true")
		}
		d.Columns = append(d.Columns, c)
	}
}

// sheetNameProblem returns why s is not a valid worksheet name, or "".
func sheetNameProblem(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "empty"
	case utf8.RuneCountInString(s) > maxSheetName:
		return fmt.Sprintf("longer than %d characters", maxSheetName)
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

var templateFieldRE = regexp.MustCompile(`\{([^{}]*)\}`)

// templateFields returns the {field} names of a file-name template, and a
// message when a brace is unbalanced or a field is not a parameter name.
func templateFields(t string) ([]string, string) {
	var fields []string
	msg := ""
	for _, m := range templateFieldRE.FindAllStringSubmatch(t, -1) {
		if !paramNameRE.MatchString(m[1]) && msg == "" {
			msg = fmt.Sprintf("{%s} is not a parameter name", m[1])
		}
		fields = append(fields, m[1])
	}
	if rest := templateFieldRE.ReplaceAllString(t, ""); strings.ContainsAny(rest, "{}") && msg == "" {
		msg = "unbalanced { or } (write {param} to insert a parameter)"
	}
	return fields, msg
}

// paramUse is one use of a named parameter in SQL, at byte offset offset.
type paramUse struct {
	name   string
	offset int
}

// paramUses returns every use of a named parameter in sql.
func paramUses(sql string, d Dialect) []paramUse {
	var (
		uses []paramUse
		b    strings.Builder
	)
	scanNamed(sql, d, func(name string) string {
		// b holds sql up to the parameter, since each is replaced by itself.
		uses = append(uses, paramUse{name, b.Len()})
		return ":" + name
	}, &b)
	return uses
}
