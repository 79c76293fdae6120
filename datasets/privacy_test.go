package datasets

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd"
)

const privacyYAML = `
connections:
  main: {url: "sqlite:data.db"}
privacy:
  purposes:
    member_support: 회원 문의 응대
    audit: 내부 감사
  purpose_min_length: 5
  audit:
    db: sqlite:trail.db
    key_file: audit.key
    log: audit.jsonl
    retention: 8760h
datasets:
  members:
    personal: true
    encryption: optional
    marking: true
    sql: SELECT id, name, email, phone, memo FROM members
    roles: [admin, support]
    columns:
      - {name: id}
      - {name: name, personal: true, mask: name}
      - {name: email, personal: true, mask: {rule: keep, first: 1}}
      - {name: phone, personal: true, mask: {pattern: '\d{4}$', replace: '****'}}
      - {name: memo, personal: true, mask: {fixed: '(비공개)'}}
    access:
      admin: {all: full}
      support: {name: masked, email: masked, all: omitted}
`

func TestPrivacyConfig(t *testing.T) {
	cfg, err := parseAccess(t, privacyYAML, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(cfg.Path)
	pc := cfg.Privacy
	want := &exportd.PrivacyConfig{
		Purposes:         []exportd.PurposeCategory{{Name: "member_support", Label: "회원 문의 응대"}, {Name: "audit", Label: "내부 감사"}},
		PurposeMinLength: 5,
		AuditDB:          "sqlite:" + filepath.Join(dir, "trail.db"),
		AuditKeyFile:     filepath.Join(dir, "audit.key"),
		AuditLog:         filepath.Join(dir, "audit.jsonl"),
		Retention:        8760 * time.Hour,
	}
	if !reflect.DeepEqual(pc, want) {
		t.Errorf("privacy\n got %+v\nwant %+v", pc, want)
	}
	d, _ := cfg.Dataset("members")
	if !d.Personal || d.Encryption != exportd.EncryptionOptional || !d.Marking {
		t.Errorf("dataset %+v", d)
	}
	if got := d.PersonalColumns(); !reflect.DeepEqual(got, []string{"name", "email", "phone", "memo"}) {
		t.Errorf("personal columns %v", got)
	}
	masks := map[string]exportd.MaskSpec{}
	for _, c := range d.Columns {
		if c.Mask != nil {
			masks[c.Name] = *c.Mask
		}
	}
	wantMasks := map[string]exportd.MaskSpec{
		"name":  {Rule: "name"},
		"email": {Rule: "keep", First: 1},
		"phone": {Rule: "pattern", Pattern: `\d{4}$`, Replace: "****"},
		"memo":  {Rule: "fixed", Replace: "(비공개)"},
	}
	if !reflect.DeepEqual(masks, wantMasks) {
		t.Errorf("masks\n got %+v\nwant %+v", masks, wantMasks)
	}
	if got, want := d.ColumnAccess("support"), map[string]string{"name": "masked", "email": "masked", "phone": "omitted", "memo": "omitted"}; !reflect.DeepEqual(got, want) {
		t.Errorf("support access %v, want %v", got, want)
	}
	if got := d.ColumnAccess("admin"); len(got) != 4 || got["memo"] != "full" {
		t.Errorf("admin access %v", got)
	}
	if got := d.ColumnAccess("nobody"); len(got) != 0 {
		t.Errorf("unknown role's access %v", got)
	}

	// purposes
	for _, tc := range []struct{ cat, text, field string }{
		{"", "long enough", "purpose"},
		{"fun", "long enough", "purpose"},
		{"audit", "  abc  ", "purpose_text"},
		{"audit", "감사 대응 건", ""},           // 5 readable characters
		{"audit", "감사 대응", "purpose_text"}, // 4: the space does not count
		// what a person cannot read does not count
		{"audit", strings.Repeat("\u200b", 10), "purpose_text"},                         // zero-width spaces (Cf)
		{"audit", "a\u200bb\u200bc\u200bd\u200b", "purpose_text"},                       // 4 letters, zero-width spaces between
		{"audit", "\u00a0\u2003\u3000\u2028\u2029\ufeff\u2060\u00ad!?", "purpose_text"}, // Z*, Cf, punctuation
		{"audit", strings.Repeat("\u0301", 10), "purpose_text"},                         // combining marks on their own
		{"audit", "e\u0301e\u0301e\u0301e\u0301e\u0301", ""},                            // five letters with accents: 5
		{"audit", "e\u0301e\u0301e\u0301e\u0301", "purpose_text"},                       // four: not 8
		{"audit", "\u1100\u1161\u1100\u1161\u1100\u1161\u1100\u1161", "purpose_text"},   // 4 Hangul syllables spelt in jamo
		{"audit", "2025년!", ""},                                                         // digits and letters
		{"audit", "📊📊📊📊📊", ""},                                                          // symbols
	} {
		err := pc.CheckPurpose(tc.cat, tc.text)
		var pe *exportd.PurposeError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%q %q: %v", tc.cat, tc.text, err)
		case tc.field != "" && (!errors.As(err, &pe) || pe.Field != tc.field):
			t.Errorf("%q %q: %v, want an error naming %s", tc.cat, tc.text, err, tc.field)
		}
	}
}

func TestPrivacyDefaults(t *testing.T) {
	cfg, err := parseAccess(t, "connections: {main: {url: 'sqlite:x.db'}}\ndatasets: {d: {sql: SELECT 1}}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if pc := cfg.Privacy; pc.PurposeMinLength != exportd.DefaultPurposeMinLength || pc.AuditDB != "sqlite:"+filepath.Join(filepath.Dir(cfg.Path), "exportd-audit.db") || pc.AuditKeyFile != "" {
		t.Errorf("defaults %+v", pc)
	}
}

func TestPrivacyConfigErrors(t *testing.T) {
	head := "connections: {main: {url: 'sqlite:x.db'}}\n"
	priv := "privacy: {purposes: {audit: 감사}, audit: {key_file: k}}\n"
	ds := "datasets:\n  d:\n    sql: SELECT a, b FROM t\n    personal: true\n"
	cols := "    columns: [{name: a}, {name: b, personal: true, mask: name}]\n"
	for _, tc := range []struct{ yml, field, msg string }{
		{head + ds + cols + "privacy: {audit: {key_file: k}}\n", "privacy.purposes", "missing: the personal dataset(s) d need purpose categories"},
		{head + ds + cols + "privacy: {purposes: {audit: 감사}}\n", "privacy.audit.key_file", "missing"},
		{head + ds + cols + "privacy: {purposes: {Audit Log: x}, audit: {key_file: k}}\n", "privacy.purposes.Audit Log", "invalid purpose category"},
		{head + ds + cols + "privacy: {purposes: {a: ''}, audit: {key_file: k}}\n", "privacy.purposes.a", "empty label"},
		{head + ds + cols + "privacy: {purposes: {a: x}, purpose_min_length: -1, audit: {key_file: k}}\n", "privacy.purpose_min_length", "between 0 and 1000"},
		{head + ds + cols + "privacy: {purposes: {a: x}, audit: {key_file: k, db: 'mysql://x'}}\n", "privacy.audit.db", "want sqlite:PATH or postgres://"},
		{head + ds + cols + "privacy: {purposes: {a: x}, audit: {key_file: k, retention: 1h}}\n", "privacy.audit.retention", "at least 24h"},
		{head + ds + cols + "privacy: {purposes: {a: x}, audit: {key_file: k, keys: x}}\n", "privacy.audit.keys", "unknown field"},
		{head + ds + cols + "privacy: {bogus: 1}\n", "privacy.bogus", "unknown field"},
		{head + priv + ds, "columns", "a personal dataset must declare its columns"},
		{head + priv + ds + "    columns: [{name: a, personal: true, mask: nose}]\n", "columns[0].mask", `unknown rule "nose"`},
		{head + priv + ds + "    columns: [{name: a, personal: true, mask: {pattern: '('}}]\n", "columns[0].mask", "pattern: error parsing regexp"},
		{head + priv + ds + "    columns: [{name: a, personal: true, mask: {rule: name, replace: x}}]\n", "columns[0].mask", `replace is not used by rule "name"`},
		{head + priv + ds + "    columns: [{name: a, personal: true, mask: {keep: {first: 1, middle: 2}}}]\n", "columns[0].mask.keep.middle", "unknown field"},
		{head + priv + ds + "    columns: [{name: a, mask: name}]\n", "columns[0].mask", "not personal: true"},
		{head + priv + "datasets:\n  d:\n    sql: SELECT a FROM t\n    columns: [{name: a, personal: true}]\n", "columns[0].personal", "the dataset is not marked personal: true"},
		{head + priv + ds + cols + "    access: {support: {b: hidden}}\n", "access.support.b", `unknown access "hidden"`},
		{head + priv + ds + cols + "    access: {support: {c: full}}\n", "access.support.c", `"c" is not a declared column`},
		{head + priv + ds + cols + "    access: {support: {a: masked}}\n", "access.support.a", `column "a" is not personal`},
		{head + priv + ds + cols + "    roles: [admin]\n    access: {support: {b: full}}\n", "access.support", `role "support" may not run this dataset`},
		{head + priv + ds + cols + "    access: {'a b': {b: full}}\n", "access.a b", "invalid role name"},
		{head + priv + ds + cols + "    encryption: always\n", "encryption", `unknown value "always"`},
		{head + priv + ds + cols + "    marking: yes please\n", "marking", "want true or false"},
		{head + priv + "datasets:\n  d:\n    sql: SELECT a FROM t\n    access: {x: {a: full}}\n", "access", "not marked personal"},
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
