package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/server"
)

// revoke revokes the tokens named name.
func (f *authFixture) revoke(t *testing.T, name string) {
	t.Helper()
	list, err := f.tokens.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range list {
		if ti.Name == name {
			if err := f.tokens.Revoke(context.Background(), ti.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A credential that fails refuses the request even when it also carries a
// valid signed link: revoking a token is not worked around by a link, for
// an export or a job's download.
func TestRevokedTokenBesideValidLink(t *testing.T) {
	f := newAuthFixtureWith(t, nil, func(dir string, cfg *exportd.Config, src exportd.Source, c *server.Config) {
		c.Jobs = startJobs(t, dir, cfg, src, nil)
	})
	c := client(t)
	tok := f.token(t, "kim", []string{"admin"}, nil)
	link := auth.SignLink(linkKeys, auth.Link{Dataset: "everyone", Format: "csv", Name: "kim",
		Roles: []string{"admin"}, Expires: f.now.Add(5 * time.Minute)})

	// a job of the token's, with its signed download link
	resp, body := do(t, c, "POST", f.url+"/v1/datasets/everyone/jobs", map[string]any{"format": "csv"}, bearer(tok)...)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("job: %d %s", resp.StatusCode, body)
	}
	var job struct {
		ID, State, DownloadURL string `json:"-"`
	}
	var raw map[string]any
	for deadline := time.Now().Add(60 * time.Second); job.State != "succeeded"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("job still %s", job.State)
		}
		json.Unmarshal(body, &raw)
		job.ID, _ = raw["id"].(string)
		job.State, _ = raw["state"].(string)
		job.DownloadURL, _ = raw["download_url"].(string)
		if job.State == "succeeded" {
			break
		}
		_, body = do(t, c, "GET", f.url+"/v1/jobs/"+job.ID, nil, bearer(tok)...)
	}

	// with the valid token, or no token, the links work
	f.wantStatus(t, link, 200, "", "", bearer(tok)...)
	f.wantStatus(t, link, 200, "", "")
	f.wantStatus(t, job.DownloadURL, 200, "", "", bearer(tok)...)
	f.wantStatus(t, job.DownloadURL, 200, "", "")

	f.revoke(t, "kim")
	f.wantStatus(t, link, 401, "unauthenticated", "", bearer(tok)...)
	f.wantStatus(t, job.DownloadURL, 401, "unauthenticated", "", bearer(tok)...)
	// an unknown token, or a malformed Authorization, fails as well
	f.wantStatus(t, link, 401, "unauthenticated", "", bearer("exd_nosuchtoken")...)
	f.wantStatus(t, job.DownloadURL, 401, "unauthenticated", "", "Authorization", "Basic a2ltOmtpbQ==")
}

// Principals are namespaced by where they come from: the user kim a
// trusted proxy names and the API token named kim are two principals, and
// one does not see the other's jobs.
func TestPrincipalSources(t *testing.T) {
	f := newAuthFixtureWith(t, nil, func(dir string, cfg *exportd.Config, src exportd.Source, c *server.Config) {
		c.Jobs = startJobs(t, dir, cfg, src, nil)
	})
	c := client(t)
	tok := bearer(f.token(t, "kim", []string{"admin"}, nil))
	asHeaderKim := func(method, target string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, bytes.NewReader(body))
		req.RemoteAddr = "10.1.2.3:40000" // the trusted proxy
		req.Header.Set("X-Forwarded-User", "kim")
		req.Header.Set("X-Forwarded-Roles", "admin")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		f.srv.Handler().ServeHTTP(w, req)
		return w
	}
	w := asHeaderKim("POST", "/v1/datasets/everyone/jobs", []byte(`{"format": "csv"}`))
	if w.Code != http.StatusAccepted {
		t.Fatalf("header kim's job: %d %s", w.Code, w.Body)
	}
	var job struct {
		ID string `json:"id"`
	}
	json.Unmarshal(w.Body.Bytes(), &job)
	if w := asHeaderKim("GET", "/v1/jobs/"+job.ID, nil); w.Code != 200 {
		t.Fatalf("header kim's own job: %d %s", w.Code, w.Body)
	}
	for _, path := range []string{"/v1/jobs/" + job.ID, "/v1/jobs/" + job.ID + "/events"} {
		if resp, body := do(t, c, "GET", f.url+path, nil, tok...); resp.StatusCode != 404 {
			t.Errorf("token kim GET %s: %d %s, want 404", path, resp.StatusCode, body)
		}
	}
	resp, body := do(t, c, "GET", f.url+"/v1/jobs", nil, tok...)
	var list struct {
		Jobs []json.RawMessage `json:"jobs"`
	}
	if json.Unmarshal(body, &list); resp.StatusCode != 200 || len(list.Jobs) != 0 {
		t.Errorf("token kim's list: %d %s", resp.StatusCode, body)
	}
	// and the other way round
	resp, body = do(t, c, "POST", f.url+"/v1/datasets/everyone/jobs", map[string]any{"format": "csv", "params": url.Values{}}, tok...)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("token kim's job: %d %s", resp.StatusCode, body)
	}
	json.Unmarshal(body, &job)
	if w := asHeaderKim("GET", "/v1/jobs/"+job.ID, nil); w.Code != 404 {
		t.Errorf("header kim GET token kim's job: %d %s", w.Code, w.Body)
	}
	if (&auth.Principal{Name: "kim", Via: auth.ViaHeader}).ID() == (&auth.Principal{Name: "kim", Via: auth.ViaToken}).ID() {
		t.Error("header kim and token kim have one identity")
	}
}
