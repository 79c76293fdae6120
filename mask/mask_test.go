package mask_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/format"
	"github.com/exportd/exportd/mask"
)

func TestRules(t *testing.T) {
	tests := []struct {
		spec exportd.MaskSpec
		in   string
		want string
	}{
		{exportd.MaskSpec{Rule: "name"}, "김민준", "김*준"},
		{exportd.MaskSpec{Rule: "name"}, "김민", "김*"},
		{exportd.MaskSpec{Rule: "name"}, "김", "*"},
		{exportd.MaskSpec{Rule: "name"}, "남궁민수", "남**수"},
		{exportd.MaskSpec{Rule: "name"}, "제갈공명선", "제***선"},
		{exportd.MaskSpec{Rule: "name"}, "김 민준", "김 *준"},
		{exportd.MaskSpec{Rule: "name"}, "John Smith", "J*** S****"},
		{exportd.MaskSpec{Rule: "name"}, "John", "J***"},
		{exportd.MaskSpec{Rule: "name"}, "J. R. R. Tolkien", "J* R* R* T******"},
		{exportd.MaskSpec{Rule: "name"}, "A B", "* *"},
		{exportd.MaskSpec{Rule: "name"}, "  Ann  ", "  A**  "},
		{exportd.MaskSpec{Rule: "name"}, "Émile Zola", "É**** Z***"},
		{exportd.MaskSpec{Rule: "name"}, "", ""},
		{exportd.MaskSpec{Rule: "name"}, "😀😀😀", "😀**"},
		{exportd.MaskSpec{Rule: "name"}, "김\xff준", "김*준"},
		{exportd.MaskSpec{Rule: "name", Char: "○"}, "김민준", "김○준"},

		{exportd.MaskSpec{Rule: "email"}, "user12@example.com", "us****@example.com"},
		{exportd.MaskSpec{Rule: "email"}, "abc@x.kr", "ab*@x.kr"},
		{exportd.MaskSpec{Rule: "email"}, "ab@x.kr", "a*@x.kr"},
		{exportd.MaskSpec{Rule: "email"}, "a@x.kr", "*@x.kr"},
		{exportd.MaskSpec{Rule: "email"}, "@x.kr", "@x.kr"},
		{exportd.MaskSpec{Rule: "email"}, "\"a@b\"@x.kr", "\"a***@x.kr"},
		{exportd.MaskSpec{Rule: "email"}, "홍길동님@회사.한국", "홍길**@회사.한국"},
		{exportd.MaskSpec{Rule: "email"}, "not-an-email", "no**********"},
		{exportd.MaskSpec{Rule: "email"}, "", ""},

		{exportd.MaskSpec{Rule: "phone"}, "010-1234-5678", "010-****-5678"},
		{exportd.MaskSpec{Rule: "phone"}, "01012345678", "010****5678"},
		{exportd.MaskSpec{Rule: "phone"}, "0101234567", "010***4567"},
		{exportd.MaskSpec{Rule: "phone"}, "+82-10-1234-5678", "+82-10-****-5678"},
		{exportd.MaskSpec{Rule: "phone"}, "+821012345678", "+8210****5678"},
		{exportd.MaskSpec{Rule: "phone"}, "02-123-4567", "02-***-4567"},
		{exportd.MaskSpec{Rule: "phone"}, "0212345678", "02****5678"},
		{exportd.MaskSpec{Rule: "phone"}, "021234567", "02***4567"},
		{exportd.MaskSpec{Rule: "phone"}, "(02) 1234-5678", "(02) ****-5678"},
		{exportd.MaskSpec{Rule: "phone"}, "010 1234 5678", "010 **** 5678"},
		{exportd.MaskSpec{Rule: "phone"}, "010-12345678", "010-****5678"},
		{exportd.MaskSpec{Rule: "phone"}, "+1 415 555 0100", "+1 415 *** 0100"},
		{exportd.MaskSpec{Rule: "phone"}, "4155550100", "41****0100"},
		{exportd.MaskSpec{Rule: "phone"}, "1588-1234", "****-1234"},
		{exportd.MaskSpec{Rule: "phone"}, "1234", "****"},
		{exportd.MaskSpec{Rule: "phone"}, "12345", "*2345"},
		{exportd.MaskSpec{Rule: "phone"}, "없음", "없음"},
		{exportd.MaskSpec{Rule: "phone"}, "", ""},

		{exportd.MaskSpec{Rule: "national_id"}, "900101-1234567", "900101-1******"},
		{exportd.MaskSpec{Rule: "national_id"}, "9001011234567", "9001011******"},
		{exportd.MaskSpec{Rule: "national_id"}, "900101", "******"},
		{exportd.MaskSpec{Rule: "national_id"}, "900101-1", "******-*"},
		{exportd.MaskSpec{Rule: "national_id"}, "", ""},

		{exportd.MaskSpec{Rule: "pattern", Pattern: `(\d{4})$`, Replace: "****"}, "1234-5678", "1234-****"},
		{exportd.MaskSpec{Rule: "pattern", Pattern: `^(\d{3})\d+`, Replace: "${1}-XXX"}, "12345", "123-XXX"},
		{exportd.MaskSpec{Rule: "pattern", Pattern: `\d`, Replace: "#"}, "서울 12동", "서울 ##동"},
		{exportd.MaskSpec{Rule: "pattern", Pattern: `x`, Replace: "y"}, "", ""},

		{exportd.MaskSpec{Rule: "keep", First: 2, Last: 4}, "1234567890", "12****7890"},
		{exportd.MaskSpec{Rule: "keep", First: 2, Last: 4}, "123456", "12*456"},
		{exportd.MaskSpec{Rule: "keep", First: 2, Last: 4}, "12", "*2"},
		{exportd.MaskSpec{Rule: "keep", First: 1}, "서울특별시", "서****"},
		{exportd.MaskSpec{Rule: "keep", Last: 1}, "a", "*"},
		{exportd.MaskSpec{Rule: "keep"}, "abc", "***"},
		{exportd.MaskSpec{Rule: "keep", First: 3}, "", ""},

		{exportd.MaskSpec{Rule: "fixed", Replace: "(비공개)"}, "anything", "(비공개)"},
		{exportd.MaskSpec{Rule: "fixed", Replace: "(비공개)"}, "", "(비공개)"},
		{exportd.MaskSpec{Rule: "fixed"}, "secret", ""},
	}
	for _, tt := range tests {
		r, err := mask.Parse(tt.spec)
		if err != nil {
			t.Fatalf("Parse(%+v): %v", tt.spec, err)
		}
		got := r.Apply(exportd.String(tt.in))
		if got.Kind != exportd.KindString || got.S != tt.want {
			t.Errorf("%s(%q) = %v %q, want %q", r, tt.in, got.Kind, got.S, tt.want)
		}
	}
}

func TestApplyKinds(t *testing.T) {
	phone := mask.MustParse(exportd.MaskSpec{Rule: "phone"})
	if got := phone.Apply(exportd.Null()); !got.IsNull() {
		t.Errorf("NULL became %v", got)
	}
	if got := phone.Apply(exportd.Int(1012345678)); got != exportd.String("10****5678") {
		t.Errorf("int phone = %+v", got)
	}
	birth := mask.MustParse(exportd.MaskSpec{Rule: "keep", First: 4})
	d := exportd.Date(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC))
	if got := birth.Apply(d); got != exportd.String("1990******") {
		t.Errorf("date = %+v", got)
	}
	fixed := mask.MustParse(exportd.MaskSpec{Rule: "fixed", Replace: "-"})
	if got := fixed.Apply(exportd.Bool(true)); got != exportd.String("-") {
		t.Errorf("bool = %+v", got)
	}
	var zero mask.Rule
	if got := zero.Apply(exportd.String("x")); got != exportd.String("x") {
		t.Errorf("zero rule changed the value: %+v", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []exportd.MaskSpec{
		{},
		{Rule: "nope"},
		{Rule: "pattern"},
		{Rule: "pattern", Pattern: "("},
		{Rule: "keep", First: -1},
		{Rule: "name", Pattern: "x"},
		{Rule: "email", Replace: "x"},
		{Rule: "name", Char: "**"},
		{Rule: "fixed", Char: "#"},
		{Rule: "phone", First: 1},
	} {
		if _, err := mask.Parse(s); !errors.Is(err, exportd.ErrMaskRule) {
			t.Errorf("Parse(%+v) = %v, want exportd.ErrMaskRule", s, err)
		}
	}
}

var (
	cols = []exportd.Column{
		{Name: "id", Header: "번호"},
		{Name: "name", Header: "이름"},
		{Name: "email", Header: "이메일"},
		{Name: "phone", Header: "전화"},
		{Name: "score"},
	}
	policy = &mask.Policy{
		Personal: map[string]mask.Rule{
			"name":  mask.MustParse(exportd.MaskSpec{Rule: "name"}),
			"email": mask.MustParse(exportd.MaskSpec{Rule: "email"}),
			"phone": mask.MustParse(exportd.MaskSpec{Rule: "phone"}),
		},
		Roles: map[string]map[string]mask.Access{
			"admin":   {"name": mask.Full, "email": mask.Full, "phone": mask.Full},
			"support": {"name": mask.Masked, "email": mask.Masked, "phone": mask.Omitted},
			"billing": {"email": mask.Full},
		},
	}
)

func TestPlan(t *testing.T) {
	tests := []struct {
		roles []string
		want  []string
		names []string
		acc   map[string]mask.Access
		err   error
	}{
		{roles: []string{"admin"}, names: []string{"id", "name", "email", "phone", "score"}},
		{roles: []string{"support"}, names: []string{"id", "name", "email", "score"},
			acc: map[string]mask.Access{"name": mask.Masked, "email": mask.Masked, "phone": mask.Omitted, "id": mask.Full}},
		// several roles: the most permissive per column
		{roles: []string{"support", "billing"}, names: []string{"id", "name", "email", "score"},
			acc: map[string]mask.Access{"name": mask.Masked, "email": mask.Full}},
		// unknown role and no role: no personal column
		{roles: []string{"intern"}, names: []string{"id", "score"}},
		{roles: nil, names: []string{"id", "score"}},
		// a choice takes columns away, in the dataset's order
		{roles: []string{"support"}, want: []string{"score", "name"}, names: []string{"name", "score"}},
		// a choice never adds a column the roles do not grant
		{roles: []string{"support"}, want: []string{"id", "phone"}, err: mask.ErrForbiddenColumn},
		{roles: []string{"intern"}, want: []string{"name"}, err: mask.ErrForbiddenColumn},
		{roles: []string{"admin"}, want: []string{"password"}, err: mask.ErrUnknownColumn},
		{roles: []string{"admin"}, want: []string{}, err: errors.New("no column left")},
	}
	for _, tt := range tests {
		p, err := policy.Plan(tt.roles, cols, tt.want)
		if tt.err != nil {
			if err == nil || (!errors.Is(err, tt.err) && !strings.Contains(err.Error(), tt.err.Error())) {
				t.Errorf("Plan(%v, %v) error = %v, want %v", tt.roles, tt.want, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Plan(%v, %v): %v", tt.roles, tt.want, err)
		}
		if got := strings.Join(p.Names(), ","); got != strings.Join(tt.names, ",") {
			t.Errorf("Plan(%v, %v) columns = %s, want %s", tt.roles, tt.want, got, strings.Join(tt.names, ","))
		}
		for c, a := range tt.acc {
			if got := p.Access(c); got != a {
				t.Errorf("Plan(%v) %s = %v, want %v", tt.roles, c, got, a)
			}
		}
	}
	var ce *mask.ColumnError
	_, err := policy.Plan([]string{"support"}, cols, []string{"phone"})
	if !errors.As(err, &ce) || ce.Column != "phone" {
		t.Errorf("error %v does not name the column", err)
	}
}

func TestWriterCSV(t *testing.T) {
	rows := [][]exportd.Value{
		{exportd.Int(1), exportd.String("김민준"), exportd.String("user12@example.com"), exportd.String("010-1234-5678"), exportd.Float(91.5)},
		{exportd.Int(2), exportd.String("John Smith"), exportd.Null(), exportd.String("02-123-4567"), exportd.Null()},
		{exportd.Int(3), exportd.String("남궁민수"), exportd.String("ab@x.kr"), exportd.Null(), exportd.Int(70)},
	}
	tests := []struct {
		roles []string
		want  []string
		csv   string
	}{
		{[]string{"support"}, nil, "번호,이름,이메일,score\n" +
			"1,김*준,us****@example.com,91.5\n" +
			"2,J*** S****,,\n" +
			"3,남**수,a*@x.kr,70\n"},
		{[]string{"admin"}, []string{"phone", "id"}, "번호,전화\n" +
			"1,010-1234-5678\n" +
			"2,02-123-4567\n" +
			"3,\n"},
		{[]string{"support", "billing"}, []string{"email", "name"}, "이름,이메일\n" +
			"김*준,user12@example.com\n" +
			"J*** S****,\n" +
			"남**수,ab@x.kr\n"},
	}
	for _, tt := range tests {
		plan, err := policy.Plan(tt.roles, cols, tt.want)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		newWriter := plan.NewWriter(func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
			return format.New(exportd.FormatCSV, w, cols, format.Options{})
		})
		w, err := newWriter(&buf, cols)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if err := w.WriteRow(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tt.csv {
			t.Errorf("roles %v: got\n%s\nwant\n%s", tt.roles, buf.String(), tt.csv)
		}
		// the caller's row is not changed
		if rows[0][1].S != "김민준" {
			t.Fatal("the writer changed the caller's row")
		}
	}
	plan, _ := policy.Plan([]string{"admin"}, cols, nil)
	if _, err := plan.NewWriter(nil)(io.Discard, cols[:4]); err == nil {
		t.Error("a plan accepted other columns")
	}
}

// TestExport runs the engine with the plan: masking sits in front of the
// writer, so the same code path masks every export.
func TestExport(t *testing.T) {
	plan, err := policy.Plan([]string{"support"}, cols[:3], nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	e := &exportd.Export{
		Source:  staticSource{rows: [][]exportd.Value{{exportd.Int(7), exportd.String("이서연"), exportd.String("seoyeon@example.kr")}}},
		Columns: cols[:3],
		Output:  &buf,
		NewWriter: plan.NewWriter(func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
			return format.New(exportd.FormatCSV, w, cols, format.Options{})
		}),
	}
	if _, err := e.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if want := "번호,이름,이메일\n7,이*연,se*****@example.kr\n"; buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

func FuzzApply(f *testing.F) {
	for _, s := range []string{"김민준", "user12@example.com", "+82-10-1234-5678", "900101-1234567", "", "\xff\xfe", "😀", "a@", "@@", "+", "0", "John  Smith "} {
		f.Add(s, uint8(0))
	}
	rules := []mask.Rule{
		mask.MustParse(exportd.MaskSpec{Rule: "name"}),
		mask.MustParse(exportd.MaskSpec{Rule: "email"}),
		mask.MustParse(exportd.MaskSpec{Rule: "phone"}),
		mask.MustParse(exportd.MaskSpec{Rule: "national_id"}),
		mask.MustParse(exportd.MaskSpec{Rule: "pattern", Pattern: `(\d{4})$`, Replace: "****"}),
		mask.MustParse(exportd.MaskSpec{Rule: "keep", First: 2, Last: 2}),
		mask.MustParse(exportd.MaskSpec{Rule: "fixed", Replace: "x"}),
	}
	f.Fuzz(func(t *testing.T, s string, which uint8) {
		r := rules[int(which)%len(rules)]
		got := r.ApplyString(s)
		if !utf8.ValidString(got) {
			t.Fatalf("%s(%q) = %q: invalid UTF-8", r, s, got)
		}
		switch r.String() {
		case "name", "email", "keep", "phone", "national_id":
			// length-preserving, and something is masked whenever there
			// is something to mask
			valid := strings.ToValidUTF8(s, "\uFFFD")
			if utf8.RuneCountInString(got) != utf8.RuneCountInString(valid) {
				t.Fatalf("%s(%q) = %q: length changed", r, s, got)
			}
			if !strings.Contains(got, "*") && maskable(r.String(), valid) {
				t.Fatalf("%s(%q) left the value unmasked", r, s)
			}
		}
	})
}

// maskable reports whether rule must change s.
func maskable(rule, s string) bool {
	switch rule {
	case "phone", "national_id":
		return strings.ContainsAny(s, "0123456789")
	case "email":
		at := strings.LastIndexByte(s, '@')
		return at != 0 && s != ""
	}
	return strings.TrimSpace(s) != "" || (rule == "keep" && s != "")
}

func TestPersonalWithoutRule(t *testing.T) {
	p := &mask.Policy{
		Personal: map[string]mask.Rule{"memo": {}},
		Roles:    map[string]map[string]mask.Access{"cs": {"memo": mask.Masked}},
	}
	plan, err := p.Plan([]string{"cs"}, []exportd.Column{{Name: "id"}, {Name: "memo"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := plan.NewWriter(func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
		return format.New(exportd.FormatCSV, w, cols, format.Options{})
	})(&buf, []exportd.Column{{Name: "id"}, {Name: "memo"}})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteRow([]exportd.Value{exportd.Int(1), exportd.String("secret")})
	w.WriteRow([]exportd.Value{exportd.Int(2), exportd.Null()})
	w.Close()
	if want := "id,memo\n1,\"\"\n2,\n"; buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}
