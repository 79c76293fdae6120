package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/auth"
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
	cfg, err := prepareDemo(context.Background(), filepath.Join(dir, "demo"), 1_000_000, devnull)
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

	// A download of 1M rows under way, read slowly (so that it lasts a few
	// seconds), and a job of the same, when SIGHUP comes with a new dataset
	// in the file.
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
		time.Sleep(2 * time.Millisecond)
	}
	resp.Body.Close()
	if code, whole := get(export); code != 200 || !bytes.Equal(slow.Bytes(), whole) || len(whole) < 100<<20 {
		t.Errorf("the download under way (%d bytes) differs from an undisturbed one (%d bytes, %d)", slow.Len(), len(whole), code)
	}
	for deadline := time.Now().Add(3 * time.Minute); j.State != "succeeded"; time.Sleep(100 * time.Millisecond) {
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
	if rresp.StatusCode != 200 || !bytes.Contains(rb, []byte(`"datasets": 4`)) {
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

// A reload reads the secrets given by file again, so rotating them needs
// no restart: with a second key added to --link-secret-file, new job
// download links are signed with it and the links handed out before still
// open; once the old key is dropped, its links no longer do. The host
// application's export links (auth.signed_links) are verified by the same
// keys and rotate with them. A key
// added to the audit trail's key file signs the records from then on, and
// the trail verifies with the file.
func TestServeReloadSecrets(t *testing.T) {
	dir, cfg := demo(t)
	secretFile := filepath.Join(dir, "jobs.secret")
	oldSecret, newSecret := "first-secret-0123456789abcdef", "second-secret-0123456789abcdef"
	if err := os.WriteFile(secretFile, []byte(oldSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, bytes.Replace(b, []byte("auth:\n"), []byte("auth:\n  signed_links: true\n"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	url, proc, logPath := startServeWith(t, dir, cfg, "--link-secret-file", secretFile)
	// hostLink is an export link that a host application signed with key.
	hostLink := func(key string) string {
		keys, err := auth.NewKeys([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return auth.SignLink(keys, auth.Link{Dataset: "results", Format: "csv", Name: "host-user", Roles: []string{"admin"},
			Params: neturl.Values{"from": {"2024-01-01 00:00"}, "to": {"2024-01-02 00:00"}}, Expires: time.Now().Add(time.Hour)})
	}
	hostOld, hostNew := hostLink(oldSecret), hostLink(newSecret)
	status := func(path string) int {
		t.Helper()
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// link submits a job (each with other parameters: not joined) and
	// returns its signed download link once it has succeeded.
	n := 0
	link := func() string {
		t.Helper()
		n++
		body, _ := json.Marshal(map[string]any{"format": "csv", "params": map[string]any{"from": "2024-01-01 00:00", "to": "2024-01-0" + strconv.Itoa(n+1) + " 00:00"}})
		resp, err := http.Post(url+"/v1/datasets/results/jobs", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var j struct {
			ID, State, Error string
			DownloadURL      string `json:"download_url"`
		}
		json.NewDecoder(resp.Body).Decode(&j)
		resp.Body.Close()
		for deadline := time.Now().Add(60 * time.Second); j.State != "succeeded"; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) || j.State == "failed" {
				t.Fatalf("job: %+v", j)
			}
			r, err := http.Get(url + "/v1/jobs/" + j.ID)
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(r.Body).Decode(&j)
			r.Body.Close()
		}
		if !strings.Contains(j.DownloadURL, "sig=") {
			t.Fatalf("no signed link: %+v", j)
		}
		return j.DownloadURL
	}
	reloads := 0
	hup := func() {
		t.Helper()
		if err := proc.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		reloads++
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			log, _ := os.ReadFile(logPath)
			if bytes.Count(log, []byte("datasets reloaded")) == reloads {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("reload %d not done:\n%s", reloads, log)
			}
		}
	}

	before := link()
	if code := status(before); code != 200 {
		t.Fatalf("link before the rotation: %d", code)
	}
	if code := status(hostOld); code != 200 {
		t.Fatalf("host link before the rotation: %d", code)
	}
	if code := status(hostNew); code != http.StatusForbidden {
		t.Errorf("host link of a key not yet given: %d, want 403", code)
	}
	os.WriteFile(secretFile, []byte(oldSecret+"\n"+newSecret+"\n"), 0o600)
	hup()
	after := link()
	if code := status(before); code != 200 {
		t.Errorf("a link signed before the rotation, both secrets in the file: %d", code)
	}
	if code := status(after); code != 200 {
		t.Errorf("a link signed after the rotation: %d", code)
	}
	for name, l := range map[string]string{"old": hostOld, "new": hostNew} {
		if code := status(l); code != 200 {
			t.Errorf("host link of the %s key, both keys in the file: %d", name, code)
		}
	}
	os.WriteFile(secretFile, []byte(newSecret+"\n"), 0o600)
	hup()
	if code := status(before); code != http.StatusForbidden {
		t.Errorf("a link of the dropped secret: %d, want 403", code)
	}
	if code := status(after); code != 200 {
		t.Errorf("a link of the secret kept: %d", code)
	}
	if code := status(hostOld); code != http.StatusForbidden {
		t.Errorf("host link of the dropped key: %d, want 403", code)
	}
	if code := status(hostNew); code != 200 {
		t.Errorf("host link of the key kept: %d", code)
	}

	// The audit key: a second key in the file signs the next records.
	demoDir := filepath.Join(dir, "demo")
	keyFile := filepath.Join(demoDir, "audit.key")
	oldKeys, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	personal := "/v1/datasets/member_scores/export.csv?purpose=score_review&purpose_text=key+rotation+test+export"
	if code := status(personal); code != 200 {
		t.Fatalf("personal export: %d", code)
	}
	if err := os.WriteFile(keyFile, append(oldKeys, []byte(strings.Repeat("cd", 32)+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	hup()
	if code := status(personal); code != 200 {
		t.Fatalf("personal export after the key rotation: %d", code)
	}
	out, stderr, code := run(t, dir, "audit", "verify", "--db", "sqlite:"+filepath.Join(demoDir, "exportd-audit.db"), "--key-file", keyFile)
	if code != 0 {
		t.Fatalf("audit verify with both keys: exit %d: %s%s", code, out, stderr)
	}
	keys, err := audit.LoadKeys(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	st, err := audit.Open(t.Context(), "sqlite:"+filepath.Join(demoDir, "exportd-audit.db"), audit.Options{Keys: keys, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ids []string
	st.Records(t.Context(), time.Time{}, time.Now().Add(time.Hour), func(r *audit.Record) error { ids = append(ids, r.KeyID); return nil })
	if len(ids) != 4 || ids[0] != ids[1] || ids[2] != keys.Current() || ids[3] != keys.Current() || ids[0] == keys.Current() {
		t.Errorf("records' keys %v, want two under the old key then two under the new one (%s)", ids, keys.Current())
	}
}
