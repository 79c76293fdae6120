package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGHUP reloads `exportd serve` without dropping anything: a download
// and a job under way when it arrives finish, byte for byte the same as
// undisturbed ones; a dataset added to the file is served after it; a
// file that does not check is refused (by SIGHUP and by POST
// /v1/admin/reload, with the reason) and the running configuration stays.
func TestServeReload(t *testing.T) {
	dir := t.TempDir()
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	cfg, err := prepareDemo(context.Background(), filepath.Join(dir, "demo"), 150_000, devnull)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	url, proc, logPath := startServe(t, dir, cfg)
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	const export = "/v1/datasets/accounts/export.csv"

	// A download under way, read slowly (about 4 MB/s, so it lasts a few
	// seconds), and a job, when SIGHUP comes with a new dataset in the file.
	resp, err := http.Get(url + export)
	if err != nil {
		t.Fatal(err)
	}
	var slow bytes.Buffer
	first := make([]byte, 256<<10)
	n, _ := io.ReadFull(resp.Body, first)
	slow.Write(first[:n])
	body, _ := json.Marshal(map[string]any{"format": "csv"})
	jresp, err := http.Post(url+"/v1/datasets/accounts/jobs", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var j struct{ ID, State, Error string }
	json.NewDecoder(jresp.Body).Decode(&j)
	jresp.Body.Close()

	added := strings.Replace(string(orig), "\ndatasets:\n", `
datasets:
  branches:
    title: 지점
    connection: demo
    sql: SELECT branch, count(*) AS members FROM members GROUP BY branch ORDER BY branch
    columns:
      - {name: branch, type: string}
      - {name: members, type: int}
`, 1)
	if err := os.WriteFile(cfg, []byte(added), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := io.CopyN(&slow, resp.Body, 64<<10)
		if err == io.EOF && n == 0 {
			break
		}
		if err != nil && err != io.EOF {
			t.Fatalf("the download under way failed after %d bytes: %v", slow.Len(), err)
		}
		time.Sleep(15 * time.Millisecond)
	}
	resp.Body.Close()
	if code, whole := get(export); code != 200 || !bytes.Equal(slow.Bytes(), whole) || len(whole) < 10<<20 {
		t.Errorf("the download under way (%d bytes) differs from an undisturbed one (%d bytes, %d)", slow.Len(), len(whole), code)
	}
	for deadline := time.Now().Add(60 * time.Second); j.State != "succeeded"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) || j.State == "failed" || j.State == "cancelled" {
			t.Fatalf("job under the reload: %+v", j)
		}
		_, b := get("/v1/jobs/" + j.ID)
		json.Unmarshal(b, &j)
	}
	if _, job := get("/v1/jobs/" + j.ID + "/download"); !bytes.Equal(job, slow.Bytes()) {
		t.Errorf("the job under the reload (%d bytes) differs from the download (%d bytes)", len(job), slow.Len())
	}

	// The new dataset is served, in the API and the UI.
	if code, b := get("/v1/datasets/branches/export.csv"); code != 200 || !strings.HasPrefix(strings.TrimPrefix(string(b), "\ufeff"), "branch,members\n") {
		t.Errorf("new dataset after SIGHUP: %d %q", code, b)
	}
	if _, b := get("/"); !strings.Contains(string(b), "/ui/datasets/branches") {
		t.Error("the UI does not list the new dataset")
	}

	// A file that does not check: a column the query does not return.
	broken := strings.Replace(added, "- {name: members, type: int}", "- {name: members, type: int}\n      - {name: nope, type: int}", 1)
	if err := os.WriteFile(cfg, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var log []byte
	for deadline := time.Now().Add(20 * time.Second); !bytes.Contains(log, []byte("reload refused")); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal logged:\n%s", log)
		}
		log, _ = os.ReadFile(logPath)
	}
	if !bytes.Contains(log, []byte("nope")) {
		t.Errorf("the refusal does not say why:\n%s", log)
	}
	if code, _ := get("/v1/datasets/branches/export.csv"); code != 200 {
		t.Errorf("after a refused reload the running configuration is gone: %d", code)
	}
	rresp, err := http.Post(url+"/v1/admin/reload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(rresp.Body)
	rresp.Body.Close()
	if rresp.StatusCode != http.StatusUnprocessableEntity || !bytes.Contains(rb, []byte("reload_refused")) || !bytes.Contains(rb, []byte("nope")) {
		t.Errorf("POST /v1/admin/reload of a broken file: %s %s", rresp.Status, rb)
	}

	// Back to the original file: the added dataset is gone again.
	if err := os.WriteFile(cfg, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	rresp, err = http.Post(url+"/v1/admin/reload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ = io.ReadAll(rresp.Body)
	rresp.Body.Close()
	if rresp.StatusCode != 200 || !bytes.Contains(rb, []byte(`"datasets": 3`)) {
		t.Errorf("POST /v1/admin/reload: %s %s", rresp.Status, rb)
	}
	if code, _ := get("/v1/datasets/branches/export.csv"); code != 404 {
		t.Errorf("a dataset removed by a reload: %d", code)
	}
	if _, m := get("/metrics"); !bytes.Contains(m, []byte(`exportd_reloads_total{outcome="failed"} 2`)) || !bytes.Contains(m, []byte(`exportd_reloads_total{outcome="ok"} 2`)) {
		t.Errorf("reload metrics:\n%s", grepLines(m, "exportd_reloads_total"))
	}
}

func grepLines(b []byte, s string) string {
	var out []string
	for l := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
