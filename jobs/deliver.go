package jobs

// Delivery of a schedule's run: an e-mail over SMTP carrying the expiring
// signed download link (and the file itself, for a dataset without
// personal data under a size limit), and a JSON POST to each webhook,
// signed with HMAC-SHA256 and tried again with backoff.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
)

// Delivery configures how the runs of schedules reach their recipients.
type Delivery struct {
	// PublicURL is the server's address as recipients reach it
	// (https://exportd.example.com): the download links of mails and
	// webhooks start with it. Without it every delivery fails (a link
	// relative to nothing reaches no one).
	PublicURL string
	// SMTP sends the mails; without an Addr, mail deliveries fail.
	SMTP SMTP
	// WebhookSecret signs the webhook requests (HMAC-SHA256, see
	// WebhookSignature). A secret of its own, not the link secret: a
	// receiver that can check a request must not be able to sign download
	// links. Without one (at least 16 bytes), webhook deliveries fail.
	WebhookSecret []byte
	// AttachMax is the largest file attached to a mail; 0 means 10 MiB, a
	// negative value never attaches. A personal dataset's file is never
	// attached.
	AttachMax int64
	// Tries is how often a delivery is tried; 0 means 4. Backoff is the
	// wait before the second try, doubling after each; 0 means 2 s.
	// Timeout bounds one try; 0 means 30 s.
	Tries   int
	Backoff time.Duration
	Timeout time.Duration
	// HTTPClient posts the webhooks; nil means a client of its own.
	HTTPClient *http.Client
}

// SMTP is the mail server of the deliveries.
type SMTP struct {
	Addr string // host:port
	// TLS is "starttls" (the default: the server must offer STARTTLS, or
	// nothing is sent), "tls" (implicit TLS, usually port 465) or "none"
	// (plain text: a relay on the same host or a trusted network; net/smtp
	// then refuses to send a password except to localhost).
	TLS                string
	Username, Password string
	// From is the sender: kim@example.com or "exportd <exportd@example.com>".
	From string
	// TLSConfig, if set, is used for the TLS connection (its ServerName
	// is set to the host of Addr when empty).
	TLSConfig *tls.Config
}

// Defaults of Delivery.
const (
	DefaultAttachMax       = 10 << 20
	DefaultDeliveryTries   = 4
	DefaultDeliveryBackoff = 2 * time.Second
	DefaultDeliveryTimeout = 30 * time.Second
)

// The headers of a webhook request.
const (
	WebhookSignatureHeader = "X-Exportd-Signature" // sha256=HEX
	WebhookTimestampHeader = "X-Exportd-Timestamp" // Unix seconds
	WebhookEventHeader     = "X-Exportd-Event"     // export.delivered
)

func (d *Delivery) setDefaults() error {
	if d.AttachMax == 0 {
		d.AttachMax = DefaultAttachMax
	}
	if d.Tries <= 0 {
		d.Tries = DefaultDeliveryTries
	}
	if d.Backoff <= 0 {
		d.Backoff = DefaultDeliveryBackoff
	}
	if d.Timeout <= 0 {
		d.Timeout = DefaultDeliveryTimeout
	}
	if d.HTTPClient == nil {
		d.HTTPClient = &http.Client{Timeout: d.Timeout,
			// A webhook answers; it does not send the request elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	switch d.SMTP.TLS {
	case "":
		d.SMTP.TLS = "starttls"
	case "starttls", "tls", "none":
	default:
		return fmt.Errorf("jobs: SMTP TLS %q (want starttls, tls or none)", d.SMTP.TLS)
	}
	if d.SMTP.From != "" {
		if _, err := mail.ParseAddress(d.SMTP.From); err != nil {
			return fmt.Errorf("jobs: SMTP sender %q: %w", d.SMTP.From, err)
		}
	}
	if d.PublicURL != "" {
		u, err := url.Parse(d.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("jobs: public URL %q: want http(s)://host[/prefix]", d.PublicURL)
		}
		d.PublicURL = strings.TrimSuffix(d.PublicURL, "/")
	}
	return nil
}

// WebhookSignature returns the signature a webhook request carries in
// X-Exportd-Signature: "sha256=" and the hex HMAC-SHA256, under the
// webhook secret, of the X-Exportd-Timestamp value, a dot and the body.
// A receiver computes it again, compares it in constant time, and refuses
// a timestamp more than a few minutes old (a replayed request).
func WebhookSignature(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// DeliveryState is how one delivery of a run went, as the job shows it.
type DeliveryState struct {
	Kind string `json:"kind"` // email or webhook
	// To is the address, or the webhook's scheme and host (its path and
	// query may hold a token).
	To       string    `json:"to"`
	OK       bool      `json:"ok"`
	Attempts int       `json:"attempts"`
	Attached bool      `json:"attached,omitempty"` // the file was attached to the mail
	Status   int       `json:"status,omitempty"`   // a webhook's last HTTP status
	Error    string    `json:"error,omitempty"`
	At       time.Time `json:"at"`
}

// WebhookPayload is the JSON body of a webhook request.
type WebhookPayload struct {
	Event     string              `json:"event"` // export.delivered
	JobID     string              `json:"job_id"`
	Schedule  string              `json:"schedule"` // dataset/name
	Dataset   string              `json:"dataset"`
	Tick      time.Time           `json:"tick"`
	Manual    bool                `json:"manual,omitempty"`
	Params    map[string][]string `json:"params"`
	Format    string              `json:"format"`
	FileName  string              `json:"file_name"`
	Rows      int64               `json:"rows"`
	Size      int64               `json:"size"`
	SHA256    string              `json:"sha256"`
	Link      string              `json:"link"`
	ExpiresAt time.Time           `json:"expires_at"`
}

// run is what the deliveries tell of a finished run.
type run struct {
	s        *exportd.Schedule
	d        *exportd.Dataset
	payload  WebhookPayload
	key      string // the result's storage key (an attachment)
	ctype    string
	rec      audit.Record // the skeleton of the delivery records (personal datasets)
	personal bool
}

// deliveryMetrics count the schedules' runs and deliveries.
type deliveryMetrics struct {
	runs       *prometheus.CounterVec // outcome
	deliveries *prometheus.CounterVec // kind, outcome
}

func newDeliveryMetrics() *deliveryMetrics {
	return &deliveryMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exportd_schedule_runs_total",
			Help: "Runs of schedules on this node, by outcome (succeeded, failed, skipped: a tick another job had run).",
		}, []string{"outcome"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exportd_schedule_deliveries_total",
			Help: "Deliveries of scheduled runs on this node, by kind (email, webhook) and outcome (delivered, failed).",
		}, []string{"kind", "outcome"}),
	}
}

// Collectors returns the manager's Prometheus metrics (the schedules'
// runs and deliveries), for a server's registry.
func (m *Manager) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.metrics.runs, m.metrics.deliveries}
}

// deliver delivers a finished run to each recipient of its schedule, and
// records each delivery of a personal dataset in the audit trail. A
// failed delivery does not fail the job: its result is there, and the
// job shows what failed.
func (m *Manager) deliver(ctx context.Context, r *run) []DeliveryState {
	var out []DeliveryState
	for _, to := range r.s.Email {
		st := DeliveryState{Kind: "email", To: to}
		st.Attempts, st.Attached, st.Error = m.retry(ctx, func(ctx context.Context) (bool, error) {
			attached, err := m.sendMail(ctx, r, to)
			return attached, permanentIf(err, errors.Is(err, errNoSetting))
		})
		m.finishDelivery(ctx, r, &st, "mailto:"+to)
		out = append(out, st)
	}
	for _, hook := range r.s.Webhooks {
		st := DeliveryState{Kind: "webhook", To: redactURL(hook)}
		st.Attempts, _, st.Error = m.retry(ctx, func(ctx context.Context) (bool, error) {
			status, err := m.postWebhook(ctx, r, hook)
			st.Status = status
			return false, err
		})
		m.finishDelivery(ctx, r, &st, "webhook:"+st.To)
		out = append(out, st)
	}
	return out
}

// finishDelivery completes st, counts it and records it in the trail.
func (m *Manager) finishDelivery(ctx context.Context, r *run, st *DeliveryState, client string) {
	st.OK, st.At = st.Error == "", time.Now().UTC()
	outcome := "delivered"
	log := m.log.With("schedule", r.s.ID(), "job", r.payload.JobID, "kind", st.Kind, "to", st.To, "attempts", st.Attempts)
	if st.OK {
		log.Info("delivered")
	} else {
		outcome = "failed"
		log.Warn("delivery failed", "error", st.Error)
	}
	m.metrics.deliveries.WithLabelValues(st.Kind, outcome).Inc()
	if !r.personal {
		return
	}
	rec := r.rec
	rec.Time, rec.Client = st.At, client
	rec.Rows, rec.Bytes, rec.SHA256 = r.payload.Rows, r.payload.Size, r.payload.SHA256
	rec.Outcome = audit.OutcomeDelivered
	if !st.OK {
		rec.Outcome, rec.Error = audit.OutcomeUndelivered, st.Error
	}
	if m.cfg.Audit == nil {
		log.Error("delivery not recorded: no audit trail")
		return
	}
	var err error
	for i := range 3 {
		if i > 0 {
			time.Sleep(time.Duration(i) * 200 * time.Millisecond)
		}
		c := rec
		if err = m.cfg.Audit.Append(context.WithoutCancel(ctx), &c); err == nil || errors.Is(err, audit.ErrNotLogged) {
			return
		}
	}
	log.Error("delivery not recorded in the audit trail", "error", err.Error())
}

// errNoSetting is a delivery that cannot succeed for want of a setting.
var errNoSetting = errors.New("not configured")

// permanent marks an error that trying again does not help.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

func permanentIf(err error, yes bool) error {
	if err != nil && yes {
		return permanent{err}
	}
	return err
}

// retry calls try until it succeeds, fails for good (a permanent error)
// or has been tried Tries times, waiting Backoff, then twice as long…
// between tries. It returns the number of tries, try's flag and the last
// error's text ("" on success).
func (m *Manager) retry(ctx context.Context, try func(ctx context.Context) (bool, error)) (int, bool, string) {
	wait := m.cfg.Delivery.Backoff
	var err error
	for n := 1; ; n++ {
		c, cancel := context.WithTimeout(ctx, m.cfg.Delivery.Timeout)
		var flag bool
		flag, err = try(c)
		cancel()
		var p permanent
		if err == nil {
			return n, flag, ""
		}
		if errors.As(err, &p) || n >= m.cfg.Delivery.Tries || ctx.Err() != nil {
			return n, false, err.Error()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return n, false, fmt.Sprintf("%v (then stopped: %v)", err, context.Cause(ctx))
		case <-t.C:
		}
		wait *= 2
	}
}

// postWebhook posts the run's payload to hook, signed; a 2xx answer is a
// delivery, a 4xx other than 408 and 429 a permanent refusal.
func (m *Manager) postWebhook(ctx context.Context, r *run, hook string) (int, error) {
	secret := m.cfg.Delivery.WebhookSecret
	if len(secret) < 16 {
		return 0, permanent{fmt.Errorf("no webhook secret (of at least 16 bytes) is configured: %w", errNoSetting)}
	}
	if r.payload.Link == "" {
		return 0, permanent{fmt.Errorf("no public URL is configured for the download link: %w", errNoSetting)}
	}
	body, err := json.Marshal(r.payload)
	if err != nil {
		return 0, permanent{err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, bytes.NewReader(body))
	if err != nil {
		return 0, permanent{fmt.Errorf("webhook %s: bad URL", redactURL(hook))}
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "exportd")
	req.Header.Set(WebhookEventHeader, r.payload.Event)
	req.Header.Set(WebhookTimestampHeader, ts)
	req.Header.Set(WebhookSignatureHeader, WebhookSignature(secret, ts, body))
	resp, err := m.cfg.Delivery.HTTPClient.Do(req)
	if err != nil {
		// Not the URL: its query may hold a token, and the error is shown
		// with the job and written to the trail.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("webhook %s: %w", redactURL(hook), err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return c, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return c, fmt.Errorf("webhook answered %s", resp.Status)
	default:
		return c, permanent{fmt.Errorf("webhook answered %s", resp.Status)}
	}
}

// sendMail mails the run to one address; it reports whether the file
// was attached.
func (m *Manager) sendMail(ctx context.Context, r *run, to string) (bool, error) {
	c := m.cfg.Delivery.SMTP
	switch {
	case c.Addr == "" || c.From == "":
		return false, fmt.Errorf("no SMTP server and sender are configured: %w", errNoSetting)
	case r.payload.Link == "":
		return false, fmt.Errorf("no public URL is configured for the download link: %w", errNoSetting)
	}
	var attach []byte
	if r.s.Attach && !r.personal && m.cfg.Delivery.AttachMax > 0 && r.payload.Size <= m.cfg.Delivery.AttachMax {
		obj, err := m.cfg.Storage.Open(ctx, r.key)
		if err != nil {
			return false, fmt.Errorf("attachment: %w", err)
		}
		attach, err = io.ReadAll(io.LimitReader(obj, m.cfg.Delivery.AttachMax+1))
		obj.Close()
		if err != nil {
			return false, fmt.Errorf("attachment: %w", err)
		}
	}
	msg, err := composeMail(c.From, to, r, attach, time.Now())
	if err != nil {
		return false, permanent{err}
	}
	if err := c.send(ctx, to, msg); err != nil {
		// A 5xx reply (no such mailbox, refused) is final: trying again
		// gets the same answer.
		var te *textproto.Error
		return false, permanentIf(err, errors.As(err, &te) && te.Code >= 500)
	}
	return attach != nil, nil
}

// send sends msg to one recipient over SMTP, within ctx.
func (c SMTP) send(ctx context.Context, to string, msg []byte) error {
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return permanent{fmt.Errorf("SMTP address %q: %w", c.Addr, err)}
	}
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if c.TLSConfig != nil {
		tc = c.TLSConfig.Clone()
		if tc.ServerName == "" {
			tc.ServerName = host
		}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if c.TLS == "tls" {
		tconn := tls.Client(conn, tc)
		if err := tconn.HandshakeContext(ctx); err != nil {
			conn.Close()
			return fmt.Errorf("smtp: tls: %w", err)
		}
		conn = tconn
	}
	// net/smtp takes no context: the connection's deadline is ctx's, and
	// its end closes the connection.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	cl, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp: %w", err)
	}
	defer cl.Close()
	if c.TLS == "starttls" {
		if ok, _ := cl.Extension("STARTTLS"); !ok {
			return permanent{fmt.Errorf("smtp: %s does not offer STARTTLS (set the TLS mode to none to send in plain text)", c.Addr)}
		}
		if err := cl.StartTLS(tc); err != nil {
			return fmt.Errorf("smtp: starttls: %w", err)
		}
	}
	if c.Username != "" {
		if err := cl.Auth(smtp.PlainAuth("", c.Username, c.Password, host)); err != nil {
			return fmt.Errorf("smtp: auth: %w", err)
		}
	}
	from, _ := mail.ParseAddress(c.From)
	if err := cl.Mail(from.Address); err != nil {
		return fmt.Errorf("smtp: MAIL FROM: %w", err)
	}
	if err := cl.Rcpt(to); err != nil {
		return fmt.Errorf("smtp: RCPT TO %s: %w", to, err)
	}
	w, err := cl.Data()
	if err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	return cl.Quit()
}

// composeMail returns the message of a run to one address: a multipart
// message whose subject is RFC 2047 encoded UTF-8, whose body says the
// figures and the download link twice, as UTF-8 text and as HTML
// (quoted-printable alternatives), and with the file attached when attach
// is not nil.
func composeMail(from, to string, r *run, attach []byte, now time.Time) ([]byte, error) {
	p := r.payload
	loc := r.s.Location
	title := r.d.Title
	if title == "" {
		title = r.d.Name
	}
	var hdr bytes.Buffer
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	subject := fmt.Sprintf("[exportd] %s — 정기 내보내기 %s (%s)", title, r.s.Name, p.Tick.In(loc).Format("2006-01-02"))
	fromAddr, _ := mail.ParseAddress(from)
	h := func(k, v string) { fmt.Fprintf(&hdr, "%s: %s\r\n", k, v) }
	h("From", fromAddr.String())
	h("To", (&mail.Address{Address: to}).String())
	h("Subject", mime.BEncoding.Encode("UTF-8", subject))
	h("Date", now.Format(time.RFC1123Z))
	h("Message-ID", fmt.Sprintf("<exportd.%s.%d.%s@%s>", p.JobID, now.UnixNano(), hex.EncodeToString([]byte(to))[:min(16, 2*len(to))], domainOf(fromAddr.Address)))
	h("MIME-Version", "1.0")
	h("Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": mw.Boundary()}))
	h("Auto-Submitted", "auto-generated")
	h("X-Exportd-Job", p.JobID)
	h("X-Exportd-Schedule", p.Schedule)
	hdr.WriteString("\r\n")

	m := mailFacts{
		Title: title, Schedule: r.s.Name, Manual: p.Manual,
		When:     p.Tick.In(loc).Format("2006-01-02 15:04 MST"),
		FileName: p.FileName, Rows: groupDigits(p.Rows),
		Size:    fmt.Sprintf("%s (%s 바이트)", humanSize(p.Size), groupDigits(p.Size)),
		SHA256:  p.SHA256,
		Expires: p.ExpiresAt.In(loc).Format("2006-01-02 15:04 MST"), Link: p.Link,
		Attached: attach != nil, Personal: r.personal, Purpose: r.s.Purpose,
	}
	names := make([]string, 0, len(p.Params))
	for k := range p.Params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		label := k
		if prm, ok := r.d.Param(k); ok && prm.Label != "" {
			label = prm.Label + " (" + k + ")"
		}
		m.Params = append(m.Params, mailParam{Label: label, Value: strings.Join(p.Params[k], ", ")})
	}
	var text, html bytes.Buffer
	if err := mailText.Execute(&text, m); err != nil {
		return nil, err
	}
	if err := mailHTML.Execute(&html, m); err != nil {
		return nil, err
	}

	// The text and the HTML are alternatives of one part, before the
	// attachment: a reader shows the HTML, or the text where it shows none.
	var altBody bytes.Buffer
	alt := multipart.NewWriter(&altBody)
	for _, part := range []struct {
		ctype string
		body  []byte
	}{{"text/plain; charset=UTF-8", text.Bytes()}, {"text/html; charset=UTF-8", html.Bytes()}} {
		w, err := alt.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.ctype},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write(bytes.ReplaceAll(part.body, []byte("\n"), []byte("\r\n"))); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := alt.Close(); err != nil {
		return nil, err
	}
	aw, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type": {mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": alt.Boundary()})},
	})
	if err != nil {
		return nil, err
	}
	if _, err := aw.Write(altBody.Bytes()); err != nil {
		return nil, err
	}
	if attach != nil {
		aw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {r.ctype},
			"Content-Transfer-Encoding": {"base64"},
			"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": p.FileName})},
		})
		if err != nil {
			return nil, err
		}
		enc := base64.StdEncoding.EncodeToString(attach)
		for len(enc) > 76 {
			io.WriteString(aw, enc[:76]+"\r\n")
			enc = enc[76:]
		}
		io.WriteString(aw, enc+"\r\n")
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return slices.Concat(hdr.Bytes(), body.Bytes()), nil
}

// redactURL returns the scheme and host of u: its path and query may hold
// a token.
func redactURL(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return "(a bad URL)"
	}
	return pu.Scheme + "://" + pu.Host
}

func domainOf(addr string) string {
	if _, d, ok := strings.Cut(addr, "@"); ok && d != "" {
		return d
	}
	return "exportd.invalid"
}

// groupDigits writes n with thousands separators: 1,234,567.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// humanSize writes n bytes in KiB, MiB, GiB.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// mailFacts are what a run's mail says, in its text and its HTML alike.
type mailFacts struct {
	Title, Schedule string
	Manual          bool
	When            string // the tick, or the time of a manual run
	Params          []mailParam
	FileName, Rows  string
	Size, SHA256    string
	Expires, Link   string
	Attached        bool
	Personal        bool
	Purpose         string
}

type mailParam struct{ Label, Value string }

var mailText = texttemplate.Must(texttemplate.New("text").Parse(`{{.Title}}의 정기 내보내기 '{{.Schedule}}'가 준비되었습니다.

{{if .Manual}}요청 시각: {{.When}} (수동 실행){{else}}예정 시각: {{.When}}{{end}}
{{with .Params}}조건:
{{range .}}  {{.Label}}: {{.Value}}
{{end}}{{end}}파일: {{.FileName}}
행 수: {{.Rows}}
크기: {{.Size}}
SHA-256: {{.SHA256}}

내려받기 ({{.Expires}}까지 유효):
{{.Link}}
{{if .Attached}}
파일을 첨부했습니다.
{{end}}{{if .Personal}}
이 파일에는 개인정보가 들어 있습니다. 목적({{.Purpose}}) 외에 쓰거나 전달하지 마십시오. 내려받기는 감사 기록에 남습니다.
{{end}}
-- 
이 메일은 exportd가 자동으로 보냈습니다.
`))

// mailHTML is the same as mailText, for mail readers that show HTML: a
// table of the figures and a button-like link (inline styles only, which
// mail readers keep).
var mailHTML = htmltemplate.Must(htmltemplate.New("html").Parse(`<!DOCTYPE html>
<html lang="ko"><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body style="font-family:sans-serif;font-size:14px;color:#222">
<p><strong>{{.Title}}</strong>의 정기 내보내기 '{{.Schedule}}'가 준비되었습니다.</p>
<table style="border-collapse:collapse">
<tr><th style="text-align:left;padding:2px 12px 2px 0">{{if .Manual}}요청 시각{{else}}예정 시각{{end}}</th><td>{{.When}}{{if .Manual}} (수동 실행){{end}}</td></tr>
{{range .Params}}<tr><th style="text-align:left;padding:2px 12px 2px 0">{{.Label}}</th><td>{{.Value}}</td></tr>
{{end}}<tr><th style="text-align:left;padding:2px 12px 2px 0">파일</th><td>{{.FileName}}</td></tr>
<tr><th style="text-align:left;padding:2px 12px 2px 0">행 수</th><td>{{.Rows}}</td></tr>
<tr><th style="text-align:left;padding:2px 12px 2px 0">크기</th><td>{{.Size}}</td></tr>
<tr><th style="text-align:left;padding:2px 12px 2px 0">SHA-256</th><td style="font-family:monospace">{{.SHA256}}</td></tr>
</table>
<p><a href="{{.Link}}" style="display:inline-block;padding:8px 16px;background:#1a56db;color:#fff;text-decoration:none;border-radius:4px">내려받기</a>
<br><span style="color:#666">{{.Expires}}까지 유효합니다.</span></p>
{{if .Attached}}<p>파일을 첨부했습니다.</p>
{{end}}{{if .Personal}}<p style="color:#b91c1c">이 파일에는 개인정보가 들어 있습니다. 목적({{.Purpose}}) 외에 쓰거나 전달하지 마십시오. 내려받기는 감사 기록에 남습니다.</p>
{{end}}<p style="color:#666">이 메일은 exportd가 자동으로 보냈습니다.</p>
</body></html>
`))
