package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// marking: true puts the downloader and the time in every sheet's printed
// header and footer and in the document properties, on the direct stream
// and in a job's result (whose downloader is the job's owner).
func TestMarking(t *testing.T) {
	f := newPrivacyFixture(t, privacyBackends()[0], true)
	kim := f.token(t, "kim", "support")
	check := func(what string, b []byte) {
		t.Helper()
		x, err := excelize.OpenReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer x.Close()
		hf, err := x.GetHeaderFooter(x.GetSheetName(0))
		if err != nil || hf == nil {
			t.Fatalf("%s: header/footer %v %v", what, hf, err)
		}
		if !strings.HasPrefix(hf.OddHeader, "&L내려받은 사람: kim&R20") || !strings.Contains(hf.OddFooter, "내려받은 사람: kim · 시각: 20") || !strings.HasSuffix(hf.OddFooter, "&R&P / &N") {
			t.Errorf("%s: header %q footer %q", what, hf.OddHeader, hf.OddFooter)
		}
		p, err := x.GetDocProps()
		if err != nil || p.Creator != "kim" || !strings.Contains(p.Description, "내려받은 사람: kim") {
			t.Errorf("%s: properties %+v %v", what, p, err)
		}
	}
	resp, body := do(t, http.DefaultClient, "GET", f.url+"/v1/datasets/people/export.xlsx?"+purposeQuery, nil, kim...)
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %s %s", resp.Status, body)
	}
	check("stream", body)

	resp, body = do(t, http.DefaultClient, "POST", f.url+"/v1/datasets/people/jobs",
		map[string]any{"format": "xlsx", "params": map[string]string{"purpose": "member_support", "purpose_text": "회원 문의 1234번 응대를 위한 확인"}}, kim...)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %s %s", resp.Status, body)
	}
	var j struct{ ID string }
	if err := json.Unmarshal(body, &j); err != nil || j.ID == "" {
		t.Fatalf("job %s: %v", body, err)
	}
	id := j.ID
	waitJob(t, http.DefaultClient, f.url, id, kim)
	resp, body = do(t, http.DefaultClient, "GET", f.url+"/v1/jobs/"+id+"/download", nil, kim...)
	if resp.StatusCode != 200 {
		t.Fatalf("job download: %s %s", resp.Status, body)
	}
	check("job", body)
	// CSV has nowhere to show it and stays as it was.
	resp, body = do(t, http.DefaultClient, "GET", f.url+"/v1/datasets/people/export.csv?"+purposeQuery, nil, kim...)
	if resp.StatusCode != 200 || bytes.Contains(body, []byte("내려받은")) {
		t.Errorf("csv: %s %s", resp.Status, body)
	}
}
