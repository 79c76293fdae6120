package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/exportd/exportd"
)

// Every route the mux serves is in the OpenAPI document, and every path of
// the document is a route.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	s, err := New(Config{Datasets: &exportd.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, rt := range s.routes() {
		seen[rt.openAPI] = true
		ops, ok := doc.Paths[rt.openAPI]
		if !ok {
			t.Errorf("route %s %s: path %s missing from openapi.json", rt.method, rt.pattern, rt.openAPI)
			continue
		}
		if _, ok := ops[strings.ToLower(rt.method)]; !ok {
			t.Errorf("route %s %s: no %s operation in openapi.json", rt.method, rt.pattern, rt.method)
		}
		if len(ops) != 1 {
			t.Errorf("path %s: %d operations in openapi.json, the server serves one", rt.openAPI, len(ops))
		}
		// The documented path reaches the route's pattern in the mux.
		path := strings.NewReplacer("{name}", "items", "{format}", "csv").Replace(rt.openAPI)
		if _, pattern := s.mux.Handler(mustRequest(t, rt.method, path)); pattern != rt.method+" "+rt.pattern {
			t.Errorf("openapi path %s reaches %q, want %q", path, pattern, rt.method+" "+rt.pattern)
		}
	}
	for p := range doc.Paths {
		if !seen[p] {
			t.Errorf("openapi.json documents %s, which the server does not serve", p)
		}
	}
}

func mustRequest(t *testing.T, method, path string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, "http://x"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
