package jobs_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/datasets"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/jobs/storage"
	"github.com/exportd/exportd/server"
)

// schedYAML declares the datasets of the schedule tests, on the items
// table of newFixture (made runs from 2024-01-01 over 400 days, 75 items
// a day).
const schedYAML = `
timezone: Asia/Seoul
connections:
  main: {url: "sqlite:items.db"}
privacy:
  purposes: {audit: 내부 감사}
  audit: {key_file: audit.key}
datasets:
  sales:
    title: 월간 판매
    sql: SELECT id, name, made FROM items WHERE made BETWEEN :from AND :to ORDER BY id
    params:
      - {name: from, type: date, required: true, label: 시작일}
      - {name: to, type: date, required: true, label: 종료일}
    columns: [{name: id, type: int}, {name: name, type: string}, {name: made, type: date}]
    filename: 판매_{from}_{to}
  members:
    title: 회원
    personal: true
    roles: [manager]
    sql: SELECT id, name FROM items WHERE made BETWEEN :from AND :to ORDER BY id
    params:
      - {name: from, type: date, required: true}
      - {name: to, type: date, required: true}
    columns: [{name: id, type: int}, {name: name, type: string, personal: true, mask: name}]
    access: {manager: {name: masked}}
  region_sales:
    title: 지역 판매
    roles: [manager]
    sql: SELECT id, name, made FROM items WHERE made BETWEEN :from AND :to AND :region <> '' ORDER BY id
    params:
      - {name: from, type: date, required: true}
      - {name: to, type: date, required: true}
      - {name: region, type: string, required: true}
    columns: [{name: id, type: int}, {name: name, type: string}, {name: made, type: date}]
    pin:
      manager: {region: {attr: region}}
`

// novemberRows are the items made in November 2024.
const novemberRows = 30 * 75

const webhookSecret = "webhook-secret-0123456789"

// schedEnv is a node with schedules: its manager, its server (the links'
// public URL), its queue and storage.
type schedEnv struct {
	m     *jobs.Manager
	q     *jobs.Queue
	url   string
	store storage.Storage
	trail *audit.Store
}

// schedFixture returns the fixture's items database under schedYAML,
// with each schedule added to its dataset.
func schedFixture(t *testing.T, scheds ...*exportd.Schedule) *fixture {
	t.Helper()
	f := newFixture(t)
	dir := filepath.Dir(f.path)
	if err := os.WriteFile(filepath.Join(dir, "audit.key"), []byte("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := datasets.ParseConfig(filepath.Join(dir, "datasets.yaml"), []byte(schedYAML))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scheds {
		d, err := cfg.Lookup(s.Dataset)
		if err != nil {
			t.Fatal(err)
		}
		if s.Location == nil {
			s.Timezone, s.Location = cfg.Timezone, cfg.Location
		}
		if probs := s.Validate(cfg, d, time.Now()); len(probs) > 0 {
			t.Fatalf("schedule %s: %v", s.ID(), probs)
		}
		d.Schedules = append(d.Schedules, s)
	}
	f.cfg = cfg
	return f
}

// startSched starts a node on queueURL (results in dir) with its own
// HTTP server, whose address is the links' public URL.
func startSched(t *testing.T, f *fixture, queueURL, dir string, opts ...func(*jobs.Config)) *schedEnv {
	return startSchedServer(t, f, queueURL, dir, nil, opts...)
}

// startSchedServer is startSched with a change to the server's config.
func startSchedServer(t *testing.T, f *fixture, queueURL, dir string, srvOpt func(*server.Config), opts ...func(*jobs.Config)) *schedEnv {
	t.Helper()
	ctx := context.Background()
	q, err := jobs.OpenQueue(ctx, queueURL)
	if err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := audit.LoadKeys(f.cfg.Privacy.AuditKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.Open(ctx, f.cfg.Privacy.AuditDB, audit.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	jc := jobs.Config{
		Datasets: f.cfg, Sources: f.sources, Queue: q, Storage: st, Audit: trail,
		Links: mustKeys([]byte("0123456789abcdef0123456789abcdef")), Workers: 2, ResultTTL: time.Hour,
		PollInterval: 50 * time.Millisecond, Logger: log,
		Delivery: jobs.Delivery{PublicURL: "http://" + ts.Listener.Addr().String(), WebhookSecret: []byte(webhookSecret),
			Backoff: 100 * time.Millisecond, Timeout: 10 * time.Second},
	}
	for _, o := range opts {
		o(&jc)
	}
	m, err := jobs.New(jc)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sc := server.Config{Datasets: f.cfg, Sources: f.sources, Logger: log, Jobs: m, Audit: trail,
		Principal: func(r *http.Request) string { return r.Header.Get(principalHeader) }}
	if srvOpt != nil {
		srvOpt(&sc)
	}
	srv, err := server.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.Stop(c); err != nil {
			t.Errorf("stop: %v", err)
		}
		q.Close()
		st.Close()
		trail.Close()
	})
	return &schedEnv{m: m, q: q, url: ts.URL, store: st, trail: trail}
}

// wait returns job id once it is final.
func (e *schedEnv) wait(t *testing.T, id string) *jobs.Job {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		j, err := e.m.ScheduleJob(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Final() {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s", id, j.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func seoul(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestScheduleDelivery runs a monthly schedule as its tick at 00:30 KST on
// 1 December 2024 would (still 30 November in UTC): the file holds
// November, a real SMTP server (Mailpit, over STARTTLS) receives the mail
// with a Korean subject, a UTF-8 body and a link that downloads the job's
// very bytes, with the file attached (a recipient it refuses is a failed
// delivery, not tried again); a webhook that fails once gets the signed
// payload on the second try.
func TestScheduleDelivery(t *testing.T) {
	mp := startMailpit(t)
	var hookCalls atomic.Int32
	var hookMu sync.Mutex
	var hookBody []byte
	var hookHeader http.Header
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if hookCalls.Add(1) == 1 {
			http.Error(w, "not now", http.StatusInternalServerError)
			return
		}
		hookMu.Lock()
		hookBody, hookHeader = body, r.Header.Clone()
		hookMu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()

	s := &exportd.Schedule{Dataset: "sales", Name: "monthly", Cron: "30 0 1 * *", Format: exportd.FormatCSV,
		Params: map[string][]string{"from": {"start of last month"}, "to": {"end of last month"}},
		Owner:  exportd.ScheduleOwner{Name: "kim", Roles: []string{"manager"}},
		Email:  []string{"kim@example.com", "lee@elsewhere.example"}, Webhooks: []string{hook.URL + "/hook?token=abc"}, Attach: true}
	f := schedFixture(t, s)
	e := startSched(t, f, "sqlite:"+filepath.Join(t.TempDir(), "jobs.db"), t.TempDir(), func(c *jobs.Config) {
		c.Delivery.SMTP = jobs.SMTP{Addr: mp.SMTP, TLS: "starttls", Username: "exportd", Password: "pw",
			From: "exportd <exportd@example.com>", TLSConfig: mp.TLS}
	})
	at := time.Date(2024, 12, 1, 0, 30, 0, 0, seoul(t))
	j, joined, err := e.m.RunSchedule(context.Background(), "sales", "monthly", at)
	if err != nil || joined {
		t.Fatal(err, joined)
	}
	if got := j.Params; got["from"][0] != "2024-11-01" || got["to"][0] != "2024-11-30" {
		t.Fatalf("params %v, want November 2024", got)
	}
	j = e.wait(t, j.ID)
	if j.State != jobs.StateSucceeded || j.Rows != novemberRows {
		t.Fatalf("job %s: %s, %d rows (want %d): %s", j.ID, j.State, j.Rows, novemberRows, j.Error)
	}
	if j.Owner() != "schedule:kim" || j.Schedule != "sales/monthly" || !j.Manual {
		t.Fatalf("job owner %q schedule %q manual %v", j.Owner(), j.Schedule, j.Manual)
	}
	res, err := e.m.Open(context.Background(), j.Owner(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := io.ReadAll(res)
	res.Close()
	if n := bytes.Count(want, []byte("\n")); n != novemberRows+1 {
		t.Fatalf("file has %d lines, want %d", n, novemberRows+1)
	}

	// Deliveries, as the job shows them.
	if len(j.Deliveries) != 3 {
		t.Fatalf("deliveries %+v", j.Deliveries)
	}
	em, refused, wh := j.Deliveries[0], j.Deliveries[1], j.Deliveries[2]
	if refused.OK || refused.Attempts != 1 || !strings.Contains(refused.Error, "RCPT TO lee@elsewhere.example") {
		t.Errorf("a recipient the server refuses (5xx, not tried again): %+v", refused)
	}
	if em.Kind != "email" || !em.OK || em.Attempts != 1 || !em.Attached || em.To != "kim@example.com" {
		t.Errorf("mail delivery %+v", em)
	}
	if wh.Kind != "webhook" || !wh.OK || wh.Attempts != 2 || wh.Status != 204 || wh.To != hook.URL {
		t.Errorf("webhook delivery %+v (a 500, then 204)", wh)
	}

	// The mail.
	msgs := mp.messages(t)
	if len(msgs) != 1 || msgs[0].To[0].Address != "kim@example.com" {
		t.Fatalf("messages %+v", msgs)
	}
	raw := mp.raw(t, msgs[0].ID)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	rawSubject := msg.Header.Get("Subject")
	if !strings.HasPrefix(rawSubject, "=?UTF-8?b?") {
		t.Errorf("subject %q is not RFC 2047 encoded", rawSubject)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(rawSubject)
	if err != nil || subject != "[exportd] 월간 판매 — 정기 내보내기 monthly (2024-12-01)" {
		t.Errorf("subject %q (%v)", subject, err)
	}
	mt, mp2, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("content type %q %v", mt, err)
	}
	mr := multipart.NewReader(msg.Body, mp2["boundary"])
	altPart, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	altType, altParams, err := mime.ParseMediaType(altPart.Header.Get("Content-Type"))
	if err != nil || altType != "multipart/alternative" {
		t.Fatalf("first part %q %v, want the text and HTML alternatives", altType, err)
	}
	alt := multipart.NewReader(altPart, altParams["boundary"])
	textPart, err := alt.NextPart() // decodes quoted-printable
	if err != nil {
		t.Fatal(err)
	}
	if ct := textPart.Header.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
		t.Errorf("text part %q", ct)
	}
	text, _ := io.ReadAll(textPart)
	body := string(text)
	htmlPart, err := alt.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if ct := htmlPart.Header.Get("Content-Type"); ct != "text/html; charset=UTF-8" {
		t.Errorf("HTML part %q", ct)
	}
	htmlBytes, _ := io.ReadAll(htmlPart)
	if _, err := alt.NextPart(); err != io.EOF {
		t.Errorf("a third alternative: %v", err)
	}
	for _, s := range []string{"월간 판매의 정기 내보내기 'monthly'가 준비되었습니다.", "시작일 (from): 2024-11-01", "종료일 (to): 2024-11-30",
		"행 수: 2,250", "파일: 판매_2024-11-01_2024-11-30.csv", "SHA-256: " + j.SHA256} {
		if !strings.Contains(body, s) {
			t.Errorf("the body lacks %q:\n%s", s, body)
		}
	}
	link := ""
	for line := range strings.SplitSeq(body, "\r\n") {
		if strings.HasPrefix(line, e.url+"/v1/jobs/"+j.ID+"/download?") {
			link = line
		}
	}
	if link == "" {
		t.Fatalf("no download link to %s in:\n%s", e.url, body)
	}
	// The HTML says the same, and its button is the same link.
	doc, err := html.Parse(bytes.NewReader(htmlBytes))
	if err != nil {
		t.Fatal(err)
	}
	var href, htmlText strings.Builder
	for n := range doc.Descendants() {
		switch {
		case n.Type == html.TextNode:
			htmlText.WriteString(n.Data)
		case n.Type == html.ElementNode && n.Data == "a":
			for _, a := range n.Attr {
				if a.Key == "href" {
					href.WriteString(a.Val)
				}
			}
		}
	}
	if href.String() != link {
		t.Errorf("the HTML's link %q, the text's %q", href.String(), link)
	}
	for _, s := range []string{"월간 판매의 정기 내보내기 'monthly'가 준비되었습니다.", "시작일 (from)2024-11-01",
		"행 수2,250", "파일판매_2024-11-01_2024-11-30.csv", "SHA-256" + j.SHA256, "파일을 첨부했습니다."} {
		if !strings.Contains(strings.ReplaceAll(htmlText.String(), "\n", ""), s) {
			t.Errorf("the HTML lacks %q:\n%s", s, htmlText.String())
		}
	}
	resp, err := http.Get(link) // no credentials: the link is one
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, want) {
		t.Fatalf("the mail's link: %d, %d bytes (the job's: %d)", resp.StatusCode, len(got), len(want))
	}
	attPart, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if attPart.FileName() != "판매_2024-11-01_2024-11-30.csv" {
		t.Errorf("attachment named %q", attPart.FileName())
	}
	att, _ := io.ReadAll(attPart) // multipart does not decode base64
	dec := make([]byte, len(att))
	n, err := base64Decode(dec, att)
	if err != nil || !bytes.Equal(dec[:n], want) {
		t.Errorf("the attachment differs from the job's file (%v)", err)
	}

	// The metrics count the deliveries.
	mresp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{`exportd_schedule_deliveries_total{kind="email",outcome="delivered"} 1`,
		`exportd_schedule_deliveries_total{kind="email",outcome="failed"} 1`,
		`exportd_schedule_deliveries_total{kind="webhook",outcome="delivered"} 1`, `exportd_schedule_runs_total{outcome="succeeded"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The webhook: signed, and its link the same.
	hookMu.Lock()
	defer hookMu.Unlock()
	ts := hookHeader.Get(jobs.WebhookTimestampHeader)
	if sig := hookHeader.Get(jobs.WebhookSignatureHeader); !hmac.Equal([]byte(sig), []byte(jobs.WebhookSignature([]byte(webhookSecret), ts, hookBody))) {
		t.Errorf("webhook signature %q does not verify", sig)
	}
	if jobs.WebhookSignature([]byte("another secret 0123456789"), ts, hookBody) == hookHeader.Get(jobs.WebhookSignatureHeader) {
		t.Error("the signature verifies under another secret")
	}
	var p jobs.WebhookPayload
	if err := json.Unmarshal(hookBody, &p); err != nil {
		t.Fatal(err)
	}
	if p.JobID != j.ID || p.Schedule != "sales/monthly" || p.Rows != novemberRows || p.Size != int64(len(want)) ||
		p.SHA256 != j.SHA256 || p.Link != link || p.Params["from"][0] != "2024-11-01" || !p.Tick.Equal(at) {
		t.Errorf("webhook payload %+v", p)
	}
}

// base64Decode decodes standard base64 with line breaks.
func base64Decode(dst, src []byte) (int, error) {
	return base64.StdEncoding.Decode(dst, bytes.ReplaceAll(bytes.ReplaceAll(src, []byte("\r"), nil), []byte("\n"), nil))
}
