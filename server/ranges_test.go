package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/server"
)

// A job download's Range cannot ask for an amplified answer: overlapping
// and adjacent ranges are merged (one left: a plain 206), a zero-byte
// suffix and more than a handful of ranges are 416.
func TestDownloadRanges(t *testing.T) {
	f := newAuthFixtureWith(t, nil, func(dir string, cfg *exportd.Config, src exportd.Source, c *server.Config) {
		c.Jobs = startJobs(t, dir, cfg, src, nil)
	})
	c := client(t)
	tok := bearer(f.token(t, "kim", []string{"admin"}, nil))
	resp, body := do(t, c, "POST", f.url+"/v1/datasets/everyone/jobs", map[string]any{"format": "csv"}, tok...)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("job: %d %s", resp.StatusCode, body)
	}
	var job struct{ ID, State string }
	json.Unmarshal(body, &job)
	for deadline := time.Now().Add(60 * time.Second); job.State != "succeeded"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) || job.State == "failed" {
			t.Fatalf("job %s", job.State)
		}
		_, body = do(t, c, "GET", f.url+"/v1/jobs/"+job.ID, nil, tok...)
		json.Unmarshal(body, &job)
	}
	u := f.url + "/v1/jobs/" + job.ID + "/download"
	_, whole := do(t, c, "GET", u, nil, tok...)
	if len(whole) < 12 {
		t.Fatalf("result %q", whole)
	}
	n := len(whole)
	for _, tc := range []struct {
		rng       string
		status    int
		body      string // for a single range
		multipart bool
	}{
		{strings.Repeat("0-0,", 25) + "0-0", 206, string(whole[:1]), false}, // 26 times the same byte
		{"0-4,2-9", 206, string(whole[:10]), false},
		{"0-3,4-7", 206, string(whole[:8]), false}, // adjacent
		{"-3,0-1", 206, "", true},
		{"0-0,2-2,4-4,6-6,8-8", 206, "", true},
		{"0-0,2-2,4-4,6-6,8-8,10-10", 416, "", false},
		{"-0", 416, "", false},
		{"0-1,-0", 416, "", false},
	} {
		resp, body := do(t, c, "GET", u, nil, append([]string{"Range", "bytes=" + tc.rng}, tok...)...)
		if resp.StatusCode != tc.status {
			t.Errorf("Range bytes=%s: %s (%d bytes), want %d", tc.rng, resp.Status, len(body), tc.status)
			continue
		}
		mp := strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges")
		switch {
		case tc.status == 416:
			if resp.Header.Get("Exportd-Range-Error") == "" {
				t.Errorf("Range bytes=%s: 416 without the reason", tc.rng)
			}
		case mp != tc.multipart:
			t.Errorf("Range bytes=%s: multipart %v, want %v", tc.rng, mp, tc.multipart)
		case !tc.multipart && string(body) != tc.body:
			t.Errorf("Range bytes=%s: %q, want %q", tc.rng, body, tc.body)
		case tc.multipart && len(body) > n+5*200: // at most 5 parts, each with its part header
			t.Errorf("Range bytes=%s: %d bytes for a %d-byte file", tc.rng, len(body), n)
		}
	}
}
