package nginxtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func nginxBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("EXPORTD_NGINX")
	if bin == "" {
		if os.Getenv("EXPORTD_REQUIRE_INTEGRATION") != "" {
			t.Fatal("EXPORTD_NGINX is not set")
		}
		t.Skip("EXPORTD_NGINX is not set")
	}
	return bin
}

// A request to /exports/… reaches the upstream as /…, through the shipped
// configuration; Stop ends nginx.
func TestStart(t *testing.T) {
	bin := nginxBin(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream saw "+r.URL.Path)
	}))
	defer up.Close()
	n, err := Start(Options{Bin: bin, Conf: "../../deploy/nginx/exportd.conf", Upstream: strings.TrimPrefix(up.URL, "http://"), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get("http://" + n.Addr + "/exports/v1/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "upstream saw /v1/healthz" {
		t.Errorf("through nginx: %d %q", res.StatusCode, b)
	}
	n.Stop()
	if _, err := http.Get("http://" + n.Addr + "/exports/v1/healthz"); err == nil {
		t.Error("nginx still answers after Stop")
	}
}

// A configuration that lost a line the tests rewrite is an error that
// names the line; an nginx that cannot start is an error with its log.
func TestStartErrors(t *testing.T) {
	bin := nginxBin(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "exportd.conf.in")
	os.WriteFile(conf, []byte("upstream exportd { server 127.0.0.1:8080; }\n"), 0o644)
	if _, err := Start(Options{Bin: bin, Conf: conf, Upstream: "127.0.0.1:1", Dir: dir}); err == nil || !strings.Contains(err.Error(), `"listen 80;"`) {
		t.Errorf("a configuration without its listen line: %v", err)
	}
	os.WriteFile(conf, []byte("server 127.0.0.1:8080;\nlisten 80;\nproxy_read_timeout 60s;\n"), 0o644)
	if _, err := Start(Options{Bin: bin, Conf: conf, Upstream: "127.0.0.1:1", Dir: dir}); err == nil || !strings.Contains(err.Error(), "exited before listening") {
		t.Errorf("an nginx that cannot parse its configuration: %v", err)
	}
}
