package jobs

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd"
)

// Markup in what a dataset, a schedule or a run's parameters say reaches
// the HTML part as text, never as markup: a title or a parameter value
// cannot add a link or a script to the mail.
func TestComposeMailEscapes(t *testing.T) {
	evil := `<a href="https://evil.example/">x</a><script>alert(1)</script>`
	r := &run{
		s: &exportd.Schedule{Name: "monthly", Location: time.UTC, Purpose: evil},
		d: &exportd.Dataset{Name: "sales", Title: evil},
		payload: WebhookPayload{
			JobID: "7", Tick: time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC), Params: map[string][]string{"q": {evil}},
			FileName: "sales.csv", Rows: 1, Size: 10, SHA256: "ab", Link: `https://exportd.example/v1/jobs/7/download?sig=1&x="><b>`,
		},
		personal: true,
	}
	raw, err := composeMail("exportd@example.com", "kim@example.com", r, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	altPart, err := multipart.NewReader(msg.Body, params["boundary"]).NextPart()
	if err != nil {
		t.Fatal(err)
	}
	_, altParams, _ := mime.ParseMediaType(altPart.Header.Get("Content-Type"))
	alt := multipart.NewReader(altPart, altParams["boundary"])
	var parts []string
	for {
		p, err := alt.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, string(b))
	}
	if len(parts) != 2 {
		t.Fatalf("%d alternatives, want text and HTML", len(parts))
	}
	if !strings.Contains(parts[0], evil) {
		t.Errorf("the text part does not carry the title as it is:\n%s", parts[0])
	}
	html := parts[1]
	for _, bad := range []string{"<script>", `<a href="https://evil`, "<b>"} {
		if strings.Contains(html, bad) {
			t.Errorf("the HTML part holds markup %q from the data:\n%s", bad, html)
		}
	}
	if !strings.Contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the HTML part lacks the escaped title:\n%s", html)
	}
	if n := strings.Count(html, "<a "); n != 1 {
		t.Errorf("%d links in the HTML, want the one download link", n)
	}
}
