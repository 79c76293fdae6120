// Package django_test checks the README's Django recipe: Debian's python3
// signs links with exportd_link.py, the exact code the README shows, and a
// real exportd server accepts them and refuses them changed or expired.
package django_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/datasets"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
	"github.com/exportd/exportd/sqlite"
)

const python = "/usr/bin/python3"

const datasetsYAML = `
connections:
  main: {url: "sqlite:members.db"}
datasets:
  member_scores:
    sql: SELECT id, name, branch FROM members WHERE joined >= :from AND (:branch IS NULL OR branch = :branch) ORDER BY id
    params: [{name: from, type: date, required: true}, {name: branch, type: string}]
    columns: [{name: id, type: int}, {name: name, type: string}, {name: branch, type: string}]
    roles: [admin, manager]
    pin: {manager: {branch: {attr: branch}}}
`

// The README shows exportd_link.py verbatim.
func TestREADMEShowsTheTestedCode(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	code, err := os.ReadFile("exportd_link.py")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```python\n"+string(code)+"```\n") {
		t.Error("README.md does not show examples/django/exportd_link.py verbatim in a ```python block")
	}
}

func TestDjangoRecipe(t *testing.T) {
	if _, err := os.Stat(python); err != nil {
		// Like every integration test: skipped without its component,
		// failed when EXPORTD_REQUIRE_INTEGRATION=1.
		if os.Getenv("EXPORTD_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("%s: %v (EXPORTD_REQUIRE_INTEGRATION=1)", python, err)
		}
		t.Skipf("%s: %v", python, err)
	}
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "members.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		`CREATE TABLE members (id INTEGER PRIMARY KEY, name TEXT, branch TEXT, joined TEXT)`,
		`INSERT INTO members VALUES (1, '김민준', '부산', '2024-02-01'), (2, '이서연', '서울', '2024-03-01'),
		 (3, '박도윤', '부산', '2023-01-01'), (4, '최하은', '부산', '2024-05-01')`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	cfgPath := filepath.Join(dir, "datasets.yaml")
	os.WriteFile(cfgPath, []byte(datasetsYAML), 0o644)
	cfg, err := datasets.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	src, err := sqlite.Open(context.Background(), filepath.Join(dir, "members.db"), exportd.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	secret := "0123456789abcdef0123456789abcdef-django"
	keys, err := auth.NewKeys([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, server.Config{
		Datasets: cfg, Sources: map[string]exportd.Source{"main": src},
		Auth:   auth.New(auth.Config{Links: keys}),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})

	// Python signs: a manager of 부산 (with a purpose), the same link
	// tampered with in three ways, and an expired link.
	script := `
import json, sys
sys.path.insert(0, sys.argv[1])
from exportd_link import exportd_link
base, secret = sys.argv[2], sys.argv[3]
good = exportd_link(base, secret, "member_scores", "csv", {"from": "2024-01-01"}, "kim@example.com", ["manager"],
                    attrs={"branch": "부산"}, purpose="audit", purpose_text="월간 점검 & 보고")
admin = exportd_link(base, secret, "member_scores", "csv", {"from": "2024-01-01", "branch": "서울"}, "lee", ["admin"])
expired = exportd_link(base, secret, "member_scores", "csv", {"from": "2024-01-01"}, "lee", ["admin"], ttl=-1)
print(json.dumps({"good": good, "admin": admin, "expired": expired,
    "changed": good.replace("from=2024-01-01", "from=2000-01-01"),
    "added": good + "&branch=%EC%84%9C%EC%9A%B8",
    "role": good.replace("link.roles=manager", "link.roles=admin"),
}))
`
	out, err := exec.Command(python, "-c", script, ".", srv.URL, secret).Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var links map[string]string
	if err := json.Unmarshal(out, &links); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for name, tc := range map[string]struct {
		status int
		want   string // body (200) or error code
	}{
		"good":    {200, "\ufeffid,name,branch\n1,김민준,부산\n4,최하은,부산\n"},
		"admin":   {200, "\ufeffid,name,branch\n2,이서연,서울\n"},
		"changed": {403, "bad_link"},
		"added":   {403, "bad_link"},
		"role":    {403, "bad_link"},
		"expired": {403, "link_expired"},
	} {
		resp, err := http.Get(links[name])
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := string(body)
		if resp.StatusCode >= 400 {
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			json.Unmarshal(body, &e)
			got = e.Error.Code
		}
		if resp.StatusCode != tc.status || got != tc.want {
			t.Errorf("%s link: %d %q, want %d %q\n%s", name, resp.StatusCode, got, tc.status, tc.want, links[name])
		}
	}
}
