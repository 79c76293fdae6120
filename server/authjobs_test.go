package server_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/server"
)

// TestJobsAccessControl checks the job routes with real principals (API
// tokens): another principal's job is not found, a role without the
// dataset is refused, and pinned parameters hold for jobs as for streams.
func TestJobsAccessControl(t *testing.T) {
	f := newAuthFixtureWith(t, nil, func(dir string, cfg *exportd.Config, src exportd.Source, c *server.Config) {
		c.Jobs = startJobs(t, dir, cfg, src, nil)
	})
	c := client(t)
	admin := bearer(f.token(t, "kim-admin", []string{"admin"}, nil))
	busan := bearer(f.token(t, "busan-manager", []string{"manager"}, map[string]string{"branch": "부산"}))
	clerk := bearer(f.token(t, "clerk", []string{"clerk"}, nil))

	// The manager's job: the pin fills in the branch.
	resp, body := do(t, c, "POST", f.url+"/v1/datasets/branch_members/jobs", map[string]any{"format": "csv"}, busan...)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("manager's job: %d %s", resp.StatusCode, body)
	}
	var job struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	json.Unmarshal(body, &job)
	for deadline := time.Now().Add(60 * time.Second); job.State != "succeeded"; {
		if time.Now().After(deadline) {
			t.Fatalf("job still %s", job.State)
		}
		time.Sleep(50 * time.Millisecond)
		resp, body = do(t, c, "GET", f.url+"/v1/jobs/"+job.ID, nil, busan...)
		if resp.StatusCode != 200 {
			t.Fatalf("own job: %d %s", resp.StatusCode, body)
		}
		json.Unmarshal(body, &job)
		if job.State == "failed" {
			t.Fatalf("job failed: %s", body)
		}
	}
	resp, body = do(t, c, "GET", f.url+"/v1/jobs/"+job.ID+"/download", nil, busan...)
	if want := "\ufeffid,name,branch\n1,김민준,부산\n3,박도윤,부산\n"; resp.StatusCode != 200 || string(body) != want {
		t.Fatalf("manager's result: %d %q, want %q", resp.StatusCode, body, want)
	}

	// Overriding the pin through a job is refused, naming the parameter.
	resp, body = do(t, c, "POST", f.url+"/v1/datasets/branch_members/jobs",
		map[string]any{"format": "csv", "params": map[string]any{"branch": "서울"}}, busan...)
	if e := decodeError(t, body); resp.StatusCode != 403 || e.Error.Code != "pinned_parameter" || e.Error.Field != "branch" {
		t.Fatalf("pin override through a job: %d %s", resp.StatusCode, body)
	}
	// A role without the dataset cannot start a job on it.
	resp, body = do(t, c, "POST", f.url+"/v1/datasets/branch_members/jobs", map[string]any{"format": "csv"}, clerk...)
	if resp.StatusCode != 403 {
		t.Fatalf("clerk's job: %d %s", resp.StatusCode, body)
	}
	// Another principal — even an admin — does not see the job at all.
	for _, path := range []string{"/v1/jobs/" + job.ID, "/v1/jobs/" + job.ID + "/download", "/v1/jobs/" + job.ID + "/events"} {
		resp, body = do(t, c, "GET", f.url+path, nil, admin...)
		if resp.StatusCode != 404 {
			t.Errorf("admin GET %s: %d %s, want 404", path, resp.StatusCode, body)
		}
	}
	resp, body = do(t, c, "DELETE", f.url+"/v1/jobs/"+job.ID, nil, admin...)
	if resp.StatusCode != 404 {
		t.Errorf("admin DELETE: %d %s, want 404", resp.StatusCode, body)
	}
	resp, body = do(t, c, "GET", f.url+"/v1/jobs", nil, admin...)
	var list struct {
		Jobs []json.RawMessage `json:"jobs"`
	}
	if json.Unmarshal(body, &list); resp.StatusCode != 200 || len(list.Jobs) != 0 {
		t.Errorf("admin's job list: %d %s, want empty", resp.StatusCode, body)
	}
	resp, body = do(t, c, "GET", f.url+"/v1/jobs", nil, busan...)
	if json.Unmarshal(body, &list); resp.StatusCode != 200 || len(list.Jobs) != 1 {
		t.Errorf("manager's job list: %d %s, want one job", resp.StatusCode, body)
	}
	// No credentials: 401.
	resp, _ = do(t, c, "GET", f.url+"/v1/jobs/"+job.ID, nil)
	if resp.StatusCode != 401 {
		t.Errorf("anonymous GET job: %d, want 401", resp.StatusCode)
	}
}
