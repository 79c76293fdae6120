package datasets

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/exportd/exportd"
)

const accessYAML = `
connections:
  main: {url: "sqlite:data.db"}
auth:
  tokens_db: sqlite:tokens.db
  trusted_header:
    user: X-Forwarded-User
    proxies: [127.0.0.1/32, "::1"]
  signed_links: true
  anonymous: {roles: [viewer], from: [10.0.0.0/8]}
datasets:
  members:
    sql: SELECT id FROM members WHERE branch = :branch AND grade IN (:grades) AND joined >= :from
    params:
      - {name: branch, type: string}
      - {name: grades, type: enum, values: [gold, silver, bronze], list: true}
      - {name: from, type: date, default: "2020-01-01"}
    roles: [admin, manager, auditor]
    pin:
      manager:
        branch: {attr: branch}
        grades: [gold, silver]
      auditor:
        branch: 서울
        grades: bronze
  open:
    sql: SELECT 1
`

func parseAccess(t *testing.T, yml string, env map[string]string) (*exportd.Config, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "datasets.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &parser{file: path, env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	cfg := p.parse([]byte(yml))
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return cfg, nil
}

func TestAuthConfig(t *testing.T) {
	secret := strings.Repeat("k", 32)
	cfg, err := parseAccess(t, accessYAML, map[string]string{"LINK_SECRET": secret})
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Auth
	dir := filepath.Dir(cfg.Path)
	if a.TokensDB != "sqlite:"+filepath.Join(dir, "tokens.db") {
		t.Errorf("tokens_db %q", a.TokensDB)
	}
	want := &exportd.TrustedHeader{User: "X-Forwarded-User", Roles: "X-Forwarded-Roles", AttrsPrefix: "X-Forwarded-Attr-",
		Proxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}}
	if !reflect.DeepEqual(a.TrustedHeader, want) {
		t.Errorf("trusted_header %+v", a.TrustedHeader)
	}
	if !a.SignedLinks {
		t.Error("signed_links: false")
	}
	if !reflect.DeepEqual(a.Anonymous, &exportd.Anonymous{Roles: []string{"viewer"}, From: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}) {
		t.Errorf("anonymous %+v", a.Anonymous)
	}
	d, _ := cfg.Dataset("members")
	if !reflect.DeepEqual(d.Roles, []string{"admin", "manager", "auditor"}) {
		t.Errorf("roles %v", d.Roles)
	}
	wantPins := map[string]map[string]exportd.Pin{
		"manager": {"branch": {Attr: "branch"}, "grades": {Values: []string{"gold", "silver"}}},
		"auditor": {"branch": {Values: []string{"서울"}}, "grades": {Values: []string{"bronze"}}},
	}
	if !reflect.DeepEqual(d.Pins, wantPins) {
		t.Errorf("pins %+v", d.Pins)
	}

	// Without an auth: block: tokens beside the file, nothing else.
	cfg, err = parseAccess(t, "connections: {main: {url: 'sqlite:x.db'}}\ndatasets: {a: {sql: SELECT 1}}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.TokensDB != "sqlite:"+filepath.Join(filepath.Dir(cfg.Path), "exportd-auth.db") ||
		cfg.Auth.TrustedHeader != nil || cfg.Auth.SignedLinks || cfg.Auth.Anonymous != nil {
		t.Errorf("default auth %+v", cfg.Auth)
	}
	if d, _ := cfg.Dataset("a"); d.Roles != nil || d.Pins != nil || !d.Allows(nil) {
		t.Errorf("dataset without roles: %+v", d)
	}
}

// Each mistake in the auth: block and in roles/pin names its field.
func TestAuthConfigErrors(t *testing.T) {
	head := "connections: {main: {url: 'sqlite:x.db'}}\n"
	ds := "datasets:\n  d:\n    sql: SELECT :branch, :grades\n    params: [{name: branch, type: string}, {name: grades, type: enum, values: [a, b], list: false}]\n"
	for _, tc := range []struct{ yml, field, msg string }{
		{head + ds + "auth: {tokens_db: 'mysql://x'}\n", "auth.tokens_db", "want sqlite:PATH or postgres://"},
		{head + ds + "auth: {tokens_db: 'sqlite:'}\n", "auth.tokens_db", "empty path"},
		{head + ds + "auth: {link_secret: '${NOPE}'}\n", "auth.link_secret", "moved out of the datasets file: give it to the server with --link-secret-file"},
		{head + ds + "auth: {signed_links: maybe}\n", "auth.signed_links", "want true or false"},
		{head + ds + "auth: {bogus: 1}\n", "auth.bogus", "unknown field"},
		{head + ds + "auth: {trusted_header: {user: X-User}}\n", "auth.trusted_header.proxies", "missing"},
		{head + ds + "auth: {trusted_header: {proxies: [127.0.0.1/32]}}\n", "auth.trusted_header.user", "missing"},
		{head + ds + "auth: {trusted_header: {user: 'X User', proxies: [1.2.3.4]}}\n", "auth.trusted_header.user", "not a header name"},
		{head + ds + "auth: {trusted_header: {user: X-User, proxies: [nope]}}\n", "auth.trusted_header.proxies[0]", "not an address or CIDR prefix"},
		{head + ds + "auth: {trusted_header: {user: X-User, proxies: []}}\n", "auth.trusted_header.proxies", "empty"},
		{head + ds + "auth: {anonymous: {roles: ['a b']}}\n", "auth.anonymous.roles[0]", "invalid role name"},
		{head + ds + "auth: {anonymous: {from: [x]}}\n", "auth.anonymous.from[0]", "not an address"},
		{head + ds + "auth: {anonymous: {who: x}}\n", "auth.anonymous.who", "unknown field"},
		{head + ds + "    roles: [a, a]\n", "roles[1]", `repeated role "a"`},
		{head + ds + "    roles: {a: 1}\n", "roles", "want a list"},
		{head + ds + "    roles: [a]\n    pin: {b: {branch: x}}\n", "pin.b", `role "b" is not in the dataset's roles`},
		{head + ds + "    pin: {a: {nope: x}}\n", "pin.a.nope", `"nope" is not a declared parameter`},
		{head + ds + "    pin: {a: {grades: c}}\n", "pin.a.grades", `"c" is not one of a, b`},
		{head + ds + "    pin: {a: {grades: [a, b]}}\n", "pin.a.grades", "several values, but the parameter is not a list"},
		{head + ds + "    pin: {a: {branch: {attr: ''}}}\n", "pin.a.branch.attr", "empty"},
		{head + ds + "    pin: {a: {branch: {key: x}}}\n", "pin.a.branch.key", "unknown field"},
		{head + ds + "    pin: {a: {branch: []}}\n", "pin.a.branch", "empty list"},
	} {
		_, err := parseAccess(t, tc.yml, nil)
		var errs ConfigErrors
		if !errors.As(err, &errs) {
			t.Errorf("%s: err %v", tc.field, err)
			continue
		}
		found := false
		for _, e := range errs {
			if e.Field == tc.field && strings.Contains(e.Msg, tc.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("want %s: %s; got\n%v", tc.field, tc.msg, err)
		}
	}
}

func TestPins(t *testing.T) {
	cfg, err := parseAccess(t, accessYAML, map[string]string{"LINK_SECRET": strings.Repeat("k", 32)})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := cfg.Dataset("members")
	if d.Allows([]string{"viewer"}) || !d.Allows([]string{"viewer", "manager"}) {
		t.Error("Allows")
	}
	busan := map[string]string{"branch": "부산"}

	// A manager is pinned to their branch and to gold/silver.
	pins, err := d.PinsFor([]string{"manager"}, busan)
	if err != nil || !reflect.DeepEqual(pins, map[string][]string{"branch": {"부산"}, "grades": {"gold", "silver"}}) {
		t.Fatalf("manager pins %v %v", pins, err)
	}
	in := map[string][]string{"from": {"2024-01-01"}}
	if err := d.ApplyPins(in, pins, nil); err != nil || in["branch"][0] != "부산" || len(in["grades"]) != 2 {
		t.Errorf("filled in: %v %v", in, err)
	}
	// Giving the pinned value is fine; a subset of a pinned list too.
	if err := d.ApplyPins(map[string][]string{"branch": {"부산"}, "grades": {"gold"}}, pins, nil); err != nil {
		t.Errorf("same values: %v", err)
	}
	// Another branch, or a grade outside the pin, is refused naming the parameter.
	for _, in := range []map[string][]string{{"branch": {"서울"}}, {"grades": {"gold,bronze"}}} {
		var pe *exportd.PinError
		if err := d.ApplyPins(in, pins, nil); !errors.As(err, &pe) || !strings.Contains(err.Error(), "cannot be overridden") {
			t.Errorf("%v: %v", in, err)
		}
	}
	// A manager without a branch attribute cannot run it at all.
	var pe *exportd.PinError
	if _, err := d.PinsFor([]string{"manager"}, nil); !errors.As(err, &pe) || pe.Param != "branch" {
		t.Errorf("no attribute: %v", err)
	}
	// Roles add rights: admin has no pins, so an admin and manager is free.
	if pins, _ := d.PinsFor([]string{"manager", "admin"}, busan); len(pins) != 0 {
		t.Errorf("admin+manager pins %v", pins)
	}
	// A manager and auditor may choose among both pins; a scalar must be chosen.
	pins, _ = d.PinsFor([]string{"manager", "auditor"}, busan)
	if !reflect.DeepEqual(pins, map[string][]string{"branch": {"부산", "서울"}, "grades": {"bronze", "gold", "silver"}}) {
		t.Errorf("manager+auditor pins %v", pins)
	}
	if err := d.ApplyPins(map[string][]string{}, pins, nil); !errors.As(err, &pe) || pe.Param != "branch" {
		t.Errorf("must choose: %v", err)
	}
	if err := d.ApplyPins(map[string][]string{"branch": {"서울"}}, pins, nil); err != nil {
		t.Errorf("choice: %v", err)
	}
}
