package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/jobs"
)

// jobFlags are serve's background job settings.
type jobFlags struct {
	Jobs           bool          `help:"Serve background export jobs (POST /v1/datasets/{name}/jobs)." env:"EXPORTD_JOBS"`
	JobsQueue      string        `help:"Job queue: sqlite:PATH (one node; default: exportd-jobs.db beside the datasets file) or postgres://… (shared by every node)." placeholder:"URL" env:"EXPORTD_JOBS_QUEUE"`
	JobsStorage    string        `help:"Result storage: file:///DIR or s3://BUCKET?endpoint=…&region=… (credentials from the usual AWS variables)." default:"file://./exportd-results" placeholder:"URL" env:"EXPORTD_JOBS_STORAGE"`
	JobsTTL        time.Duration `help:"How long a result can be downloaded; then it is deleted." default:"24h"`
	JobsWorkers    int           `help:"Jobs this node runs at once; -1: none (the node only accepts and serves jobs)." default:"2"`
	JobsTimeout    time.Duration `help:"Longest attempt of one job." default:"2h"`
	JobsNodeID     string        `name:"jobs-node-id" help:"This node's id in the queue: the same across restarts, different from every other live node's (default: host name/--addr)." placeholder:"ID" env:"EXPORTD_JOBS_NODE_ID"`
	JobsNodeTO     time.Duration `name:"jobs-node-timeout" help:"A node without heartbeat this long is taken for dead and its jobs run again on the others (a restarted node's run again at once)." default:"30s"`
	JobsRescue     time.Duration `name:"jobs-rescue-after" help:"Last resort: a job running this long runs again whatever its node says; must exceed --jobs-timeout (0: timeout + 5m)." default:"0"`
	JobsPoll       time.Duration `help:"How often to look for new jobs (and, on SQLite, cancellations)." default:"1s"`
	JobsMaxAttempt int           `name:"jobs-max-attempts" help:"Attempts of a failing job (with backoff)." default:"3"`
	JobsBackoff    time.Duration `name:"jobs-retry-backoff" help:"Wait before a failed job's first retry; the n-th retry waits n⁴ times as long (1s: 1s, 16s, 81s…)." default:"1s"`
	JobsMaxJobs    int           `name:"jobs-max-per-user" help:"Most jobs one principal has queued or running (beyond: 429 job_quota); 0 = no bound." default:"20"`
	JobsMaxBytes   int64         `name:"jobs-max-bytes-per-user" help:"Most bytes of results one principal keeps (succeeded, not expired); 0 = no bound." default:"10737418240"`
	JobsRoleQuota  []string      `name:"jobs-role-quota" help:"Quota of a role, replacing the per-user ones for its principals: ROLE=JOBS:BYTES (0 = no bound); repeatable." placeholder:"ROLE=JOBS:BYTES"`

	// Delivery of the schedules' runs (jobs/deliver.go).
	PublicURL         string `help:"The server's address as users and mail recipients reach it (https://exportd.example.com): the download links of scheduled deliveries start with it. Required when a schedule has recipients." placeholder:"URL"`
	SMTPAddr          string `name:"smtp-addr" help:"Mail server of scheduled deliveries (HOST:PORT)." placeholder:"HOST:PORT"`
	SMTPTLS           string `name:"smtp-tls" help:"starttls (the server must offer it), tls (implicit TLS, port 465) or none (plain text: a local relay)." enum:"starttls,tls,none" default:"starttls"`
	SMTPUser          string `name:"smtp-user" help:"SMTP login (PLAIN, over TLS)." placeholder:"USER"`
	SMTPPassword      string `name:"smtp-password" help:"SMTP password (or --smtp-password-file)." placeholder:"PASSWORD"`
	SMTPPasswordFile  string `name:"smtp-password-file" help:"File holding the SMTP password." type:"path" placeholder:"FILE"`
	SMTPFrom          string `name:"smtp-from" help:"Sender of the mails: an address, or \"Name <address>\"." placeholder:"ADDRESS"`
	MailAttachMax     int64  `name:"mail-attach-max" help:"Largest file attached to a mail (schedules with attach: true; never a personal dataset's); 0 never attaches." default:"10485760"`
	WebhookSecret     string `help:"Secret that signs webhook requests (HMAC-SHA256 in X-Exportd-Signature; at least 16 bytes; not the link secret: a receiver must not be able to sign download links)." placeholder:"SECRET"`
	WebhookSecretFile string `help:"File holding the webhook secret." type:"path" placeholder:"FILE"`
}

// delivery returns the delivery settings of the flags, and refuses to
// start without the ones cfg's schedules need (fail closed: a schedule
// whose mail or webhook could never be delivered is a mistake now, not
// a failed delivery next month).
//
// The webhook secret must be none of the link keys: it is checked by
// signing a probe with it and verifying the signature with the keys.
func (f *jobFlags) delivery(cfg *exportd.Config, links *auth.Keys) (jobs.Delivery, error) {
	d := jobs.Delivery{PublicURL: f.PublicURL, AttachMax: f.MailAttachMax,
		SMTP: jobs.SMTP{Addr: f.SMTPAddr, TLS: f.SMTPTLS, Username: f.SMTPUser, Password: f.SMTPPassword, From: f.SMTPFrom}}
	if d.AttachMax == 0 {
		d.AttachMax = -1
	}
	read := func(file, flag string) (string, error) {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--%s: %w", flag, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	var err error
	if f.SMTPPasswordFile != "" {
		if d.SMTP.Password, err = read(f.SMTPPasswordFile, "smtp-password-file"); err != nil {
			return d, err
		}
	}
	secret := f.WebhookSecret
	if f.WebhookSecretFile != "" {
		if secret, err = read(f.WebhookSecretFile, "webhook-secret-file"); err != nil {
			return d, err
		}
	}
	if secret != "" {
		d.WebhookSecret = []byte(secret)
	}
	var mail, hooks []string
	for _, ds := range cfg.Datasets {
		for _, s := range ds.Schedules {
			if len(s.Email) > 0 {
				mail = append(mail, s.ID())
			}
			if len(s.Webhooks) > 0 {
				hooks = append(hooks, s.ID())
			}
		}
	}
	var errs []error
	if len(mail)+len(hooks) > 0 && d.PublicURL == "" {
		errs = append(errs, fmt.Errorf("the schedules %s deliver a download link: give --public-url (EXPORTD_PUBLIC_URL)", strings.Join(append(mail, hooks...), ", ")))
	}
	if len(mail) > 0 && (d.SMTP.Addr == "" || d.SMTP.From == "") {
		errs = append(errs, fmt.Errorf("the schedules %s send mail: give --smtp-addr and --smtp-from (EXPORTD_SMTP_ADDR, EXPORTD_SMTP_FROM)", strings.Join(mail, ", ")))
	}
	if len(hooks) > 0 && len(d.WebhookSecret) < 16 {
		errs = append(errs, fmt.Errorf("the schedules %s call webhooks: give --webhook-secret or --webhook-secret-file of at least 16 bytes (EXPORTD_WEBHOOK_SECRET)", strings.Join(hooks, ", ")))
	}
	probe := []byte("exportd-webhook-secret-probe")
	if wk, err := auth.NewKeys([]byte(secret)); err == nil && links.Verify(probe, wk.Sign(probe)) {
		errs = append(errs, errors.New("--webhook-secret must differ from the link secret: a webhook receiver must not be able to sign download links"))
	}
	return d, errors.Join(errs...)
}

// config returns the job manager's settings, or nil without --jobs.
func (f *jobFlags) config(addr string) (*jobs.Config, error) {
	if !f.Jobs {
		return nil, nil
	}
	roleQuotas := map[string]jobs.Quota{}
	for _, rq := range f.JobsRoleQuota {
		role, v, ok := strings.Cut(rq, "=")
		js, bs, ok2 := strings.Cut(v, ":")
		n, err1 := strconv.Atoi(js)
		b, err2 := strconv.ParseInt(bs, 10, 64)
		if !ok || !ok2 || role == "" || err1 != nil || err2 != nil {
			return nil, usageError{fmt.Errorf("--jobs-role-quota %q: want ROLE=JOBS:BYTES", rq)}
		}
		roleQuotas[role] = jobs.Quota{Jobs: n, Bytes: b}
	}
	return &jobs.Config{
		Workers: f.JobsWorkers, ResultTTL: f.JobsTTL, JobTimeout: f.JobsTimeout, RescueAfter: f.JobsRescue,
		NodeID: cmp.Or(f.JobsNodeID, jobs.DefaultNodeID(addr)), NodeTimeout: f.JobsNodeTO,
		MaxAttempts: f.JobsMaxAttempt, RetryBackoff: f.JobsBackoff, PollInterval: f.JobsPoll,
		Quota: jobs.Quota{Jobs: f.JobsMaxJobs, Bytes: f.JobsMaxBytes}, RoleQuotas: roleQuotas,
	}, nil
}

// runBackground submits the export to a running server as a job, shows
// its progress from the job's events, then downloads the result.
func (c *exportCmd) runBackground(ctx context.Context) error {
	if c.Server == "" {
		return usageError{errors.New("--background needs --server URL (a running exportd serve --jobs)")}
	}
	if c.Dataset == "" || c.DB != "" {
		return usageError{errors.New("--background needs --dataset (and --config or --server): a server runs datasets, not ad-hoc queries")}
	}
	f, err := c.format()
	if err != nil {
		return usageError{err}
	}
	params := map[string][]string{}
	for _, kv := range c.Param {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError{fmt.Errorf("--param %q: want NAME=VALUE", kv)}
		}
		params[k] = append(params[k], v)
	}
	// A personal dataset's purpose and columns go with the job: the server
	// checks them, masks by the token's roles and records the export.
	if len(c.Roles) > 0 {
		return usageError{errors.New("--roles: with --background the server takes the roles of your token (EXPORTD_TOKEN)")}
	}
	if c.Purpose != "" {
		params["purpose"] = []string{c.Purpose}
	}
	if c.PurposeText != "" {
		params["purpose_text"] = []string{c.PurposeText}
	}
	if len(c.Columns) > 0 {
		params["columns"] = c.Columns
	}
	if len(c.Sheet) > 0 {
		params["sheet"] = c.Sheet
	}
	base := strings.TrimSuffix(c.Server, "/")
	body, _ := json.Marshal(map[string]any{"format": f, "params": params})
	var j jobs.Job
	if _, err := apiCall(ctx, "POST", base+"/v1/datasets/"+url.PathEscape(c.Dataset)+"/jobs", body, http.StatusAccepted, &j); err != nil {
		return err
	}
	var bar *progress
	if !c.Quiet && term.IsTerminal(int(os.Stderr.Fd())) {
		bar = newProgress(os.Stderr)
	} else if !c.Quiet {
		fmt.Fprintf(os.Stderr, "job %s: %s\n", j.ID, j.State)
	}
	show := func(j *jobs.Job) {
		if bar == nil {
			return
		}
		total := int64(-1)
		if j.TotalRows != nil {
			total = *j.TotalRows
		}
		bar.update(exportd.Progress{Rows: j.Rows, Bytes: j.Bytes, Total: total})
	}
	final, err := c.follow(ctx, base, &j, show)
	if bar != nil {
		bar.finish(exportd.Progress{Rows: final.Rows, Bytes: final.Bytes, Total: -1}, err == nil && final.State == jobs.StateSucceeded)
	}
	if err != nil {
		return err
	}
	if final.State != jobs.StateSucceeded {
		return fmt.Errorf("job %s %s: %s", final.ID, final.State, final.Error)
	}
	if c.Output == "" {
		c.Output = final.FileName
	}
	out, commit, abort, err := openOutput(c.Output, f)
	if err != nil {
		return err
	}
	n, err := c.download(ctx, base+final.DownloadURL, out)
	if err == nil && n != final.Size {
		err = fmt.Errorf("download: %d bytes, the result has %d", n, final.Size)
	}
	if err != nil {
		abort()
		return err
	}
	if err := commit(); err != nil {
		return err
	}
	if !c.Quiet && c.Output != "-" {
		fmt.Fprintf(os.Stderr, "wrote %s: %d rows, %s (job %s)\n", c.Output, final.Rows, humanBytes(final.Size), final.ID)
	}
	return nil
}

// follow reads the job's events until its final state; if the stream
// breaks (a node restarting), it reconnects.
func (c *exportCmd) follow(ctx context.Context, base string, j *jobs.Job, show func(*jobs.Job)) (*jobs.Job, error) {
	for attempt := 0; ; attempt++ {
		err := c.events(ctx, base+"/v1/jobs/"+url.PathEscape(j.ID)+"/events", func(nj *jobs.Job) {
			*j = *nj
			show(j)
		})
		if j.Final() {
			return j, nil
		}
		if ctx.Err() != nil {
			return j, ctx.Err()
		}
		if attempt >= 30 {
			return j, fmt.Errorf("job %s: events: %w", j.ID, err)
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (c *exportCmd) events(ctx context.Context, u string, each func(*jobs.Job)) error {
	req, err := apiRequest(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return apiError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var j jobs.Job
			if err := json.Unmarshal([]byte(data), &j); err == nil {
				each(&j)
			}
		}
	}
	return sc.Err()
}

func (c *exportCmd) download(ctx context.Context, u string, w io.Writer) (int64, error) {
	req, err := apiRequest(ctx, "GET", u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, apiError(resp)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("download: %w", err)
	}
	return n, nil
}

// apiRequest makes a request to a server, with EXPORTD_TOKEN as its
// bearer token when set.
func apiRequest(ctx context.Context, method, u string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, usageError{fmt.Errorf("--server: %w", err)}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := os.Getenv("EXPORTD_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req, nil
}

// apiError reads the server's JSON error.
func apiError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error struct{ Code, Message string }
	}
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		return fmt.Errorf("server: %s (%d %s)", e.Error.Message, resp.StatusCode, e.Error.Code)
	}
	return fmt.Errorf("server: %s", resp.Status)
}

// byteSecrets returns secrets as byte strings.
func byteSecrets(secrets []string) [][]byte {
	out := make([][]byte, len(secrets))
	for i, s := range secrets {
		out[i] = []byte(s)
	}
	return out
}
