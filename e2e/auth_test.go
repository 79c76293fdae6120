package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/exportd/exportd/auth"
)

// authYAML declares one dataset of the standard table that analysts may
// export only for the category in their attributes. Tokens live in
// PostgreSQL; proxy headers are believed only from an address that is not
// this machine's.
const authYAML = `
timezone: UTC
auth:
  tokens_db: ${EXPORTD_E2E_PG}
  signed_links: true
  trusted_header: {user: X-Forwarded-User, proxies: [192.0.2.1/32]}
connections:
  pg: {url: "${EXPORTD_E2E_PG}"}
datasets:
  categories:
    sql: SELECT id, category FROM e2e_accounts WHERE id <= :rows AND category IN (:categories) ORDER BY id
    params:
      - {name: rows, type: int, default: 20}
      - {name: categories, type: enum, list: true, values: [standard, silver, gold, platinum, dormant], default: [standard, silver, gold, platinum, dormant]}
    columns: [{name: id, type: int}, {name: category, type: string}]
    roles: [admin, analyst]
    pin:
      analyst:
        categories: {attr: category}
`

const e2eLinkSecret = "e2e-link-secret-0123456789abcdef0123456789"

// Access control end to end: the real binary, tokens in PostgreSQL made
// and revoked by the CLI, behind the shipped nginx config.
func TestAccessControlThroughNginx(t *testing.T) {
	pg := pgURL(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "datasets.yaml")
	if err := os.WriteFile(cfg, []byte(authYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "EXPORTD_E2E_PG="+pg, "EXPORTD_LINK_SECRET="+e2eLinkSecret)
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(exportdBin(t), args...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("exportd %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	addr := freeAddr(t)
	logf, err := os.Create(filepath.Join(dir, "exportd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exportdBin(t), "serve", "--config", cfg, "--addr", addr, "--log-format", "json")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("exportd log:\n%s", tail(string(b), 4000))
		}
	})
	waitHTTP(t, "http://"+addr+"/healthz")
	base := startNginx(t, addr)

	get := func(u string, header ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 400 {
			var e struct {
				Error struct{ Code, Field string } `json:"error"`
			}
			json.Unmarshal(b, &e)
			return resp.StatusCode, e.Error.Code + "/" + e.Error.Field
		}
		return resp.StatusCode, string(b)
	}
	export := base + "/v1/datasets/categories/export.csv"
	check := func(name, u string, status int, want string, header ...string) {
		t.Helper()
		if got, body := get(u, header...); got != status || (want != "" && body != want) {
			t.Errorf("%s: %d %q, want %d %q", name, got, body, status, want)
		}
	}

	// No credentials, and a user header from nginx (not a trusted proxy): 401.
	check("none", export, 401, "unauthenticated/")
	check("untrusted header", export, 401, "unauthenticated/", "X-Forwarded-User", "admin")
	check("untrusted header, direct", "http://"+addr+"/v1/datasets/categories/export.csv", 401, "unauthenticated/", "X-Forwarded-User", "admin")
	// Health stays open through nginx.
	check("healthz", base+"/healthz", 200, "")

	analyst := cli("token", "create", "--config", cfg, "--name", "park", "--roles", "analyst", "--attr", "category=gold")
	viewer := cli("token", "create", "--config", cfg, "--name", "yoon", "--roles", "viewer")
	gold := "\ufeffid,category\n" // ids ≤ 20 whose category is gold: (i/7)%5 == 2 for i = id-1
	for id := 1; id <= 20; id++ {
		if ((id-1)/7)%5 == 2 {
			gold += fmt.Sprintf("%d,gold\n", id)
		}
	}
	check("analyst", export, 200, gold, "Authorization", "Bearer "+analyst)
	check("analyst overrides the pin", export+"?categories=silver", 403, "pinned_parameter/categories", "Authorization", "Bearer "+analyst)
	check("viewer", export, 403, "forbidden/", "Authorization", "Bearer "+viewer)

	// A signed link through nginx's /exports/ prefix; changed, it is refused.
	keys, err := auth.NewKeys([]byte(e2eLinkSecret))
	if err != nil {
		t.Fatal(err)
	}
	link := base + auth.SignLink(keys, auth.Link{Dataset: "categories", Format: "csv",
		Params: neturl.Values{"rows": {"3"}}, Name: "host-user", Roles: []string{"admin"}, Expires: time.Now().Add(time.Minute)})
	check("link", link, 200, "\ufeffid,category\n1,standard\n2,standard\n3,standard\n")
	check("link changed", strings.Replace(link, "rows=3", "rows=20", 1), 403, "bad_link/")

	// Revoked with the CLI: refused at once by the running server.
	var id string
	for _, l := range strings.Split(cli("token", "list", "--config", cfg), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == "park" && strings.Contains(analyst, f[0]) {
			id = f[0]
		}
	}
	cli("token", "revoke", "--config", cfg, id)
	check("revoked", export, 401, "unauthenticated/", "Authorization", "Bearer "+analyst)

	// The audit lines name who exported what.
	b, _ := os.ReadFile(logf.Name())
	if !strings.Contains(string(b), `"principal":"park"`) || !strings.Contains(string(b), `"principal":"host-user"`) {
		t.Errorf("audit lines missing from the log:\n%s", tail(string(b), 3000))
	}
}
