package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/server"
)

// manyYAML is a personal dataset of about 20 MB of CSV: larger than the
// socket buffers between a client and the server, so that a client that
// leaves cuts its download short.
var manyYAML = `
  many:
    personal: true
    sql: "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) SELECT i AS id, 'row ' || i || ' ` + strings.Repeat("x", 200) + `' AS pad FROM n"
    columns: [{name: id, type: int}, {name: pad}]
    access:
      admin: {all: full}
`

// submit starts a job of dataset in format with the test's purpose and
// waits for it to succeed.
func submit(t *testing.T, c *http.Client, f *privacyFixture, dataset, format string, hdr []string) jobs.Job {
	t.Helper()
	resp, body := do(t, c, "POST", f.url+"/v1/datasets/"+dataset+"/jobs", map[string]any{"format": format,
		"params": map[string]any{"purpose": "member_support", "purpose_text": "회원 문의 1234번 응대를 위한 확인"}}, hdr...)
	if resp.StatusCode != 202 {
		t.Fatalf("submit %s: %s %s", dataset, resp.Status, body)
	}
	var j jobs.Job
	if err := json.Unmarshal(body, &j); err != nil {
		t.Fatal(err)
	}
	return waitJob(t, c, f.url, j.ID, hdr)
}

func sum256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func params(t *testing.T, rec audit.Record) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(rec.Params, &m); err != nil {
		t.Fatalf("record params %s: %v", rec.Params, err)
	}
	return m
}

// A job's download is recorded as it was sent: a Range request (a resumed
// download) with the range and the digest of the bytes received, a
// response without the file as failed, a HEAD not at all.
func TestPrivacyJobRange(t *testing.T) {
	f := newPrivacyFixtureWith(t, privacyBackends()[0], privacyOptions{jobs: true})
	support := f.token(t, "sue", "support")
	c := client(t)
	j := submit(t, c, f, "people", "csv", support)
	u := f.url + "/v1/jobs/" + j.ID + "/download"
	_, whole := do(t, c, "GET", u, nil, support...)
	if sum256(whole) != j.SHA256 || len(whole) < 100 {
		t.Fatalf("whole file: %d bytes, sha256 %s; job %s", len(whole), sum256(whole), j.SHA256)
	}
	if rec := f.last(t); rec.Outcome != audit.OutcomeOK || rec.SHA256 != j.SHA256 || rec.Bytes != int64(len(whole)) || params(t, rec)["range"] != "" {
		t.Errorf("whole file: record %+v", rec)
	}

	for _, tc := range []struct {
		rng, wantRange string
		want           []byte // nil: multipart, the body as received
	}{
		{"bytes=10-49", fmt.Sprintf("bytes 10-49/%d", len(whole)), whole[10:50]},
		{"bytes=60-", fmt.Sprintf("bytes 60-%d/%d", len(whole)-1, len(whole)), whole[60:]}, // curl -C -
		{"bytes=-7", fmt.Sprintf("bytes %d-%d/%d", len(whole)-7, len(whole)-1, len(whole)), whole[len(whole)-7:]},
		{"bytes=0-4,20-29", "bytes=0-4,20-29", nil},
	} {
		resp, body := do(t, c, "GET", u, nil, append([]string{"Range", tc.rng}, support...)...)
		if resp.StatusCode != 206 || (tc.want != nil && !bytes.Equal(body, tc.want)) {
			t.Fatalf("Range %s: %s, %q", tc.rng, resp.Status, body)
		}
		if tc.want == nil && (!strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") ||
			!bytes.Contains(body, whole[0:5]) || !bytes.Contains(body, whole[20:30])) {
			t.Fatalf("Range %s: %s %q", tc.rng, resp.Header.Get("Content-Type"), body)
		}
		rec := f.last(t)
		p := params(t, rec)
		if rec.SHA256 != sum256(body) || rec.Bytes != int64(len(body)) || rec.Outcome != audit.OutcomePartial ||
			p["range"] != tc.wantRange || p["file_sha256"] != j.SHA256 || p["job"] != j.ID || rec.Principal != "token:sue" {
			t.Errorf("Range %s: record %+v (params %s); received %d bytes, sha256 %s", tc.rng, rec, rec.Params, len(body), sum256(body))
		}
	}

	// Nothing of the file sent: recorded as such.
	n := len(f.records(t))
	for _, hdr := range [][]string{{"Range", fmt.Sprintf("bytes=%d-", len(whole)+10)}, {"If-None-Match", j.ETag()}} {
		resp, _ := do(t, c, "GET", u, nil, append(hdr, support...)...)
		rec := f.last(t)
		if resp.StatusCode != 416 && resp.StatusCode != 304 || rec.Outcome != audit.OutcomeFailed || rec.Bytes != 0 || rec.SHA256 != "" ||
			!strings.Contains(rec.Error, fmt.Sprint(resp.StatusCode)) || len(f.records(t)) != n+1 {
			t.Errorf("%s: %s; record %+v", hdr, resp.Status, rec)
		}
		n++
	}
	if resp, _ := do(t, c, "HEAD", u, nil, support...); resp.StatusCode != 200 || len(f.records(t)) != n {
		t.Errorf("HEAD: %s, %d new records; want none", resp.Status, len(f.records(t))-n)
	}
	if sum, err := f.trail.Verify(t.Context()); err != nil || sum.Records != int64(n) {
		t.Errorf("verify: %+v %v", sum, err)
	}
}

// A download the client leaves is recorded as failed, with the count and
// the digest of the bytes that left: a prefix of the file.
func TestPrivacyJobCutShort(t *testing.T) {
	f := newPrivacyFixtureWith(t, privacyBackends()[0], privacyOptions{jobs: true, datasets: manyYAML})
	admin := f.token(t, "ada", "admin")
	c := client(t)
	j := submit(t, c, f, "many", "csv", admin)
	u := f.url + "/v1/jobs/" + j.ID + "/download"
	_, whole := do(t, c, "GET", u, nil, admin...)
	if len(whole) < 16<<20 || sum256(whole) != j.SHA256 {
		t.Fatalf("whole file: %d bytes", len(whole))
	}
	if rec := f.last(t); rec.Outcome != audit.OutcomeOK || rec.SHA256 != j.SHA256 || rec.Bytes != int64(len(whole)) {
		t.Fatalf("whole file: record %+v", rec)
	}
	n := len(f.records(t))

	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set(admin[0], admin[1])
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // before the end: the connection is closed
	if !bytes.Equal(got, whole[:len(got)]) {
		t.Fatal("the first bytes differ from the file's")
	}
	var rec audit.Record
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if recs := f.records(t); len(recs) > n {
			rec = recs[n]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no record of the download cut short")
		}
	}
	if rec.Outcome != audit.OutcomeFailed || !strings.Contains(rec.Error, "cut short") ||
		rec.Bytes < int64(len(got)) || rec.Bytes >= int64(len(whole)) || rec.SHA256 != sum256(whole[:rec.Bytes]) {
		t.Errorf("record %+v; want failed, with the digest of the %d bytes that left", rec, rec.Bytes)
	}
	if p := params(t, rec); p["job"] != j.ID || p["range"] != "" {
		t.Errorf("record params %s", rec.Params)
	}
}

// The client address in the record is the TCP peer's unless the peer is a
// trusted proxy: X-Forwarded-For and X-Real-IP from anyone else change
// nothing.
func TestPrivacyClientAddress(t *testing.T) {
	spoof := []string{"X-Forwarded-For", "198.51.100.66", "X-Real-IP", "198.51.100.77"}
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		hdr     []string
		want    string
	}{
		{"no trusted proxy", nil, spoof, "127.0.0.1"},
		{"another trusted proxy", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, spoof, "127.0.0.1"},
		{"trusted proxy, X-Real-IP", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, spoof, "198.51.100.77"},
		// the proxy appends the peer it saw to what the client claimed
		{"trusted proxy, X-Forwarded-For", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			[]string{"X-Forwarded-For", "198.51.100.66, 203.0.113.9"}, "203.0.113.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newPrivacyFixtureWith(t, privacyBackends()[0], privacyOptions{server: func(_ string, c *server.Config) {
				c.TrustedProxies = tc.trusted
			}})
			support := f.token(t, "sue", "support")
			c := client(t)
			hdr := append(append([]string{}, support...), tc.hdr...)
			resp, body, _ := get(t, c, f.url+"/v1/datasets/people/export.csv?"+purposeQuery, hdr...)
			if resp.StatusCode != 200 {
				t.Fatalf("%s %s", resp.Status, body)
			}
			if rec := f.last(t); rec.Client != tc.want || rec.Outcome != audit.OutcomeOK {
				t.Errorf("export: client %q, want %q", rec.Client, tc.want)
			}
			// a refusal too
			resp, _, _ = get(t, c, f.url+"/v1/datasets/people/export.csv?columns=phone&"+purposeQuery, hdr...)
			if rec := f.last(t); resp.StatusCode != 403 || rec.Client != tc.want || rec.Outcome != audit.OutcomeDenied {
				t.Errorf("refusal: %s, client %q, want %q", resp.Status, rec.Client, tc.want)
			}
		})
	}
}

// The password of a password-protected download, typed or generated, is
// nowhere: not in the server's log, the audit records (and their log
// lines), the job database, the stored result and its attributes, nor any
// other file the server wrote. A
// password sent where none belongs (a URL, a job's parameters) is refused
// and kept nowhere either.
func TestPrivacyPasswordNowhere(t *testing.T) {
	for _, b := range privacyBackends() {
		t.Run(b.name, func(t *testing.T) {
			log := &syncBuffer{}
			f := newPrivacyFixtureWith(t, b, privacyOptions{jobs: true, log: log})
			support := f.token(t, "sue", "support")
			c := client(t)
			j := submit(t, c, f, "people", "xlsx", support)
			u := f.url + "/v1/jobs/" + j.ID + "/download"

			secrets := []string{"Typed-In-Form-7Qk2", "타이핑한-JSON-암호-9Zx"}
			resp, form := do(t, c, "POST", u, url.Values{"password": {secrets[0]}}, support...)
			if resp.StatusCode != 200 {
				t.Fatalf("form password: %s %s", resp.Status, form)
			}
			resp, jsonBody := do(t, c, "POST", u, map[string]string{"password": secrets[1]}, support...)
			if resp.StatusCode != 200 {
				t.Fatalf("JSON password: %s %s", resp.Status, jsonBody)
			}
			resp, generated := do(t, c, "POST", u, map[string]string{"password": "generate"}, support...)
			if resp.StatusCode != 200 || len(resp.Header.Get(server.PasswordHeader)) < 12 {
				t.Fatalf("generated password: %s %q", resp.Status, resp.Header.Get(server.PasswordHeader))
			}
			secrets = append(secrets, resp.Header.Get(server.PasswordHeader))
			// Sent where none belongs: refused.
			inURL, inJob := "In-The-URL-Query-4Rm", "With-The-Job-Params-8Wd"
			resp, body := do(t, c, "POST", u+"?password="+inURL, url.Values{"password": {inURL}}, support...)
			if e := decodeError(t, body); resp.StatusCode != 400 || e.Error.Field != "password" {
				t.Errorf("password in the URL: %s %s", resp.Status, body)
			}
			n := len(f.records(t))
			resp, body = do(t, c, "POST", f.url+"/v1/datasets/people/jobs", map[string]any{"format": "xlsx", "params": map[string]any{
				"purpose": "member_support", "purpose_text": "회원 문의 1234번 응대를 위한 확인", "password": inJob}}, support...)
			if e := decodeError(t, body); resp.StatusCode != 400 || e.Error.Field != "password" {
				t.Errorf("password in a job's parameters: %s %s", resp.Status, body)
			}
			if recs := f.records(t); len(recs) != n+1 || recs[n].Outcome != audit.OutcomeDenied || params(t, recs[n])["password"] != "(redacted)" {
				t.Errorf("password in a job's parameters: %d records, %+v", len(recs)-n, recs[n:])
			}
			resp, body, _ = get(t, c, f.url+"/v1/datasets/people/export.csv?password="+inURL+"&"+purposeQuery, support...)
			if resp.StatusCode != 400 {
				t.Errorf("password in a streaming URL: %s %s", resp.Status, body)
			}
			secrets = append(secrets, inURL, inJob)

			recs, err := json.Marshal(f.records(t))
			if err != nil {
				t.Fatal(err)
			}
			places := map[string][]byte{
				"the server's log":  []byte(log.String()),
				"the audit records": recs,
				"the form download": form, "the JSON download": jsonBody, "the generated download": generated,
			}
			files := 0
			err = filepath.WalkDir(f.keyDir, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(path)
				places[path] = b
				files++
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			// The job database, the datasets file, a job's result file.
			for _, want := range []string{"jobs.db", "datasets.yaml", filepath.Join("results", "results") + string(filepath.Separator)} {
				found := false
				for p := range places {
					found = found || strings.Contains(p, want)
				}
				if !found {
					t.Fatalf("no %s among the %d files searched", want, files)
				}
			}
			for _, pw := range secrets {
				for _, enc := range [][]byte{[]byte(pw), utf16le(pw), []byte(url.QueryEscape(pw))} {
					for where, b := range places {
						if bytes.Contains(b, enc) {
							t.Errorf("the password %q is in %s", pw, where)
						}
					}
				}
			}
			if !strings.Contains(log.String(), `"export audit"`) || !strings.Contains(log.String(), "job submitted") {
				t.Errorf("the log searched holds neither the audit lines nor the server's: %s", log)
			}
		})
	}
}

func utf16le(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

// encryption: required refuses the plain workbook, on the stream and the
// job's download, and offers the password-protected one; a password is
// refused for a download that is not offered with one (CSV).
func TestPrivacyEncryptionRules(t *testing.T) {
	f := newPrivacyFixtureWith(t, privacyBackends()[0], privacyOptions{jobs: true, datasets: `
  locked:
    personal: true
    encryption: required
    sql: SELECT id, name FROM {people} ORDER BY id
    columns: [{name: id, type: int}, {name: name, personal: true, mask: name}]
    access:
      admin: {all: full}
`})
	admin := f.token(t, "ada", "admin")
	c := client(t)
	n := len(f.records(t))
	denied := func(what string, resp *http.Response, body []byte, status int, code string) {
		t.Helper()
		recs := f.records(t)
		if e := decodeError(t, body); resp.StatusCode != status || e.Error.Code != code {
			t.Errorf("%s: %s %s, want %d %s", what, resp.Status, body, status, code)
		}
		if len(recs) != n+1 || recs[n].Outcome != audit.OutcomeDenied || !strings.Contains(recs[n].Error, fmt.Sprint(status)) {
			t.Errorf("%s: %d new records %+v, want one denial", what, len(recs)-n, recs[n:])
		}
		n = len(recs)
	}
	resp, body, _ := get(t, c, f.url+"/v1/datasets/locked/export.xlsx?"+purposeQuery, admin...)
	denied("stream", resp, body, 409, "encryption_required")
	if resp, body, _ := get(t, c, f.url+"/v1/datasets/locked/export.csv?"+purposeQuery, admin...); resp.StatusCode != 200 {
		t.Errorf("CSV of an encrypted dataset: %s %s", resp.Status, body)
	}
	j := submit(t, c, f, "locked", "xlsx", admin)
	n = len(f.records(t))
	resp, body = do(t, c, "GET", f.url+"/v1/jobs/"+j.ID+"/download", nil, admin...)
	denied("plain job download", resp, body, 409, "encryption_required")
	resp, body = do(t, c, "GET", f.url+j.DownloadURL, nil)
	denied("plain job download by signed link", resp, body, 409, "encryption_required")
	resp, body = do(t, c, "POST", f.url+"/v1/jobs/"+j.ID+"/download", url.Values{"password": {"correct horse 42"}}, admin...)
	if resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte{0xd0, 0xcf, 0x11, 0xe0}) {
		t.Fatalf("encrypted download: %s", resp.Status)
	}
	if rec := f.last(t); rec.Format != "xlsx+password" || rec.SHA256 != sum256(body) || rec.Bytes != int64(len(body)) || rec.Outcome != audit.OutcomeOK {
		t.Errorf("encrypted download record %+v", rec)
	}
	n = len(f.records(t))

	csv := submit(t, c, f, "people", "csv", admin)
	n = len(f.records(t))
	resp, body = do(t, c, "POST", f.url+"/v1/jobs/"+csv.ID+"/download", url.Values{"password": {"correct horse 42"}}, admin...)
	denied("password for a CSV", resp, body, 400, "bad_parameter")
}
