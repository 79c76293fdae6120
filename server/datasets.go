package server

import (
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/internal/buildinfo"
)

// datasetInfo is the JSON description of a dataset.
type datasetInfo struct {
	Name        string           `json:"name"`
	Title       string           `json:"title,omitempty"`
	Description string           `json:"description,omitempty"`
	Params      []exportd.Param  `json:"params"`
	Columns     []exportd.Column `json:"columns"`
	// Sheets are the sheets of a dataset of several, in order.
	Sheets   []sheetInfo      `json:"sheets,omitempty"`
	Formats  []exportd.Format `json:"formats"`
	RowLimit int64            `json:"row_limit,omitempty"`
	// Key is the column parts are cut on; empty when the dataset cannot be
	// downloaded in parts.
	Key string `json:"key,omitempty"`
	// Exports holds the download URL of each format (default parameters).
	Exports map[exportd.Format]string `json:"exports"`
	// Roles may run the dataset (empty: any authenticated principal).
	Roles []string `json:"roles,omitempty"`
	// Pinned holds the values of the parameters pinned for the requesting
	// principal: given any other value, an export is refused (403).
	Pinned map[string][]string `json:"pinned,omitempty"`
}

// sheetInfo is the JSON description of one sheet of a dataset.
type sheetInfo struct {
	Name    string           `json:"name"`
	Columns []exportd.Column `json:"columns"`
}

func describe(d *exportd.Dataset) datasetInfo {
	info := datasetInfo{
		Name: d.Name, Title: d.Title, Description: d.Description,
		Params: d.Params, Columns: d.Columns, Formats: exportd.Formats,
		RowLimit: d.RowLimit, Key: d.Key, Exports: map[exportd.Format]string{},
		Roles: d.Roles,
	}
	if info.Params == nil {
		info.Params = []exportd.Param{}
	}
	if info.Columns == nil {
		info.Columns = []exportd.Column{}
	}
	for _, sh := range d.Sheets {
		info.Sheets = append(info.Sheets, sheetInfo{Name: sh.Name, Columns: sh.Columns})
	}
	for _, f := range exportd.Formats {
		info.Exports[f] = "/v1/datasets/" + url.PathEscape(d.Name) + "/export." + string(f)
	}
	return info
}

func (s *Server) listDatasets(w http.ResponseWriter, r *http.Request) {
	list := make([]datasetInfo, 0, len(s.conf(r).cfg.Datasets))
	for _, d := range s.conf(r).cfg.Datasets {
		if !mayRun(r, d) { // only the datasets the principal may run (auth.go)
			continue
		}
		info := describe(d)
		info.Pinned = s.pinnedFor(r, d)
		list = append(list, info)
	}
	writeJSON(w, http.StatusOK, map[string]any{"datasets": list})
}

func (s *Server) getDataset(w http.ResponseWriter, r *http.Request) {
	d, err := s.conf(r).cfg.Lookup(r.PathValue("name"))
	if err == nil {
		err = s.authorize(r, d, url.Values{})
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	info := describe(d)
	info.Pinned = s.pinnedFor(r, d)
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	bi := buildinfo.Read()
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "version": bi.Version, "revision": bi.Revision, "go": bi.Go})
}

// readyz pings every connection's source and the job queue's database (at
// once, 2 s each) and answers 503 when one fails or the server is shutting
// down.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	names := make([]string, 0, len(s.conf(r).sources))
	for n := range s.conf(r).sources {
		names = append(names, n)
	}
	sort.Strings(names)
	results := make(map[string]string, len(names))
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	for _, n := range names {
		wg.Go(func() {
			res := "ok"
			if err := s.conf(r).sources[n].Ping(ctx); err != nil {
				res = err.Error()
			}
			mu.Lock()
			results[n] = res
			mu.Unlock()
		})
	}
	// The job queue's database too: without it no job is submitted,
	// followed or run.
	queue := ""
	if s.cfg.Jobs != nil {
		wg.Go(func() {
			queue = "ok"
			if err := s.cfg.Jobs.Ping(ctx); err != nil {
				queue = err.Error()
			}
		})
	}
	wg.Wait()
	status, code := "ok", http.StatusOK
	for _, res := range results {
		if res != "ok" {
			status, code = "unavailable", http.StatusServiceUnavailable
		}
	}
	body := map[string]any{"connections": results}
	if s.cfg.Jobs != nil {
		body["jobs_queue"] = queue
		if queue != "ok" {
			status, code = "unavailable", http.StatusServiceUnavailable
		}
	}
	if s.draining.Load() {
		status, code = "shutting down", http.StatusServiceUnavailable
	}
	body["status"] = status
	writeJSON(w, code, body)
}

//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", fmt.Sprint(len(openAPI)))
	w.Write(openAPI)
}
