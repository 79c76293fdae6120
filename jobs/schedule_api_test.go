package jobs_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/server"
)

// TestScheduleAPI: GET /v1/schedules shows the schedules of the datasets a
// principal may run, and the last run's link only to whom may use the
// schedule; POST …/run runs it for the admin and for a principal with the
// owner's rights, and refuses a principal pinned to another region (403)
// and one who may not run the dataset (404), naming the field.
func TestScheduleAPI(t *testing.T) {
	rcv := newReceiver(t, 0)
	s := &exportd.Schedule{Dataset: "region_sales", Name: "monthly", Cron: "30 0 1 * *",
		Params:   map[string][]string{"from": {"start of last month"}, "to": {"end of last month"}},
		Owner:    exportd.ScheduleOwner{Name: "kim", Roles: []string{"manager"}, Attrs: map[string]string{"region": "서울"}},
		Webhooks: []string{rcv.URL}}
	f := schedFixture(t, s)
	e := startSchedServer(t, f, "sqlite:"+filepath.Join(t.TempDir(), "jobs.db"), t.TempDir(), func(c *server.Config) {
		c.Auth = auth.New(auth.Config{Header: &auth.HeaderTrust{User: "X-User", Roles: "X-Roles", AttrsPrefix: "X-Attr-",
			Proxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
		c.Principal = nil
	})
	call := func(method, path, user, roles, region string) (int, []byte) {
		t.Helper()
		var body io.Reader
		if method == "POST" {
			body = bytes.NewReader([]byte(`{"at": "2024-12-01T00:30:00+09:00"}`))
		}
		req, _ := http.NewRequest(method, e.url+path, body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-User", user)
		req.Header.Set("X-Roles", roles)
		if region != "" {
			req.Header.Set("X-Attr-Region", region)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	const run = "/v1/schedules/region_sales/monthly/run"

	code, b := call("POST", run, "lee", "manager", "부산")
	if code != 403 || !strings.Contains(string(b), `"field":"name"`) || !strings.Contains(string(b), "region") {
		t.Fatalf("a manager pinned to 부산: %d %s", code, b)
	}
	if code, b := call("POST", run, "choi", "clerk", ""); code != 404 {
		t.Fatalf("a clerk: %d %s", code, b)
	}
	code, b = call("POST", run, "park", "manager", "서울")
	if code != 202 {
		t.Fatalf("a manager of 서울: %d %s", code, b)
	}
	var j jobs.Job
	json.Unmarshal(b, &j)
	if j.Params["region"][0] != "서울" || j.Params["from"][0] != "2024-11-01" {
		t.Fatalf("run's params %v", j.Params)
	}
	if done := e.wait(t, j.ID); done.State != jobs.StateSucceeded || done.Rows != novemberRows {
		t.Fatalf("run: %s %d %s", done.State, done.Rows, done.Error)
	}
	if code, b := call("POST", run, "root", "admin", ""); code != 202 {
		t.Fatalf("the admin: %d %s", code, b)
	}

	list := func(user, roles, region string) []jobs.ScheduleStatus {
		t.Helper()
		code, b := call("GET", "/v1/schedules", user, roles, region)
		if code != 200 {
			t.Fatalf("list: %d %s", code, b)
		}
		var out struct{ Schedules []jobs.ScheduleStatus }
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out.Schedules
	}
	if l := list("choi", "clerk", ""); len(l) != 0 {
		t.Errorf("a clerk sees %+v", l)
	}
	l := list("lee", "manager", "부산")
	if len(l) != 1 || l[0].MayRun || l[0].LastJob == nil || l[0].LastJob.DownloadURL != "" || l[0].NextRun.IsZero() {
		t.Errorf("a manager of 부산 sees %+v", l)
	}
	l = list("park", "manager", "서울")
	if len(l) != 1 || !l[0].MayRun || l[0].Owner != "schedule:kim" || l[0].Webhooks[0] != rcv.URL {
		t.Errorf("a manager of 서울 sees %+v", l)
	}

	// The web UI's page, and its run button.
	e.wait(t, l[0].LastJob.ID)
	code, b = call("GET", "/ui/schedules", "park", "manager", "서울")
	page := string(b)
	for _, want := range []string{"<h1>정기 내보내기</h1>", "지역 판매", "<code>30 0 1 * *</code>", "Asia/Seoul",
		"2024-12-01 00:30 (수동)", "완료", "2,250", "웹훅 " + rcv.URL + " ✓", "/v1/jobs/" + l[0].LastJob.ID + "/download?expires=",
		`action="/ui/schedules/region_sales/monthly/run"`, ">지금 실행</button>"} {
		if code != 200 || !strings.Contains(page, want) {
			t.Errorf("the page for a manager of 서울 (%d) lacks %q", code, want)
		}
	}
	_, b = call("GET", "/ui/schedules", "lee", "manager", "부산")
	if page := string(b); !strings.Contains(page, "지역 판매") || strings.Contains(page, "/download?") || strings.Contains(page, "지금 실행") {
		t.Errorf("the page for a manager of 부산 shows the link or the button:\n%s", page)
	}
	req, _ := http.NewRequest("POST", e.url+"/ui/schedules/region_sales/monthly/run", nil)
	req.Header.Set("X-User", "park")
	req.Header.Set("X-Roles", "manager")
	req.Header.Set("X-Attr-Region", "서울")
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || !strings.HasPrefix(loc, "/ui/schedules?ran=") {
		t.Errorf("run from the page: %d %q", resp.StatusCode, loc)
	}
	req.Header.Set("X-Attr-Region", "부산")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("run from the page by a manager of 부산: %d", resp.StatusCode)
	}
}
