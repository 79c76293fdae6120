package e2e

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// With the default flags, a PostgreSQL dataset that thinks for longer than
// nginx's 3 s read timeout before its first row arrives whole through
// nginx in every format that can keep alive: XLSX, gzip-encoded CSV, TSV
// and JSON Lines, and JSON Lines sent as is (spaces). Uncompressed CSV
// has no byte that changes nothing: its header leaves at once, then the
// silence cuts the download, and the client sees it fail (as the README
// says), never a complete-looking file.
func TestDefaultKeepAliveThroughNginx(t *testing.T) {
	e := startExportd(t) // default flags
	base := startNginx(t, e.Addr)
	const sleep = 5 // seconds before the first row; nginx waits 3
	get := func(t *testing.T, format string, gzip bool) (*http.Response, []byte, error) {
		t.Helper()
		req, err := http.NewRequest("GET", fmt.Sprintf("%s/v1/datasets/slow/export.%s?sleep=%d", base, format, sleep), nil)
		if err != nil {
			t.Fatal(err)
		}
		// Go's transport asks for gzip and inflates the body itself (a cut
		// gzip stream is an error); DisableCompression asks for none.
		client := &http.Client{Transport: &http.Transport{DisableCompression: !gzip}, Timeout: time.Minute}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if took := time.Since(start); err == nil && took < sleep*time.Second {
			t.Fatalf("the download took %v: the query did not think for %d s, so it proves nothing", took, sleep)
		}
		if gzip != resp.Uncompressed && format != "xlsx" {
			t.Fatalf("gzip %v, but the response was inflated: %v", gzip, resp.Uncompressed)
		}
		return resp, body, err
	}
	whole := func(t *testing.T, format string, body []byte) {
		t.Helper()
		var ns []string
		switch format {
		case "xlsx":
			x, err := excelize.OpenReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer x.Close()
			rows, err := x.GetRows("slow")
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				ns = append(ns, r[0])
			}
		case "csv", "tsv":
			r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\xEF\xBB\xBF"))))
			if format == "tsv" {
				r.Comma = '\t'
			}
			recs, err := r.ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				ns = append(ns, rec[0])
			}
		case "jsonl":
			ns = append(ns, "n") // no header line
			for _, l := range strings.SplitAfter(strings.TrimSuffix(string(body), "\n"), "\n") {
				// One JSON value per line, whitespace around it allowed: what
				// a strict line-by-line reader (Python's json.loads) accepts.
				var m struct{ N int64 }
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				ns = append(ns, strconv.FormatInt(m.N, 10))
			}
		}
		if len(ns) != 1001 || ns[0] != "n" || ns[1] != "1" || ns[1000] != "1000" {
			t.Fatalf("%d lines (want a header and 1000 rows): %.200q", len(ns), ns)
		}
	}
	for _, tc := range []struct {
		format string
		gzip   bool
	}{{"xlsx", false}, {"csv", true}, {"tsv", true}, {"jsonl", true}, {"jsonl", false}} {
		t.Run(fmt.Sprintf("%s/gzip=%v", tc.format, tc.gzip), func(t *testing.T) {
			t.Parallel()
			resp, body, err := get(t, tc.format, tc.gzip)
			if resp.StatusCode != 200 || err != nil {
				t.Fatalf("status %d, %v after %d bytes", resp.StatusCode, err, len(body))
			}
			whole(t, tc.format, body)
			if tc.format == "jsonl" && !tc.gzip && !bytes.HasPrefix(body, []byte(" ")) {
				t.Fatalf("no keep-alive space before the first row: %.40q", body)
			}
		})
	}
	t.Run("csv/gzip=false", func(t *testing.T) {
		t.Parallel()
		resp, body, err := get(t, "csv", false)
		if resp.StatusCode == 200 && err == nil {
			t.Fatalf("an uncompressed CSV through a 3 s proxy arrived whole (%d bytes): the README says it is cut", len(body))
		}
		t.Logf("uncompressed CSV: status %d, %v after %d bytes", resp.StatusCode, err, len(body))
	})
}
