package auth_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/auth"
)

// The store behaves the same on SQLite and, when EXPORTD_POSTGRES_URL is
// set, on PostgreSQL.
func TestStore(t *testing.T) {
	urls := map[string]string{"sqlite": "sqlite:" + filepath.Join(t.TempDir(), "auth.db")}
	if u := os.Getenv("EXPORTD_POSTGRES_URL"); u != "" {
		urls["postgres"] = u
	}
	for name, u := range urls {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, err := auth.OpenStore(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tok, id, err := s.Create(ctx, "kim", []string{"manager", "viewer"}, map[string]string{"branch": "부산"})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(tok, "exd_"+id+"_") || len(tok) < 4+12+1+43 {
				t.Fatalf("token %q id %q", tok, id)
			}
			p, err := s.Lookup(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			want := &auth.Principal{Name: "kim", Roles: []string{"manager", "viewer"}, Attrs: map[string]string{"branch": "부산"}, Via: auth.ViaToken}
			if !reflect.DeepEqual(p, want) {
				t.Errorf("principal %+v", p)
			}
			// A token differing in one character of its secret, or its id, is unknown.
			for _, bad := range []string{tok[:len(tok)-1] + flip(tok[len(tok)-1]), "exd_000000000000_" + tok[len("exd_"+id+"_"):], "nope", ""} {
				if _, err := s.Lookup(ctx, bad); !errors.Is(err, auth.ErrUnauthenticated) {
					t.Errorf("Lookup(%q): %v", bad, err)
				}
			}
			// The store holds no token in clear: its row has the SHA-256 of
			// the secret, and neither the token nor its secret; nor has
			// any file of an SQLite store.
			secret := tok[len("exd_"+id+"_"):]
			sum := sha256.Sum256([]byte(secret))
			row := storedRow(t, u, id)
			if !slices.Contains(row, hex.EncodeToString(sum[:])) {
				t.Errorf("stored row %q lacks the secret's SHA-256", row)
			}
			for _, col := range row {
				if strings.Contains(col, secret) || strings.Contains(col, tok) {
					t.Errorf("stored row holds the token in clear: %q", row)
				}
			}
			if path, ok := strings.CutPrefix(u, "sqlite:"); ok {
				files, _ := filepath.Glob(path + "*") // the database, its WAL and shared memory
				hashFound := false
				for _, f := range files {
					b, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					if bytes.Contains(b, []byte(secret)) {
						t.Errorf("%s holds the token's secret", filepath.Base(f))
					}
					hashFound = hashFound || bytes.Contains(b, []byte(hex.EncodeToString(sum[:])))
				}
				if !hashFound {
					t.Errorf("no file of %v holds the hash: the test reads the wrong files", files)
				}
			}
			list, err := s.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, ti := range list {
				if ti.ID == id {
					found = ti.Name == "kim" && ti.RevokedAt.IsZero() && ti.Attrs["branch"] == "부산"
				}
			}
			if !found {
				t.Errorf("list %+v", list)
			}
			if err := s.Revoke(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Lookup(ctx, tok); !errors.Is(err, auth.ErrUnauthenticated) || !strings.Contains(err.Error(), "revoked") {
				t.Errorf("revoked: %v", err)
			}
			if err := s.Revoke(ctx, "ffffffffffff"); !errors.Is(err, auth.ErrUnknownToken) {
				t.Errorf("revoke unknown: %v", err)
			}
		})
	}
}

// storedRow reads the token store's row of id, every column as text.
func storedRow(t *testing.T, url, id string) []string {
	t.Helper()
	driver, dsn := "pgx", url
	if path, ok := strings.CutPrefix(url, "sqlite:"); ok {
		driver, dsn = "sqlite", path
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT * FROM exportd_tokens WHERE id = '` + id + `'`) // id is hex
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		t.Fatalf("no stored row for %s (%v)", id, rows.Err())
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(cols))
	for i, v := range vals {
		out[i] = v.String
	}
	return out
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestSignedLink(t *testing.T) {
	secret, err := auth.NewKeys([]byte(strings.Repeat("s", 32)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	l := auth.Link{Dataset: "members", Format: "xlsx", Params: url.Values{"from": {"2024-01-01"}, "grades": {"gold", "silver"}},
		Name: "kim", Roles: []string{"manager"}, Attrs: map[string]string{"branch": "부산 중구"},
		Purpose: "audit", PurposeText: "월간 점검 & 보고", Expires: now.Add(time.Minute)}
	u := auth.SignLink(secret, l)
	pu, err := url.Parse(u)
	if err != nil || pu.Path != "/v1/datasets/members/export.xlsx" {
		t.Fatalf("%q %v", u, err)
	}
	verify := func(q url.Values, dataset, format string, at time.Time) (*auth.Principal, url.Values, error) {
		return auth.VerifyLink(secret, dataset, format, q, at)
	}
	p, params, err := verify(pu.Query(), "members", "xlsx", now)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "kim" || p.Via != auth.ViaLink || !reflect.DeepEqual(p.Roles, []string{"manager"}) || p.Attrs["branch"] != "부산 중구" ||
		p.Link.Purpose != "audit" || p.Link.PurposeText != "월간 점검 & 보고" || !p.Link.Expires.Equal(now.Add(time.Minute)) {
		t.Errorf("principal %+v link %+v", p, p.Link)
	}
	if !reflect.DeepEqual(params, l.Params) {
		t.Errorf("params %v", params)
	}
	// The order of the query does not matter.
	q := pu.Query()
	q["grades"] = []string{"silver", "gold"}
	if _, _, err := verify(q, "members", "xlsx", now); err != nil {
		t.Errorf("reordered: %v", err)
	}
	for name, edit := range map[string]func(q url.Values){
		"param changed": func(q url.Values) { q.Set("from", "2000-01-01") },
		"param added":   func(q url.Values) { q.Set("to", "2030-01-01") },
		"param removed": func(q url.Values) { q.Del("from") },
		"role added":    func(q url.Values) { q.Set(auth.LinkRoles, "manager,admin") },
		"attr changed":  func(q url.Values) { q.Set(auth.LinkAttrPrefix+"branch", "서울") },
		"expiry moved":  func(q url.Values) { q.Set(auth.LinkExp, "9999999999") },
		"purpose":       func(q url.Values) { q.Set(auth.LinkPurpose, "other") },
		"sig":           func(q url.Values) { q.Set(auth.LinkSig, strings.Repeat("0", 64)) },
		"no sig":        func(q url.Values) { q.Del(auth.LinkSig) },
		"two sigs":      func(q url.Values) { q.Add(auth.LinkSig, q.Get(auth.LinkSig)) },
	} {
		q := pu.Query()
		edit(q)
		if _, _, err := verify(q, "members", "xlsx", now); !errors.Is(err, auth.ErrBadLink) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := verify(pu.Query(), "other", "xlsx", now); !errors.Is(err, auth.ErrBadLink) {
		t.Errorf("other dataset: %v", err)
	}
	if _, _, err := verify(pu.Query(), "members", "csv", now); !errors.Is(err, auth.ErrBadLink) {
		t.Errorf("other format: %v", err)
	}
	if _, _, err := verify(pu.Query(), "members", "xlsx", now.Add(time.Minute)); !errors.Is(err, auth.ErrLinkExpired) {
		t.Errorf("expired: %v", err)
	}
	other, _ := auth.NewKeys([]byte(strings.Repeat("t", 32)))
	if _, _, err := auth.VerifyLink(other, "members", "xlsx", pu.Query(), now); !errors.Is(err, auth.ErrBadLink) {
		t.Errorf("other secret: %v", err)
	}
	// Rotated: a link signed with the old key verifies while the old key
	// is kept beside the new one, and not once it is dropped.
	rotated, _ := auth.NewKeys([]byte(strings.Repeat("s", 32)), []byte(strings.Repeat("t", 32)))
	if _, _, err := auth.VerifyLink(rotated, "members", "xlsx", pu.Query(), now); err != nil {
		t.Errorf("old link after rotation: %v", err)
	}
	if nu, _ := url.Parse(auth.SignLink(rotated, l)); nu != nil {
		if _, _, err := auth.VerifyLink(other, "members", "xlsx", nu.Query(), now); err != nil {
			t.Errorf("new link, signed by the newest key: %v", err)
		}
		if _, _, err := auth.VerifyLink(secret, "members", "xlsx", nu.Query(), now); !errors.Is(err, auth.ErrBadLink) {
			t.Errorf("new link under the old key alone: %v", err)
		}
	}
	if _, _, err := auth.VerifyLink(nil, "members", "xlsx", pu.Query(), now); !errors.Is(err, auth.ErrBadLink) {
		t.Errorf("no keys: %v", err)
	}
}

func TestHeaderTrustAndAnonymous(t *testing.T) {
	a := auth.New(auth.Config{
		Header:        &auth.HeaderTrust{User: "X-Forwarded-User", Roles: "X-Forwarded-Roles", AttrsPrefix: "X-Forwarded-Attr-", Proxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}},
		Anonymous:     &auth.Principal{Roles: []string{"viewer"}},
		AnonymousFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Forwarded-User", "lee")
	r.Header.Set("X-Forwarded-Roles", "manager, viewer")
	r.Header.Set("X-Forwarded-Attr-Branch", "부산")

	r.RemoteAddr = "10.0.0.1:5555"
	p, err := a.Authenticate(r)
	if err != nil || p.Name != "lee" || p.Via != auth.ViaHeader || !reflect.DeepEqual(p.Roles, []string{"manager", "viewer"}) || p.Attrs["branch"] != "부산" {
		t.Fatalf("trusted proxy: %+v %v", p, err)
	}
	// From another peer the headers are ignored: no principal at all.
	r.RemoteAddr = "10.0.0.2:5555"
	if p, err := a.Authenticate(r); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("untrusted peer: %+v %v", p, err)
	}
	// From loopback they are ignored too, and the anonymous principal applies.
	r.RemoteAddr = "127.0.0.1:5555"
	if p, err := a.Authenticate(r); err != nil || p.Name != auth.AnonymousName || p.Via != auth.ViaAnonymous || !p.HasRole("viewer") {
		t.Errorf("anonymous: %+v %v", p, err)
	}
	// A bearer token when the server has no token store is refused, not ignored.
	r.Header.Set("Authorization", "Bearer exd_x")
	if _, err := a.Authenticate(r); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("token: %v", err)
	}
}
