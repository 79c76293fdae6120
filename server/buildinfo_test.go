package server_test

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/internal/buildinfo"
	"github.com/exportd/exportd/server"
)

// /healthz and the exportd_build_info metric name the running build, so
// an operator sees which nodes an upgrade has reached.
func TestBuildInfo(t *testing.T) {
	s, err := server.New(server.Config{Datasets: &exportd.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) string {
		t.Helper()
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		b, _ := io.ReadAll(w.Result().Body)
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", path, w.Code, b)
		}
		return string(b)
	}
	bi := buildinfo.Read()
	var h struct{ Status, Version, Revision, Go string }
	if body := get("/healthz"); json.Unmarshal([]byte(body), &h) != nil ||
		h.Status != "ok" || h.Version == "" || h.Version != bi.Version || h.Revision != bi.Revision || h.Go != runtime.Version() {
		t.Errorf("/healthz: %s, want version %q revision %q go %q", body, bi.Version, bi.Revision, runtime.Version())
	}
	want := `exportd_build_info{goversion="` + runtime.Version() + `",revision="` + bi.Revision + `",version="` + bi.Version + `"} 1` + "\n"
	if body := get("/metrics"); !strings.Contains(body, want) {
		t.Errorf("/metrics has no %q", want)
	}
}
