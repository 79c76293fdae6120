package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/exportd/exportd/datasets"
	"github.com/exportd/exportd/jobs"
)

type scheduleCmd struct {
	List scheduleListCmd `cmd:"" help:"List the scheduled deliveries: of a running server (last and next run, state, link), or of a datasets file (next runs and their parameters)."`
	Run  scheduleRunCmd  `cmd:"" help:"Run a schedule now on a running server (exportd serve --jobs), for its owner and to its recipients."`
}

type scheduleListCmd struct {
	Server string `help:"The server to ask (with EXPORTD_TOKEN as the bearer token)." env:"EXPORTD_SERVER" placeholder:"URL"`
	Config string `help:"A datasets file: its schedules, their next runs and the parameters each would run with, without a server." type:"path" placeholder:"FILE"`
	Next   int    `help:"With --config: how many next runs to show." default:"3"`
	JSON   bool   `name:"json" help:"Print the server's JSON."`
}

func (c *scheduleListCmd) Run(ctx context.Context) error {
	switch {
	case c.Config != "" && c.Server != "":
		return usageError{errors.New("give --server or --config, not both")}
	case c.Config != "":
		return c.fromFile(os.Stdout, time.Now())
	case c.Server == "":
		return usageError{errors.New("give --server URL (a running exportd serve --jobs) or --config FILE")}
	}
	var out struct {
		Schedules []jobs.ScheduleStatus `json:"schedules"`
	}
	raw, err := apiCall(ctx, "GET", strings.TrimSuffix(c.Server, "/")+"/v1/schedules", nil, http.StatusOK, &out)
	if err != nil {
		return err
	}
	if c.JSON {
		_, err := os.Stdout.Write(raw)
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCHEDULE\tCRON\tZONE\tNEXT RUN\tLAST RUN\tSTATE\tROWS\tDELIVERIES\tLINK")
	for _, s := range out.Schedules {
		loc, err := time.LoadLocation(s.Timezone)
		if err != nil {
			loc = time.UTC
		}
		last, state, rows, deliveries, link := "-", "-", "-", "-", "-"
		if j := s.LastJob; j != nil {
			state, rows = j.State, fmt.Sprint(j.Rows)
			if j.Tick != nil {
				last = j.Tick.In(loc).Format("2006-01-02 15:04")
				if j.Manual {
					last += " (by hand)"
				}
			}
			if len(j.Deliveries) > 0 {
				ok := 0
				for _, d := range j.Deliveries {
					if d.OK {
						ok++
					}
				}
				deliveries = fmt.Sprintf("%d/%d", ok, len(j.Deliveries))
			}
			if j.DownloadURL != "" {
				link = strings.TrimSuffix(c.Server, "/") + j.DownloadURL
			}
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Dataset, s.Name, s.Cron, s.Timezone,
			s.NextRun.In(loc).Format("2006-01-02 15:04"), last, state, rows, deliveries, link)
	}
	return tw.Flush()
}

// fromFile lists the schedules of a datasets file, each with its next
// runs and the parameters the first of them resolves to.
func (c *scheduleListCmd) fromFile(w io.Writer, now time.Time) error {
	cfg, err := datasets.LoadConfig(c.Config)
	if err != nil {
		return usageError{err}
	}
	n := 0
	for _, d := range cfg.Datasets {
		for _, s := range d.Schedules {
			n++
			fmt.Fprintf(w, "%s  cron %q  %s  owner %s  %s\n", s.ID(), s.Cron, s.Timezone, s.Principal(), s.Format)
			t := now
			for i := range max(c.Next, 1) {
				t = s.Next(t)
				if t.IsZero() {
					break
				}
				line := "  next " + t.Format("2006-01-02 15:04 MST")
				if i == 0 {
					params, err := s.ResolveParams(d, t)
					if err == nil { // and the owner's pins, as the run applies them
						var pins map[string][]string
						if pins, err = d.PinsFor(s.Owner.Roles, s.Owner.Attrs); err == nil {
							err = d.ApplyPins(params, pins, s.Location)
						}
					}
					if err != nil {
						line += "  (parameters: " + oneLine(err.Error()) + ")"
					} else {
						keys := make([]string, 0, len(params))
						for k := range params {
							keys = append(keys, k)
						}
						sort.Strings(keys)
						for _, k := range keys {
							line += fmt.Sprintf("  %s=%s", k, strings.Join(params[k], ","))
						}
					}
				}
				fmt.Fprintln(w, line)
			}
			var to []string
			to = append(to, s.Email...)
			for _, h := range s.Webhooks {
				if u, err := url.Parse(h); err == nil {
					to = append(to, u.Scheme+"://"+u.Host)
				}
			}
			fmt.Fprintf(w, "  to %s\n", strings.Join(to, ", "))
		}
	}
	if n == 0 {
		fmt.Fprintln(w, "no schedules")
	}
	return nil
}

type scheduleRunCmd struct {
	Schedule string    `arg:"" help:"DATASET/NAME of the schedule."`
	Server   string    `help:"The server (with EXPORTD_TOKEN as the bearer token)." default:"http://127.0.0.1:8080" env:"EXPORTD_SERVER" placeholder:"URL"`
	At       time.Time `help:"Run as the tick at this RFC 3339 time would (its relative dates resolved then: deliver a past period again); default now." placeholder:"TIME"`
	Wait     bool      `help:"Wait for the run to end and print its result and deliveries."`
}

func (c *scheduleRunCmd) Run(ctx context.Context) error {
	ds, name, ok := strings.Cut(c.Schedule, "/")
	if !ok || ds == "" || name == "" {
		return usageError{fmt.Errorf("schedule %q: want DATASET/NAME", c.Schedule)}
	}
	base := strings.TrimSuffix(c.Server, "/")
	var body []byte
	if !c.At.IsZero() {
		body, _ = json.Marshal(map[string]any{"at": c.At})
	}
	var j jobs.Job
	path := "/v1/schedules/" + url.PathEscape(ds) + "/" + url.PathEscape(name)
	if _, err := apiCall(ctx, "POST", base+path+"/run", body, http.StatusAccepted, &j); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "job %s: %s (%s)\n", j.ID, j.State, paramText(j.Params))
	if !c.Wait {
		return nil
	}
	for !j.Final() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		var st jobs.ScheduleStatus
		if _, err := apiCall(ctx, "GET", base+path, nil, http.StatusOK, &st); err != nil {
			return err
		}
		if st.LastJob != nil && st.LastJob.ID == j.ID {
			j = *st.LastJob
		}
	}
	fmt.Printf("job %s %s: %d rows, %d bytes\n", j.ID, j.State, j.Rows, j.Size)
	if j.DownloadURL != "" {
		fmt.Printf("link %s%s\n", base, j.DownloadURL)
	}
	failed := 0
	for _, d := range j.Deliveries {
		state := "delivered"
		if !d.OK {
			state, failed = "FAILED: "+d.Error, failed+1
		}
		fmt.Printf("%s %s: %s (%d tries)\n", d.Kind, d.To, state, d.Attempts)
	}
	switch {
	case j.State != jobs.StateSucceeded:
		return fmt.Errorf("job %s %s: %s", j.ID, j.State, j.Error)
	case failed > 0:
		return fmt.Errorf("job %s: %d of %d deliveries failed", j.ID, failed, len(j.Deliveries))
	}
	return nil
}

func paramText(p map[string][]string) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%s", k, strings.Join(p[k], ","))
	}
	return b.String()
}

// apiCall sends a request to a server (EXPORTD_TOKEN as its bearer token)
// and decodes its JSON answer into v; it returns the answer's bytes.
func apiCall(ctx context.Context, method, u string, body []byte, want int, v any) ([]byte, error) {
	req, err := apiRequest(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return nil, apiError(resp)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return b, json.Unmarshal(b, v)
}
