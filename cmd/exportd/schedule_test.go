package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/datasets"
)

const scheduleYAML = `timezone: Asia/Seoul
connections:
  main: {url: "sqlite:demo.db"}
datasets:
  sales:
    sql: SELECT id FROM sales WHERE day BETWEEN :from AND :to
    params:
      - {name: from, type: date, required: true}
      - {name: to, type: date, required: true}
    schedules:
      - name: monthly
        cron: "30 0 1 * *"
        params: {from: start of last month, to: end of last month}
        owner: {name: kim}
        email: [kim@example.com]
        webhook: [https://hooks.example.com/x]
`

// exportd schedule list --config shows each schedule's next runs and
// the parameters the first resolves to, in the schedule's zone.
func TestScheduleListConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "datasets.yaml")
	if err := os.WriteFile(path, []byte(scheduleYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c := &scheduleListCmd{Config: path, Next: 2}
	if err := c.fromFile(&out, time.Date(2024, 11, 30, 15, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	want := `sales/monthly  cron "30 0 1 * *"  Asia/Seoul  owner schedule:kim  xlsx
  next 2024-12-01 00:30 KST  from=2024-11-01  to=2024-11-30
  next 2025-01-01 00:30 KST
  to kim@example.com, https://hooks.example.com
`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

// serve refuses to start with schedules whose recipients it could never
// reach; the delivery settings come from flags or EXPORTD_<FLAG>.
func TestServeDeliverySettings(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "datasets.yaml")
	if err := os.WriteFile(path, []byte(scheduleYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := datasets.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "smtp.pw")
	os.WriteFile(pw, []byte("pass word\n"), 0o600)
	t.Setenv("EXPORTD_PUBLIC_URL", "https://exportd.example.com/")
	t.Setenv("EXPORTD_SMTP_ADDR", "smtp.example.com:587")
	t.Setenv("EXPORTD_SMTP_FROM", "exportd <exportd@example.com>")
	t.Setenv("EXPORTD_SMTP_PASSWORD_FILE", pw)
	t.Setenv("EXPORTD_WEBHOOK_SECRET", "webhook-secret-0123456789")
	c, err := parseServe(t, "serve", "--config", path, "--jobs", "--jobs-secret", "0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.delivery(cfg, mustLinkKeys(t, c))
	if err != nil {
		t.Fatal(err)
	}
	if d.PublicURL != "https://exportd.example.com/" || d.SMTP.Addr != "smtp.example.com:587" || d.SMTP.TLS != "starttls" ||
		d.SMTP.Password != "pass word" || string(d.WebhookSecret) != "webhook-secret-0123456789" || d.AttachMax != 10<<20 {
		t.Errorf("delivery %+v", d)
	}
	for _, tc := range []struct{ env, value, want string }{
		{"EXPORTD_PUBLIC_URL", "", "--public-url"},
		{"EXPORTD_SMTP_ADDR", "", "--smtp-addr"},
		{"EXPORTD_WEBHOOK_SECRET", "short", "--webhook-secret"},
		{"EXPORTD_WEBHOOK_SECRET", "0123456789abcdef0123456789abcdef", "must differ from the link secret"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			c, err := parseServe(t, "serve", "--config", path, "--jobs", "--jobs-secret", "0123456789abcdef0123456789abcdef")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.delivery(cfg, mustLinkKeys(t, c)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s=%q: %v", tc.env, tc.value, err)
			}
		})
	}
}

func mustLinkKeys(t *testing.T, c *serveCmd) *auth.Keys {
	t.Helper()
	keys, err := c.linkKeys()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
