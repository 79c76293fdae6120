package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/exportd/exportd"
)

// Every API route (the jobs' included) is in the OpenAPI document with
// its method, and every operation of the document is a route; each
// documented path reaches its route's pattern in a mux built the way New
// builds the server's.
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
	// Without Config.Jobs the server serves no job route…
	if _, pattern := s.mux.Handler(mustRequest(t, "GET", "/v1/jobs")); pattern != "/" {
		t.Errorf("GET /v1/jobs without jobs reaches %q", pattern)
	}
	// …and with it, every route of routes and jobRoutes (registered
	// here by the same function as in New).
	routes := append(append(append(s.routes(), s.jobRoutes()...), s.scheduleRoutes()...), s.adminRoutes()...)
	mux := http.NewServeMux()
	handle(mux, routes)
	handle(mux, s.uiRoutes())
	served := map[string]bool{} // "get /path" of each route
	for _, rt := range routes {
		op := strings.ToLower(rt.method) + " " + rt.openAPI
		if served[op] {
			t.Errorf("route %s %s: %s twice", rt.method, rt.pattern, op)
		}
		served[op] = true
		ops, ok := doc.Paths[rt.openAPI]
		if !ok {
			t.Errorf("route %s %s: path %s missing from openapi.json", rt.method, rt.pattern, rt.openAPI)
			continue
		}
		if _, ok := ops[strings.ToLower(rt.method)]; !ok {
			t.Errorf("route %s %s: no %s operation in openapi.json", rt.method, rt.pattern, rt.method)
		}
		// The documented path reaches the route's pattern in the mux.
		path := strings.NewReplacer("{name}", "items", "{format}", "csv", "{id}", "j1", "{dataset}", "sales").Replace(rt.openAPI)
		if _, pattern := mux.Handler(mustRequest(t, rt.method, path)); pattern != rt.method+" "+rt.pattern {
			t.Errorf("openapi path %s %s reaches %q, want %q", rt.method, path, pattern, rt.method+" "+rt.pattern)
		}
	}
	for p, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
			default:
				continue // parameters, summary, description of the path
			}
			if !served[method+" "+p] {
				t.Errorf("openapi.json documents %s %s, which the server does not serve", strings.ToUpper(method), p)
			}
		}
	}
	if len(served) < 14 {
		t.Errorf("%d routes checked", len(served))
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
