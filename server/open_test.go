package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/datasets"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

// Open opens what the datasets file names — the token store, the audit
// trail of a personal dataset, the jobs — and the server serves with
// them: a personal export is recorded, a job runs and its signed link
// opens. Close releases them: the trail holds every record after it.
// Settings that cannot work are refused as *SettingError before anything
// is opened.
func TestOpen(t *testing.T) {
	f := newFixture(t, 50)
	dir := t.TempDir()
	key := filepath.Join(dir, "audit.key")
	if err := os.WriteFile(key, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := "connections: {main: {url: 'sqlite:" + filepath.Join(dir, "unused.db") + "'}}\n" +
		"auth: {tokens_db: 'sqlite:tokens.db', signed_links: true, anonymous: {roles: [admin]}}\n" +
		"privacy:\n  purposes: {review: 검토}\n  audit: {db: 'sqlite:trail.db', key_file: " + key + "}\n" +
		"datasets:\n  people:\n    personal: true\n    sql: SELECT id, name FROM items\n    columns: [{name: id, type: int}, {name: name, type: string, personal: true}]\n    access: {admin: {name: full}}\n"
	cfg, err := datasets.ParseConfig(filepath.Join(dir, "datasets.yaml"), []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeys([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sc := server.Config{Sources: map[string]exportd.Source{"main": f.src}, Logger: log}

	// Refused before anything is opened.
	for name, opts := range map[string]server.Options{
		"jobs without keys":         {Config: sc, Jobs: &jobs.Config{}},
		"signed links without keys": {Config: sc},
	} {
		var se *server.SettingError
		if _, err := server.Open(t.Context(), cfg, opts); !errors.As(err, &se) || se.Setting != "link keys" {
			t.Errorf("%s: %v, want a SettingError of the link keys", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "tokens.db")); !os.IsNotExist(err) {
		t.Errorf("the token store was opened before the settings were checked: %v", err)
	}
	bad := *cfg
	badPrivacy := *cfg.Privacy
	badPrivacy.AuditKeyFile = filepath.Join(dir, "missing.key")
	bad.Privacy = &badPrivacy
	var se *server.SettingError
	if _, err := server.Open(t.Context(), &bad, server.Options{Config: sc, LinkKeys: keys}); !errors.As(err, &se) || se.Setting != "privacy.audit.key_file" {
		t.Errorf("missing audit key file: %v", err)
	}

	srv := servertest.Open(t, cfg, server.Options{Config: sc, LinkKeys: keys,
		Jobs:       &jobs.Config{Workers: 1, PollInterval: 50 * time.Millisecond},
		JobStorage: filepath.Join(dir, "results"), AuditLog: io.Discard})
	if srv.Jobs() == nil || srv.Audit() == nil {
		t.Fatalf("jobs %v, audit %v", srv.Jobs(), srv.Audit())
	}
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(srv.URL + "/v1/datasets/people/export.csv?purpose=review&purpose_text=open+test+of+the+trail"); code != 200 || !strings.Contains(body, "이름49") {
		t.Fatalf("personal export: %d %.200s", code, body)
	}
	// A host application's link, verified by the same keys.
	link := auth.SignLink(keys, auth.Link{Dataset: "people", Format: "csv", Name: "host", Roles: []string{"admin"},
		Purpose: "review", PurposeText: "open test of a signed link", Expires: time.Now().Add(time.Minute)})
	if code, body := get(srv.URL + link); code != 200 || !strings.Contains(body, "이름0") {
		t.Fatalf("host link: %d %.200s", code, body)
	}
	resp, err := http.Post(srv.URL+"/v1/datasets/people/jobs", "application/json",
		strings.NewReader(`{"format": "csv", "params": {"purpose": "review", "purpose_text": "open test of a job"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		ID, State   string
		DownloadURL string `json:"download_url"`
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("job: %d %s", resp.StatusCode, body)
	}
	json.Unmarshal(body, &j)
	for deadline := time.Now().Add(time.Minute); j.State != "succeeded"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) || j.State == "failed" || j.ID == "" {
			t.Fatalf("job: %+v", j)
		}
		_, body := get(srv.URL + "/v1/jobs/" + j.ID)
		json.Unmarshal([]byte(body), &j)
	}
	if code, body := get(srv.URL + j.DownloadURL); code != 200 || !strings.Contains(body, "이름49") {
		t.Fatalf("job's signed link: %d %.200s", code, body)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed: the trail holds the records of the download, the link, the
	// job and its download.
	keysOf, err := audit.LoadKeys(key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := audit.Open(t.Context(), "sqlite:"+filepath.Join(dir, "trail.db"), audit.Options{Keys: keysOf, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var got []string
	st.Records(t.Context(), time.Time{}, time.Now().Add(time.Hour), func(r *audit.Record) error {
		got = append(got, r.Principal+" "+string(r.Outcome))
		return nil
	})
	// The stream, the link and the job's run: intent then outcome; the
	// job's download: its outcome.
	want := "[anonymous:anonymous started anonymous:anonymous ok link:host started link:host ok anonymous:anonymous started anonymous:anonymous ok anonymous:anonymous ok]"
	if fmt.Sprint(got) != want {
		t.Errorf("audit records %v, want %s", got, want)
	}
}
