package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// The same dataset, parameters and principal give the same file on every
// path: the command line, the stream, a background job and the web UI's
// download all run the export's plan. Every demo dataset in every format,
// with the demo's sheet: lines removed (so the sheet is named after the
// dataset, by the plan, on each path): the same file name, sheet names,
// title and cells — and for CSV, TSV and JSON Lines the same bytes.
func TestSameFileEveryPath(t *testing.T) {
	dir, cfg := demo(t)
	yaml, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	yaml = regexp.MustCompile(`(?m)^    sheet: .*\n`).ReplaceAll(yaml, nil)
	if err := os.WriteFile(cfg, yaml, 0o644); err != nil {
		t.Fatal(err)
	}
	base := serveDemo(t, dir, cfg)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	purpose := map[string]string{"purpose": "score_review", "purpose_text": "every path gives the same file"}
	datasets := []struct {
		name, title string
		params      map[string]string
	}{
		{"member_scores", "회원별 평균 점수", map[string]string{"from": "2019-01-01", "to": "2024-12-31"}},
		{"results", "시험 결과", map[string]string{"from": "2024-01-01 00:00", "to": "2024-03-01 00:00"}},
		{"accounts", "Accounts (large)", map[string]string{"categories": "gold,silver"}},
		// Three sheets: a workbook of three, or a ZIP of three files.
		{"score_report", "성적 보고서", map[string]string{"from": "2024-01-01 00:00", "to": "2024-03-01 00:00"}},
	}
	reportSheets := []string{"회원별 평균", "시험 결과", "지점별 합계"}
	type file struct {
		name string
		body []byte
	}
	get := func(c *http.Client, u string) file {
		t.Helper()
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s %s", u, resp.Status, body)
		}
		_, p, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
		if err != nil {
			t.Fatalf("GET %s: Content-Disposition %q: %v", u, resp.Header.Get("Content-Disposition"), err)
		}
		return file{p["filename"], body}
	}

	for _, ds := range datasets {
		for _, f := range []string{"xlsx", "csv", "tsv", "jsonl"} {
			q := url.Values{}
			for k, v := range ds.params {
				q.Set(k, v)
			}
			if ds.name == "member_scores" {
				for k, v := range purpose {
					q.Set(k, v)
				}
			}
			files := map[string]file{}

			// The command line, with the roles of the demo's anonymous
			// principal and no -o: the file name is the plan's.
			out := filepath.Join(dir, ds.name+"-"+f)
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			args := []string{"export", "-q", "--config", cfg, "--dataset", ds.name, "--format", f, "--roles", "admin"}
			for k, v := range ds.params {
				args = append(args, "--param", k+"="+v)
			}
			if ds.name == "member_scores" {
				args = append(args, "--purpose", purpose["purpose"], "--purpose-text", purpose["purpose_text"])
			}
			if _, stderr, code := run(t, out, args...); code != 0 {
				t.Fatalf("%s.%s: CLI exit %d: %s", ds.name, f, code, stderr)
			}
			entries, _ := os.ReadDir(out)
			if len(entries) != 1 {
				t.Fatalf("%s.%s: CLI wrote %d files", ds.name, f, len(entries))
			}
			b, _ := os.ReadFile(filepath.Join(out, entries[0].Name()))
			files["cli"] = file{entries[0].Name(), b}

			// The stream.
			files["stream"] = get(http.DefaultClient, base+"/v1/datasets/"+ds.name+"/export."+f+"?"+q.Encode())

			// The web UI's download: the form's submission redirects to
			// the stream it planned.
			form := url.Values{"format": {f}}
			for k, v := range q {
				form[k] = v
			}
			resp, err := noRedirect.Get(base + "/ui/datasets/" + ds.name + "/download?" + form.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("%s.%s: UI download: %s", ds.name, f, resp.Status)
			}
			files["ui"] = get(http.DefaultClient, base+resp.Header.Get("Location"))

			// A background job.
			body, _ := json.Marshal(map[string]any{"format": f, "params": q})
			resp, err = http.Post(base+"/v1/datasets/"+ds.name+"/jobs", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			var j struct {
				ID    string `json:"id"`
				State string `json:"state"`
				Error string `json:"error"`
			}
			json.NewDecoder(resp.Body).Decode(&j)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("%s.%s: job: %s", ds.name, f, resp.Status)
			}
			for deadline := time.Now().Add(60 * time.Second); j.State != "succeeded"; time.Sleep(100 * time.Millisecond) {
				if time.Now().After(deadline) || j.State == "failed" || j.State == "cancelled" {
					t.Fatalf("%s.%s: job %s %s %s", ds.name, f, j.ID, j.State, j.Error)
				}
				resp, err := http.Get(base + "/v1/jobs/" + j.ID)
				if err != nil {
					t.Fatal(err)
				}
				json.NewDecoder(resp.Body).Decode(&j)
				resp.Body.Close()
			}
			files["job"] = get(http.DefaultClient, base+"/v1/jobs/"+j.ID+"/download")

			want := files["stream"]
			for _, path := range []string{"cli", "ui", "job"} {
				got := files[path]
				if got.name != want.name {
					t.Errorf("%s.%s: %s's file is named %q, the stream's %q", ds.name, f, path, got.name, want.name)
				}
				if f != "xlsx" && ds.name == "score_report" {
					// The entries' times differ; their names and bytes do not.
					g, w := zipEntries(t, got.body), zipEntries(t, want.body)
					if !slices.Equal(g.names, w.names) || !slices.EqualFunc(g.bodies, w.bodies, bytes.Equal) {
						t.Errorf("%s.%s: %s's ZIP (%q) differs from the stream's (%q)", ds.name, f, path, g.names, w.names)
					}
					if !slices.Equal(w.names, []string{reportSheets[0] + "." + f, reportSheets[1] + "." + f, reportSheets[2] + "." + f}) {
						t.Errorf("%s.%s: ZIP entries %q", ds.name, f, w.names)
					}
					continue
				}
				if f != "xlsx" {
					if !bytes.Equal(got.body, want.body) {
						t.Errorf("%s.%s: %s's file (%d bytes) differs from the stream's (%d bytes)", ds.name, f, path, len(got.body), len(want.body))
					}
					continue
				}
				if g, w := workbook(t, got.body), workbook(t, want.body); !slices.Equal(g.sheets, w.sheets) || g.title != w.title || !slices.EqualFunc(g.rows, w.rows, slices.Equal) {
					t.Errorf("%s.%s: %s's workbook (sheets %q, title %q, %d rows) differs from the stream's (sheets %q, title %q, %d rows)",
						ds.name, f, path, g.sheets, g.title, len(g.rows), w.sheets, w.title, len(w.rows))
				}
			}
			if f == "xlsx" {
				// The sheet is named after the dataset (there is no sheet:
				// line), the title is the dataset's.
				w := workbook(t, want.body)
				if ds.name == "score_report" {
					if !slices.Equal(w.sheets, reportSheets) || w.title != ds.title {
						t.Errorf("%s.xlsx: sheets %q, title %q", ds.name, w.sheets, w.title)
					}
					continue
				}
				if len(w.sheets) != 1 || w.sheets[0] != ds.name || w.title != ds.title || len(w.rows) < 2 {
					t.Errorf("%s.xlsx: sheets %q, title %q, %d rows", ds.name, w.sheets, w.title, len(w.rows))
				}
			}
		}
	}
}

type workbookContent struct {
	sheets []string
	title  string
	rows   [][]string // every sheet's rows, one after the other
}

func workbook(t *testing.T, b []byte) workbookContent {
	t.Helper()
	x, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	var w workbookContent
	w.sheets = x.GetSheetList()
	if p, err := x.GetDocProps(); err == nil {
		w.title = p.Title
	}
	for _, s := range w.sheets {
		rows, err := x.GetRows(s, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		w.rows = append(w.rows, rows...)
	}
	return w
}

type zipContent struct {
	names  []string
	bodies [][]byte
}

func zipEntries(t *testing.T, b []byte) zipContent {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var z zipContent
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		z.names = append(z.names, f.Name)
		z.bodies = append(z.bodies, body)
	}
	return z
}
