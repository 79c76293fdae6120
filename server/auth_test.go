package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/datasets"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/sqlite"
)

const authYAML = `
connections:
  main: {url: "sqlite:members.db"}
datasets:
  branch_members:
    sql: SELECT id, name, branch FROM members WHERE (:branch IS NULL OR branch = :branch) ORDER BY id
    params: [{name: branch, type: string}]
    columns: [{name: id, type: int}, {name: name, type: string}, {name: branch, type: string}]
    roles: [admin, manager]
    pin:
      manager:
        branch: {attr: branch}
  everyone:
    sql: SELECT id FROM members ORDER BY id
    columns: [{name: id, type: int}]
`

var linkKeys = mustKeys([]byte(strings.Repeat("L", 32)))

// mustKeys returns link keys of keys, or panics.
func mustKeys(keys ...[]byte) *auth.Keys {
	k, err := auth.NewKeys(keys...)
	if err != nil {
		panic(err)
	}
	return k
}

// authFixture is a server with access control on a members table: two
// members in 부산, one in 서울.
type authFixture struct {
	url    string
	srv    *server.Server
	tokens *auth.Store
	log    *syncBuffer
	now    time.Time
}

func newAuthFixture(t *testing.T, edit func(*auth.Config)) *authFixture {
	t.Helper()
	return newAuthFixtureWith(t, edit, nil)
}

// newAuthFixtureWith is newAuthFixture with a hook on the server's Config
// (to add background jobs), called with the loaded datasets and source.
func newAuthFixtureWith(t *testing.T, edit func(*auth.Config), server2 func(dir string, cfg *exportd.Config, src exportd.Source, c *server.Config)) *authFixture {
	t.Helper()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "members.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		`CREATE TABLE members (id INTEGER PRIMARY KEY, name TEXT, branch TEXT)`,
		`INSERT INTO members VALUES (1, '김민준', '부산'), (2, '이서연', '서울'), (3, '박도윤', '부산')`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	cfgPath := filepath.Join(dir, "datasets.yaml")
	os.WriteFile(cfgPath, []byte(authYAML), 0o644)
	cfg, err := datasets.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	src, err := sqlite.Open(context.Background(), filepath.Join(dir, "members.db"), exportd.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	store, err := auth.OpenStore(context.Background(), cfg.Auth.TokensDB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &authFixture{tokens: store, log: &syncBuffer{}, now: time.Now()}
	ac := auth.Config{
		Tokens: store,
		Links:  linkKeys,
		// Only 10.1.2.3 may name users; the test's client is 127.0.0.1.
		Header: &auth.HeaderTrust{User: "X-Forwarded-User", Roles: "X-Forwarded-Roles", AttrsPrefix: "X-Forwarded-Attr-",
			Proxies: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32")}},
		Now: func() time.Time { return f.now },
	}
	if edit != nil {
		edit(&ac)
	}
	srv := (&fixture{cfg: cfg, src: src}).start(t, func(c *server.Config) {
		c.Auth = auth.New(ac)
		c.Logger = slog.New(slog.NewJSONHandler(f.log, nil))
		if server2 != nil {
			server2(dir, cfg, src, c)
		}
	})
	f.url, f.srv = srv.URL, srv.Server
	return f
}

func (f *authFixture) token(t *testing.T, name string, roles []string, attrs map[string]string) string {
	t.Helper()
	tok, _, err := f.tokens.Create(context.Background(), name, roles, attrs)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// wantStatus GETs path (relative to the server) with the given headers and
// checks the status and, for an error, its JSON code and field.
func (f *authFixture) wantStatus(t *testing.T, path string, status int, code, field string, header ...string) string {
	t.Helper()
	resp, body, err := get(t, client(t), f.url+path, header...)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != status {
		t.Fatalf("GET %s: status %d, want %d: %s", path, resp.StatusCode, status, body)
	}
	if status >= 400 {
		e := decodeError(t, body)
		if e.Error.Code != code || e.Error.Field != field {
			t.Errorf("GET %s: error %+v, want code %s field %q", path, e.Error, code, field)
		}
	}
	return string(body)
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func TestAuthNoCredentials(t *testing.T) {
	f := newAuthFixture(t, nil)
	for _, path := range []string{"/v1/datasets", "/v1/datasets/everyone", "/v1/datasets/everyone/export.csv", "/", "/nowhere"} {
		resp, body, _ := get(t, client(t), f.url+path)
		if resp.StatusCode != 401 || decodeError(t, body).Error.Code != "unauthenticated" ||
			resp.Header.Get("WWW-Authenticate") != `Bearer realm="exportd"` {
			t.Errorf("%s: %d %s %q", path, resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// A wrong, malformed or non-Bearer credential is 401 too.
	f.wantStatus(t, "/v1/datasets", 401, "unauthenticated", "", bearer("exd_000000000000_nope")...)
	f.wantStatus(t, "/v1/datasets", 401, "unauthenticated", "", "Authorization", "Basic a2ltOnB3")
	// Health, readiness, metrics and the API description stay open.
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/v1/openapi.json"} {
		f.wantStatus(t, path, 200, "", "")
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := newAuthFixture(t, nil)
	tok := f.token(t, "kim", []string{"admin"}, nil)
	for _, tc := range []struct {
		path   string
		header []string
	}{{"/healthz", nil}, {"/v1/datasets", nil}, {"/v1/datasets", bearer(tok)}, {"/v1/datasets/everyone/export.xlsx", bearer(tok)}} {
		resp, _, _ := get(t, client(t), f.url+tc.path, tc.header...)
		// A download may be framed by the server's own pages only (the UI
		// starts it in a hidden frame); nothing else may be framed.
		ancestors, frame := "'none'", "DENY"
		if strings.Contains(tc.path, "/export.") {
			ancestors, frame = "'self'", "SAMEORIGIN"
		}
		for k, v := range map[string]string{
			"Content-Security-Policy": "default-src 'self'; script-src 'self'; frame-ancestors " + ancestors + "; base-uri 'none'; form-action 'self'",
			"X-Frame-Options":         frame,
			"Referrer-Policy":         "no-referrer",
			"X-Content-Type-Options":  "nosniff",
		} {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s (%d): %s: %q", tc.path, resp.StatusCode, k, got)
			}
		}
	}
}

func TestTokenRolesAndRevocation(t *testing.T) {
	f := newAuthFixture(t, nil)
	viewer := f.token(t, "viewer1", []string{"viewer"}, nil)
	admin := f.token(t, "boss", []string{"admin"}, nil)

	// The listing holds only the datasets the principal may run.
	var list struct {
		Datasets []struct {
			Name   string              `json:"name"`
			Roles  []string            `json:"roles"`
			Pinned map[string][]string `json:"pinned"`
		} `json:"datasets"`
	}
	json.Unmarshal([]byte(f.wantStatus(t, "/v1/datasets", 200, "", "", bearer(viewer)...)), &list)
	if len(list.Datasets) != 1 || list.Datasets[0].Name != "everyone" {
		t.Errorf("viewer's list %+v", list)
	}
	json.Unmarshal([]byte(f.wantStatus(t, "/v1/datasets", 200, "", "", bearer(admin)...)), &list)
	if len(list.Datasets) != 2 || !slices.Equal(list.Datasets[0].Roles, []string{"admin", "manager"}) {
		t.Errorf("admin's list %+v", list)
	}

	// A dataset of other roles: 403, for its description and its export.
	f.wantStatus(t, "/v1/datasets/branch_members", 403, "forbidden", "", bearer(viewer)...)
	f.wantStatus(t, "/v1/datasets/branch_members/export.csv", 403, "forbidden", "", bearer(viewer)...)
	f.wantStatus(t, "/v1/datasets/everyone/export.csv", 200, "", "", bearer(viewer)...)
	if got := f.wantStatus(t, "/v1/datasets/branch_members/export.csv", 200, "", "", bearer(admin)...); strings.Count(got, "\n") != 4 {
		t.Errorf("admin export %q", got)
	}

	// A revoked token is 401 at once.
	list2, _ := f.tokens.List(context.Background())
	for _, ti := range list2 {
		if ti.Name == "viewer1" {
			if err := f.tokens.Revoke(context.Background(), ti.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.wantStatus(t, "/v1/datasets/everyone/export.csv", 401, "unauthenticated", "", bearer(viewer)...)
}

func TestPinnedParameters(t *testing.T) {
	f := newAuthFixture(t, nil)
	busan := f.token(t, "busan-manager", []string{"manager"}, map[string]string{"branch": "부산"})

	// The pin fills in the parameter: only 부산's members.
	got := f.wantStatus(t, "/v1/datasets/branch_members/export.csv", 200, "", "", bearer(busan)...)
	if want := "\ufeffid,name,branch\n1,김민준,부산\n3,박도윤,부산\n"; got != want {
		t.Errorf("pinned export %q, want %q", got, want)
	}
	// Giving the pinned value is fine; another one is 403 naming the parameter.
	f.wantStatus(t, "/v1/datasets/branch_members/export.csv?branch="+url.QueryEscape("부산"), 200, "", "", bearer(busan)...)
	f.wantStatus(t, "/v1/datasets/branch_members/export.csv?branch="+url.QueryEscape("서울"), 403, "pinned_parameter", "branch", bearer(busan)...)
	f.wantStatus(t, "/v1/datasets/branch_members/export.csv?branch="+url.QueryEscape("부산")+"&branch="+url.QueryEscape("서울"), 403, "pinned_parameter", "branch", bearer(busan)...)
	// The description shows the pin.
	var info struct {
		Pinned map[string][]string `json:"pinned"`
	}
	json.Unmarshal([]byte(f.wantStatus(t, "/v1/datasets/branch_members", 200, "", "", bearer(busan)...)), &info)
	if !slices.Equal(info.Pinned["branch"], []string{"부산"}) {
		t.Errorf("pinned %v", info.Pinned)
	}
	// A manager without a branch cannot export it at all.
	nobranch := f.token(t, "lost-manager", []string{"manager"}, nil)
	f.wantStatus(t, "/v1/datasets/branch_members/export.csv", 403, "pinned_parameter", "branch", bearer(nobranch)...)

	// The audit line names the principal, roles and bound parameters.
	var line map[string]any
	for _, l := range strings.Split(f.log.String(), "\n") {
		if strings.Contains(l, `"msg":"export"`) && strings.Contains(l, `"outcome":"ok"`) {
			json.Unmarshal([]byte(l), &line)
			break
		}
	}
	if line["principal"] != "busan-manager" || line["via"] != "token" || line["dataset"] != "branch_members" ||
		line["rows"] != float64(2) || line["bytes"] == nil || line["params"].(map[string]any)["branch"] != "부산" ||
		len(line["roles"].([]any)) != 1 {
		t.Errorf("audit line %v", line)
	}
	if !strings.Contains(f.log.String(), `"outcome":"pinned_parameter"`) {
		t.Errorf("the refused export is not in the log:\n%s", f.log.String())
	}
	// A refusal's log line shows the query as given, but never a password
	// put in it by mistake.
	f.wantStatus(t, "/v1/datasets/branch_members/export.csv?password=hunter2-in-url&branch="+url.QueryEscape("서울"), 403, "pinned_parameter", "branch", bearer(busan)...)
	if l := f.log.String(); strings.Contains(l, "hunter2") || !strings.Contains(l, `"branch":"서울"`) {
		t.Errorf("the refusal's log line has the password or lacks the query:\n%s", l)
	}
}

func TestHeaderTrust(t *testing.T) {
	f := newAuthFixture(t, func(c *auth.Config) {
		c.Anonymous = &auth.Principal{Roles: []string{"viewer"}}
		c.AnonymousFrom = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	})
	hdr := []string{"X-Forwarded-User", "park", "X-Forwarded-Roles", "manager", "X-Forwarded-Attr-Branch", "서울"}
	// From 127.0.0.1, which is not a trusted proxy, the headers are ignored: 401.
	f.wantStatus(t, "/v1/datasets/branch_members/export.csv", 401, "unauthenticated", "", hdr...)

	// From the trusted proxy they name the principal, attributes and all.
	req := httptest.NewRequest("GET", "/v1/datasets/branch_members/export.csv", nil)
	req.RemoteAddr = "10.1.2.3:40000"
	for i := 0; i < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(w, req)
	if want := "\ufeffid,name,branch\n2,이서연,서울\n"; w.Code != 200 || w.Body.String() != want {
		t.Errorf("trusted proxy: %d %q", w.Code, w.Body.String())
	}
	// Anonymous only from its network.
	req = httptest.NewRequest("GET", "/v1/datasets/everyone/export.csv", nil)
	req.RemoteAddr = "192.0.2.7:40000"
	w = httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(w, req)
	if w.Code != 200 {
		t.Errorf("anonymous: %d %s", w.Code, w.Body)
	}
	f.wantStatus(t, "/v1/datasets/everyone/export.csv", 401, "unauthenticated", "")
}

func TestSignedLinks(t *testing.T) {
	f := newAuthFixture(t, nil)
	link := func(dataset string, params url.Values, roles []string, attrs map[string]string, exp time.Time) string {
		return auth.SignLink(linkKeys, auth.Link{Dataset: dataset, Format: "csv", Params: params, Name: "kim",
			Roles: roles, Attrs: attrs, Expires: exp})
	}
	in := f.now.Add(5 * time.Minute)
	good := link("branch_members", url.Values{"branch": {"서울"}}, []string{"admin"}, nil, in)
	if got := f.wantStatus(t, good, 200, "", ""); got != "\ufeffid,name,branch\n2,이서연,서울\n" {
		t.Errorf("link export %q", got)
	}
	if !strings.Contains(f.log.String(), `"principal":"kim"`) || !strings.Contains(f.log.String(), `"via":"link"`) {
		t.Errorf("audit line without the link's principal:\n%s", f.log.String())
	}

	// Parameters in the link cannot be overridden or added to.
	f.wantStatus(t, strings.Replace(good, "branch=%EC%84%9C%EC%9A%B8", "branch=%EB%B6%80%EC%82%B0", 1), 403, "bad_link", "")
	f.wantStatus(t, good+"&branch="+url.QueryEscape("부산"), 403, "bad_link", "")
	f.wantStatus(t, strings.Replace(good, "link.roles=admin", "link.roles=admin%2Cmanager", 1), 403, "bad_link", "")
	// Another export, another format, another route.
	f.wantStatus(t, strings.Replace(good, "/branch_members/", "/everyone/", 1), 403, "bad_link", "")
	f.wantStatus(t, strings.Replace(good, "export.csv", "export.xlsx", 1), 403, "bad_link", "")
	f.wantStatus(t, strings.Replace(good, "/export.csv", "", 1), 403, "bad_link", "")
	// Expired.
	f.wantStatus(t, link("branch_members", nil, []string{"admin"}, nil, f.now.Add(-time.Second)), 403, "link_expired", "")
	// A link is bound by the dataset's roles and pins like any principal.
	f.wantStatus(t, link("branch_members", nil, []string{"viewer"}, nil, in), 403, "forbidden", "")
	f.wantStatus(t, link("branch_members", url.Values{"branch": {"서울"}}, []string{"manager"}, map[string]string{"branch": "부산"}, in), 403, "pinned_parameter", "branch")
	if got := f.wantStatus(t, link("branch_members", nil, []string{"manager"}, map[string]string{"branch": "부산"}, in), 200, "", ""); strings.Count(got, "부산") != 2 {
		t.Errorf("pinned link %q", got)
	}
}

func TestCSRF(t *testing.T) {
	// With jobs, so that a request past the check reaches the handler.
	f := newAuthFixtureWith(t, func(c *auth.Config) { c.Anonymous = &auth.Principal{Roles: []string{"admin"}} },
		func(dir string, cfg *exportd.Config, src exportd.Source, c *server.Config) {
			c.Jobs = startJobs(t, dir, cfg, src, nil)
		})
	// post returns the status and, for an error, its code.
	post := func(ctype, body string, header ...string) (int, string) {
		req, _ := http.NewRequest("POST", f.url+"/v1/datasets/everyone/jobs", strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e apiError
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error.Code
	}
	// A state-changing request a browser sends from another site (it says
	// so in Sec-Fetch-Site, or its Origin is not the server's) is refused,
	// whatever its body and credentials; the server's own pages, and
	// clients that are not browsers, pass.
	tok := bearer(f.token(t, "api", []string{"admin"}, nil))
	for _, tc := range []struct {
		ctype, body string
		header      []string
		csrf        bool // refused for CSRF
	}{
		{"application/x-www-form-urlencoded", "from=1", []string{"Sec-Fetch-Site", "cross-site"}, true},
		{"text/plain", "x", []string{"Sec-Fetch-Site", "same-site"}, true},
		{"", "", []string{"Origin", "https://evil.example"}, true},
		{"application/json", "{}", []string{"Sec-Fetch-Site", "cross-site"}, true},
		{"application/x-www-form-urlencoded", "", append([]string{"Sec-Fetch-Site", "cross-site"}, tok...), true},
		{"application/x-www-form-urlencoded", "from=1", []string{"Sec-Fetch-Site", "same-origin"}, false},
		{"application/json", "{}", []string{"Origin", f.url}, false},
		{"", "", nil, false},
		{"application/json", "{}", nil, false},
		{"application/x-www-form-urlencoded", "", tok, false},
	} {
		status, code := post(tc.ctype, tc.body, tc.header...)
		if tc.csrf && (status != 403 || code != "csrf") {
			t.Errorf("%+v: %d %s, want 403 csrf", tc, status, code)
		}
		// Past the check: the job is accepted (the form's from=1 is not
		// a parameter of the dataset: 400 from the handler).
		if want := map[bool]int{true: 400, false: 202}[strings.Contains(tc.body, "from=1")]; !tc.csrf && status != want {
			t.Errorf("%+v: %d %s, want %d from the handler", tc, status, code, want)
		}
	}
}

// The UI shows only the datasets the principal may run, and its form
// check applies the pins.
func TestUIAccessControl(t *testing.T) {
	f := newAuthFixture(t, nil)
	viewer := f.token(t, "viewer1", []string{"viewer"}, nil)
	busan := f.token(t, "busan-manager", []string{"manager"}, map[string]string{"branch": "부산"})
	if page := f.wantStatus(t, "/", 200, "", "", bearer(viewer)...); strings.Contains(page, "branch_members") || !strings.Contains(page, "everyone") {
		t.Errorf("viewer's index lists:\n%s", page)
	}
	resp, _, _ := get(t, client(t), f.url+"/ui/datasets/branch_members", bearer(viewer)...)
	if resp.StatusCode != 404 {
		t.Errorf("viewer's form of another role's dataset: %d", resp.StatusCode)
	}
	f.wantStatus(t, "/ui/datasets/branch_members/check?format=csv&branch="+url.QueryEscape("서울"), 403, "pinned_parameter", "branch", bearer(busan)...)
	var sub struct{ URL string }
	json.Unmarshal([]byte(f.wantStatus(t, "/ui/datasets/branch_members/check?format=csv", 200, "", "", bearer(busan)...)), &sub)
	if !strings.Contains(sub.URL, "branch="+url.QueryEscape("부산")) {
		t.Errorf("the form's download URL %q does not carry the pin", sub.URL)
	}
}
