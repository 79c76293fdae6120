package datasets

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/exportd/exportd"
	"go.yaml.in/yaml/v3"
)

var (
	datasetNameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)
	yamlErrorRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	envVarRE      = regexp.MustCompile(`\$\{([^}]*)\}`)
)

// ConfigError is one mistake in a datasets file.
type ConfigError struct {
	File    string // the config's path, as given
	Line    int    // 1-based; 0 when the mistake has no line
	Dataset string // the dataset at fault, if any
	Field   string // the field at fault, e.g. "params[1].type"
	Msg     string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Dataset != "" {
		fmt.Fprintf(&b, ": dataset %q", e.Dataset)
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// ConfigErrors is every mistake found in a datasets file, in file order.
type ConfigErrors []*ConfigError

func (es ConfigErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns each *ConfigError, for errors.As and errors.Is.
func (es ConfigErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// LoadConfig reads and validates the datasets file at path. A config with
// mistakes returns a [ConfigErrors] naming each one.
func LoadConfig(path string) (*exportd.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig parses and validates a datasets file whose content is data;
// path names it in errors and anchors relative SQLite paths. Unknown fields
// are mistakes. Every mistake is collected into the [ConfigErrors] returned.
func ParseConfig(path string, data []byte) (*exportd.Config, error) {
	p := &parser{file: path, env: os.LookupEnv}
	cfg := p.parse(data)
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		return nil, p.errs
	}
	return cfg, nil
}

type parser struct {
	file string
	env  func(string) (string, bool)
	errs ConfigErrors
}

func (p *parser) errorf(line int, dataset, field, format string, args ...any) {
	p.errs = append(p.errs, &ConfigError{File: p.file, Line: line, Dataset: dataset, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// pair is one key and value of a YAML mapping.
type pair struct {
	key  string
	k, v *yaml.Node
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func join(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}

// mapping returns the pairs of mapping node n in order, reporting a node
// that is not a mapping, unknown keys and repeated keys.
func (p *parser) mapping(n *yaml.Node, dataset, field string, known ...string) []pair {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, dataset, field, "want a mapping, got %s", describeNode(n))
		return nil
	}
	var out []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		key := k.Value
		switch {
		case known != nil && !contains(known, key):
			p.errorf(k.Line, dataset, join(field, key), "unknown field (want one of %s)", strings.Join(known, ", "))
		case seen[key] > 0:
			p.errorf(k.Line, dataset, join(field, key), "repeated (first at line %d)", seen[key])
		default:
			seen[key] = k.Line
			out = append(out, pair{key, k, v})
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// str returns the text of scalar n (any scalar but null).
func (p *parser) str(n *yaml.Node, dataset, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n.Line, dataset, field, "want text, got %s", describeNode(n))
		return "", false
	}
	return n.Value, true
}

func (p *parser) boolean(n *yaml.Node, dataset, field string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		p.errorf(n.Line, dataset, field, "want true or false, got %s", describeNode(n))
		return false
	}
	b, _ := strconv.ParseBool(strings.ToLower(n.Value))
	return b
}

func (p *parser) integer(n *yaml.Node, dataset, field string) (int64, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		if v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
			return v, true
		}
	}
	p.errorf(n.Line, dataset, field, "want an integer, got %s", describeNode(n))
	return 0, false
}

func (p *parser) number(n *yaml.Node, dataset, field string) (float64, bool) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		if v, err := strconv.ParseFloat(n.Value, 64); err == nil {
			return v, true
		}
	}
	p.errorf(n.Line, dataset, field, "want a number, got %s", describeNode(n))
	return 0, false
}

func (p *parser) duration(n *yaml.Node, dataset, field string) time.Duration {
	s, ok := p.str(n, dataset, field)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		p.errorf(n.Line, dataset, field, "not a duration %q (want e.g. 30s, 10m, 1h30m)", s)
	case d < 0:
		p.errorf(n.Line, dataset, field, "must not be negative")
	}
	return d
}

// strings returns the texts of a list of scalars, or of a single scalar.
func (p *parser) strList(n *yaml.Node, dataset, field string) ([]string, bool) {
	if n.Kind == yaml.ScalarNode {
		s, ok := p.str(n, dataset, field)
		return []string{s}, ok
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n.Line, dataset, field, "want a list, got %s", describeNode(n))
		return nil, false
	}
	out := []string{}
	ok := true
	for i, e := range n.Content {
		s, good := p.str(deref(e), dataset, fmt.Sprintf("%s[%d]", field, i))
		ok = ok && good
		out = append(out, s)
	}
	return out, ok
}

func (p *parser) parse(data []byte) *exportd.Config {
	cfg := &exportd.Config{Path: p.file, Timezone: "UTC", Location: time.UTC, Connections: map[string]exportd.Connection{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		if m := yamlErrorRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			p.errorf(line, "", "", "%s", m[2])
		} else {
			p.errorf(0, "", "", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil
	}
	if len(doc.Content) == 0 {
		p.errorf(0, "", "", "empty file (want timezone, connections and datasets)")
		return nil
	}
	if deref(doc.Content[0]).Kind != yaml.MappingNode {
		p.mapping(doc.Content[0], "", "")
		return nil
	}
	var connNode, dsNode, authNode, privacyNode *yaml.Node
	cfg.Auth = p.defaultAuth()
	cfg.Privacy = p.defaultPrivacy()
	privacyLine := 0
	for _, kv := range p.mapping(doc.Content[0], "", "", "timezone", "connections", "datasets", "auth", "privacy") {
		switch kv.key {
		case "timezone":
			if s, ok := p.str(kv.v, "", "timezone"); ok {
				loc, err := time.LoadLocation(s)
				if err != nil || s == "" {
					p.errorf(kv.v.Line, "", "timezone", "unknown time zone %q (want an IANA name such as Asia/Seoul or UTC)", s)
				} else {
					cfg.Timezone, cfg.Location = s, loc
				}
			}
		case "connections":
			connNode = kv.v
		case "datasets":
			dsNode = kv.v
		case "auth":
			authNode = kv.v
		case "privacy":
			privacyNode, privacyLine = kv.v, kv.k.Line
		}
	}
	if privacyNode != nil {
		p.privacy(cfg, privacyNode)
	}
	if authNode != nil {
		p.auth(cfg, authNode)
	}
	if connNode == nil {
		p.errorf(0, "", "connections", "missing (want at least one connection)")
	} else {
		p.connections(cfg, connNode)
	}
	if dsNode == nil {
		p.errorf(0, "", "datasets", "missing (want at least one dataset)")
		return cfg
	}
	pairs := p.mapping(dsNode, "", "datasets")
	if len(pairs) == 0 && deref(dsNode).Kind == yaml.MappingNode {
		p.errorf(dsNode.Line, "", "datasets", "empty (want at least one dataset)")
	}
	for _, kv := range pairs {
		if d := p.dataset(cfg, kv); d != nil {
			cfg.Datasets = append(cfg.Datasets, d)
		}
	}
	p.checkPrivacy(cfg, privacyLine)
	return cfg
}

func (p *parser) connections(cfg *exportd.Config, n *yaml.Node) {
	pairs := p.mapping(n, "", "connections")
	if len(pairs) == 0 && deref(n).Kind == yaml.MappingNode {
		p.errorf(n.Line, "", "connections", "empty (want at least one connection)")
	}
	for _, kv := range pairs {
		field := "connections." + kv.key
		c := exportd.Connection{Name: kv.key}
		if !datasetNameRE.MatchString(kv.key) {
			p.errorf(kv.k.Line, "", field, "invalid connection name (want [a-z0-9_-]+)")
		}
		for _, f := range p.mapping(kv.v, "", field, "url") {
			s, ok := p.str(f.v, "", field+".url")
			if !ok {
				continue
			}
			u, err := p.expandEnv(s)
			if err != nil {
				p.errorf(f.v.Line, "", field+".url", "%v", err)
				continue
			}
			c.URL = u
			if c.Driver() == "" {
				scheme, _, _ := strings.Cut(u, ":")
				if len(scheme) > 20 || strings.ContainsAny(scheme, "/@") {
					scheme = "?"
				}
				p.errorf(f.v.Line, "", field+".url", "unsupported scheme %q (want postgres://, mysql:// or sqlite:PATH)", scheme)
			} else if c.Driver() == "sqlite" {
				c.URL = resolveSQLite(c.URL, p.dir())
			}
		}
		if c.URL == "" && deref(kv.v).Kind == yaml.MappingNode && !p.hasErrorFor(field+".url") {
			p.errorf(kv.k.Line, "", field+".url", "missing")
		}
		cfg.Connections[kv.key] = c
	}
}

// dir returns the absolute directory of the config file, or "" when the
// config has no path.
func (p *parser) dir() string {
	if p.file == "" {
		return ""
	}
	dir, err := filepath.Abs(filepath.Dir(p.file))
	if err != nil {
		return ""
	}
	return dir
}

func (p *parser) hasErrorFor(field string) bool {
	for _, e := range p.errs {
		if e.Field == field {
			return true
		}
	}
	return false
}

// expandEnv replaces each ${NAME} in s with the environment variable NAME,
// or, when NAME is unset and NAME_FILE is set, with the content of the file
// NAME_FILE names, without the white space around it (a secret kept out of
// the environment: a systemd credential, a container secret); neither set
// is an error. A bare $ is left alone (passwords).
func (p *parser) expandEnv(s string) (string, error) {
	var err error
	out := envVarRE.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		v, ok := p.env(name)
		if !ok {
			if file, fok := p.env(name + "_FILE"); fok {
				b, ferr := os.ReadFile(file)
				if ferr != nil && err == nil {
					err = fmt.Errorf("environment variable %s_FILE: %w", name, ferr)
				}
				return strings.TrimSpace(string(b))
			}
		}
		if !ok && err == nil {
			err = fmt.Errorf("environment variable %q is not set", name)
		}
		return v
	})
	return out, err
}

// resolveSQLite makes the path of a sqlite:PATH URL relative to dir.
func resolveSQLite(u, dir string) string {
	rest := u[len("sqlite:"):]
	path, query, hasQuery := strings.Cut(rest, "?")
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || filepath.IsAbs(path) || dir == "" {
		return u
	}
	out := "sqlite:" + filepath.Join(dir, path)
	if hasQuery {
		out += "?" + query
	}
	return out
}
