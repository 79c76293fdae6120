package server_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/server"
)

// Bad input gets a clear error before the first byte: an oversized job
// body is 413 (not a JSON syntax error about an unexpected EOF), a NUL
// byte in a text parameter is 400 naming it.
func TestBadInputBeforeFirstByte(t *testing.T) {
	f := newAuthFixtureWith(t, nil, func(dir string, cfg *exportd.Config, src exportd.Source, c *server.Config) {
		c.Jobs = startJobs(t, dir, cfg, src, nil)
	})
	c := client(t)
	tok := f.token(t, "kim", []string{"admin"}, nil)

	big := `{"format": "csv", "params": {"branch": "` + strings.Repeat("x", 2<<20) + `"}}`
	form := "format=csv&branch=" + strings.Repeat("x", 2<<20)
	for ct, body := range map[string]string{"application/json": big, "application/x-www-form-urlencoded": form} {
		req, _ := http.NewRequest("POST", f.url+"/v1/datasets/branch_members/jobs", bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		if e := decodeError(t, b.Bytes()); resp.StatusCode != http.StatusRequestEntityTooLarge || e.Error.Code != "body_too_large" {
			t.Errorf("%s body of %d bytes: %d %s", ct, len(body), resp.StatusCode, b.String())
		}
	}

	for _, v := range []string{"부산\x00", "\x00"} {
		path := "/v1/datasets/branch_members/export.csv?branch=" + url.QueryEscape(v)
		f.wantStatus(t, path, 400, "bad_parameter", "branch", bearer(tok)...)
	}
}
