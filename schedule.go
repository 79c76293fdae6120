package exportd

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is a delivery a dataset declares under schedules: the same
// export, run as a background job at the times of a cron expression, for
// an owner the file names, and delivered to its recipients (an e-mail
// carrying the download link, a signed webhook).
//
//	datasets:
//	  monthly_sales:
//	    schedules:
//	      - name: monthly                 # [a-z0-9_-]+, unique in the dataset
//	        cron: "30 0 1 * *"            # minute hour day month weekday; or @daily, @weekly, @monthly
//	        timezone: Asia/Seoul          # default: the file's timezone
//	        format: xlsx                  # default xlsx
//	        params:                       # values, or dates relative to the run (see ResolveDate)
//	          from: start of last month
//	          to: end of last month
//	        owner: {name: kim, roles: [manager], attrs: {branch: 서울}}
//	        purpose: {category: audit, text: 월간 매출 보고 (정기)}   # a personal dataset's standing purpose
//	        email: [kim@example.com]
//	        webhook: [https://hooks.example.com/exportd]
//	        attach: true                  # attach the file to the mail (never for a personal dataset)
//	        keep: 168h                    # the file and its link last a week (default: the server's --jobs-ttl)
//
// The owner's roles and attributes decide what the file holds, as they
// would for a download by that principal ([Schedule.Principal]).
type Schedule struct {
	Dataset  string // the dataset's name
	Name     string
	Cron     string // the cron expression as written
	Timezone string // the zone of Cron and of the relative dates
	Location *time.Location
	Format   Format
	// Params are the values as written: a date or datetime parameter may
	// hold an expression relative to the run (see [ResolveDate]).
	Params  map[string][]string
	Columns []string // the choice of columns; nil means all the owner may see
	Owner   ScheduleOwner
	// Purpose and PurposeText are the standing purpose of a personal
	// dataset's schedule, recorded with each run.
	Purpose, PurposeText string
	Email                []string // e-mail addresses
	Webhooks             []string // http(s) URLs
	// Attach attaches the file to the e-mail when the dataset is not
	// personal and the file is under the server's attachment limit.
	Attach bool
	// Keep is how long the runs' files (and the links to them) last, when
	// longer than the server's result TTL (at most a week longer); 0
	// means the server's.
	Keep time.Duration

	// Line is the line of the schedule in its file (0 when unknown).
	Line int
	cron cron.Schedule
}

// ScheduleOwner is the principal a schedule's runs are for.
type ScheduleOwner struct {
	Name  string            `json:"name"`
	Roles []string          `json:"roles,omitempty"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

// SchedulePrincipalPrefix prefixes the principal of a schedule's runs.
const SchedulePrincipalPrefix = "schedule:"

// Principal returns the principal the runs are recorded for and owned by:
// "schedule:" and the owner's name, which no person signing in can have.
func (s *Schedule) Principal() string { return SchedulePrincipalPrefix + s.Owner.Name }

// ID returns the schedule's identity: dataset/name.
func (s *Schedule) ID() string { return s.Dataset + "/" + s.Name }

// ParseCron parses a cron expression (five fields: minute, hour, day of
// month, month, day of week; or @yearly, @monthly, @weekly, @daily,
// @hourly) in the zone loc. @every is refused: it has no fixed ticks, so
// a missed run could not be told.
func ParseCron(spec string, loc *time.Location) (cron.Schedule, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, errors.New("empty cron expression")
	}
	if strings.HasPrefix(spec, "@every") {
		return nil, errors.New("@every has no fixed times: write a cron expression (e.g. \"0 * * * *\" for hourly)")
	}
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, errors.New("give the zone in timezone:, not in the cron expression")
	}
	if loc == nil {
		loc = time.UTC
	}
	s, err := cron.ParseStandard("CRON_TZ=" + loc.String() + " " + spec)
	if err != nil {
		return nil, fmt.Errorf("cron expression %q: %w", spec, err)
	}
	return s, nil
}

// Compile parses Cron in Location, for Next and Prev; the loader calls
// it.
func (s *Schedule) Compile() error {
	if s.Location == nil {
		s.Location = time.UTC
	}
	c, err := ParseCron(s.Cron, s.Location)
	if err != nil {
		return err
	}
	s.cron = c
	return nil
}

// Next returns the first tick of the schedule after t, in the schedule's
// zone (zero if it never runs again, or was not compiled).
func (s *Schedule) Next(t time.Time) time.Time {
	if s.cron == nil {
		return time.Time{}
	}
	n := s.cron.Next(t)
	if n.IsZero() || s.Location == nil {
		return n
	}
	return n.In(s.Location)
}

// Prev returns the last tick of the schedule at or before t (zero if
// there is none in the 5 years before t).
func (s *Schedule) Prev(t time.Time) time.Time {
	if s.cron == nil {
		return time.Time{}
	}
	t = t.Truncate(time.Second)
	// Look back ever further until a tick is found, then walk forward to
	// the last one not after t.
	for _, back := range []time.Duration{2 * time.Minute, 2 * time.Hour, 50 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour, 5 * 366 * 24 * time.Hour} {
		n := s.cron.Next(t.Add(-back))
		if n.IsZero() || n.After(t) {
			continue
		}
		for {
			m := s.cron.Next(n)
			if m.IsZero() || m.After(t) {
				if s.Location != nil {
					n = n.In(s.Location)
				}
				return n
			}
			n = m
		}
	}
	return time.Time{}
}

// ResolveParams returns the schedule's parameters for a run at now: each
// date or datetime parameter's relative expression resolved in the
// schedule's zone (see [ResolveDate]), other values as written. Its
// errors are *[ParamError]s, joined.
func (s *Schedule) ResolveParams(d *Dataset, now time.Time) (url.Values, error) {
	loc := s.Location
	if loc == nil {
		loc = time.UTC
	}
	out := make(url.Values, len(s.Params))
	var errs []error
	for name, vals := range s.Params {
		prm, ok := d.Param(name)
		if !ok {
			errs = append(errs, &ParamError{Param: name, Reason: fmt.Sprintf("not a parameter of %s (%s)", d.Name, d.DeclaredParams())})
			continue
		}
		res := make([]string, len(vals))
		for i, v := range vals {
			res[i] = v
			if prm.Type != ParamDate && prm.Type != ParamDateTime {
				continue
			}
			r, ok, err := ResolveDate(v, now, loc, prm.Type == ParamDateTime)
			if err != nil {
				errs = append(errs, &ParamError{Param: name, Reason: err.Error()})
			}
			if ok {
				res[i] = r
			}
		}
		out[name] = res
	}
	return out, errors.Join(errs...)
}

// Relative dates. An expression is a day, optionally moved:
//
//	today | yesterday | tomorrow
//	start of (this|last|next) (week|month|quarter|year)
//	end of (this|last|next) (week|month|quarter|year)
//	… + N day(s)|week(s)|month(s)|year(s)   (or -)
//
// e.g. "start of last month", "end of last month", "today - 7 days",
// "start of this year". Weeks start on Monday. "now" is the run's time
// (datetime parameters only).
var relRE = regexp.MustCompile(`^(?:(today|yesterday|tomorrow|now)|(start|end) of (this|last|next) (week|month|quarter|year))(?:\s*([+-])\s*(\d{1,4})\s*(days?|weeks?|months?|years?))?$`)

// ResolveDate resolves a relative date expression at now in loc. It
// returns the value as a client would send it: YYYY-MM-DD, or for a
// datetime parameter YYYY-MM-DD HH:MM:SS (the start of the day, or
// 23:59:59 for an "end of" expression: an inclusive upper bound; for an
// exclusive one write "start of this month"). ok is false for text that
// is not an expression (a literal value, left as it is); err is set for
// text that looks like one but is not valid.
func ResolveDate(expr string, now time.Time, loc *time.Location, datetime bool) (value string, ok bool, err error) {
	e := strings.Join(strings.Fields(strings.ToLower(expr)), " ")
	m := relRE.FindStringSubmatch(e)
	if m == nil {
		for _, w := range []string{"today", "yesterday", "tomorrow", "now", "start of", "end of", " ago"} {
			if strings.Contains(e, w) {
				return "", false, fmt.Errorf("%q is not a relative date (want e.g. \"today\", \"start of last month\", \"end of last month\", \"today - 7 days\")", expr)
			}
		}
		return "", false, nil
	}
	if loc == nil {
		loc = time.UTC
	}
	now = now.In(loc)
	y, mo, d := now.Date()
	day := time.Date(y, mo, d, 0, 0, 0, 0, loc)
	end := false
	switch m[1] {
	case "now":
		if !datetime {
			return "", false, fmt.Errorf("%q: now is a date-time; a date parameter takes today", expr)
		}
		day = now.Truncate(time.Second)
	case "today":
	case "yesterday":
		day = day.AddDate(0, 0, -1)
	case "tomorrow":
		day = day.AddDate(0, 0, 1)
	default:
		end = m[2] == "end"
		shift := map[string]int{"this": 0, "last": -1, "next": 1}[m[3]]
		var start time.Time
		var length func(time.Time) time.Time
		switch m[4] {
		case "week":
			wd := (int(day.Weekday()) + 6) % 7 // Monday 0
			start = day.AddDate(0, 0, -wd+7*shift)
			length = func(t time.Time) time.Time { return t.AddDate(0, 0, 7) }
		case "month":
			start = time.Date(y, mo+time.Month(shift), 1, 0, 0, 0, 0, loc)
			length = func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
		case "quarter":
			q := (int(mo) - 1) / 3
			start = time.Date(y, time.Month(3*q+1+3*shift), 1, 0, 0, 0, 0, loc)
			length = func(t time.Time) time.Time { return t.AddDate(0, 3, 0) }
		case "year":
			start = time.Date(y+shift, 1, 1, 0, 0, 0, 0, loc)
			length = func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }
		}
		day = start
		if end {
			n := length(start)
			day = time.Date(n.Year(), n.Month(), n.Day()-1, 0, 0, 0, 0, loc)
		}
	}
	if m[5] != "" {
		n, _ := strconv.Atoi(m[6])
		if m[5] == "-" {
			n = -n
		}
		switch strings.TrimSuffix(m[7], "s") {
		case "day":
			day = day.AddDate(0, 0, n)
		case "week":
			day = day.AddDate(0, 0, 7*n)
		case "month":
			day = addMonthsClamped(day, n)
		case "year":
			day = addMonthsClamped(day, 12*n)
		}
	}
	switch {
	case !datetime:
		return day.Format(time.DateOnly), true, nil
	case m[1] == "now":
		return day.Format(time.DateTime), true, nil
	case end:
		return day.Format(time.DateOnly) + " 23:59:59", true, nil
	}
	return day.Format(time.DateOnly) + " 00:00:00", true, nil
}

// addMonthsClamped adds n months to t, keeping the day within the month
// (31 January + 1 month is 28 or 29 February, not 2 or 3 March).
func addMonthsClamped(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), 0, t.Location())
	last := first.AddDate(0, 1, -1).Day()
	return time.Date(first.Year(), first.Month(), min(d, last), t.Hour(), t.Minute(), t.Second(), 0, t.Location())
}

// ScheduleProblem is a mistake in a schedule, for the loader to report
// with the field's line: Field is relative to the schedule ("cron",
// "params.from", "email[0]").
type ScheduleProblem struct {
	Field, Msg string
}

var scheduleNameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)

// Validate checks s as a schedule of d in cfg at now: its name, cron
// expression, format, parameters (resolved for the next run and bound
// against the dataset's types, with the owner's pins), the owner (allowed
// by the dataset's roles), the purpose of a personal dataset, the
// recipients (at least one; addresses and URLs well-formed) and the
// attachment of a personal dataset's file (refused). Compile must have
// been called, or is called here.
func (s *Schedule) Validate(cfg *Config, d *Dataset, now time.Time) []ScheduleProblem {
	var out []ScheduleProblem
	add := func(field, format string, args ...any) {
		out = append(out, ScheduleProblem{field, fmt.Sprintf(format, args...)})
	}
	if !scheduleNameRE.MatchString(s.Name) {
		add("name", "invalid schedule name %q (want [a-z0-9_-]+)", s.Name)
	}
	cronOK := true
	if err := s.Compile(); err != nil {
		add("cron", "%v", err)
		cronOK = false
	}
	if s.Format == "" {
		s.Format = FormatXLSX
	}
	if s.Keep < 0 {
		add("keep", "must not be negative")
	}
	if _, err := ParseFormat(string(s.Format)); err != nil {
		add("format", "%v", err)
	}
	// The owner.
	ownerOK := true
	switch {
	case strings.TrimSpace(s.Owner.Name) == "":
		add("owner.name", "missing: the principal the file is made for (its roles and attributes decide what it holds)")
		ownerOK = false
	case !d.Allows(s.Owner.Roles):
		add("owner.roles", "the owner's roles (%s) may not export %s; it needs one of %s", strings.Join(s.Owner.Roles, ", "), d.Name, strings.Join(d.Roles, ", "))
		ownerOK = false
	}
	// The parameters, for the next run (or now, when the cron expression
	// is at fault), with the owner's pins.
	next := now
	if cronOK {
		next = s.Next(now)
		if next.IsZero() {
			add("cron", "never runs")
		}
	}
	if !next.IsZero() {
		next = next.In(s.Location)
		{
			raw, err := s.ResolveParams(d, next)
			for _, e := range flattenErrs(err) {
				var pe *ParamError
				if errors.As(e, &pe) {
					add("params."+pe.Param, "%s", pe.Reason)
				} else {
					add("params", "%v", e)
				}
			}
			if err == nil && ownerOK {
				pins, perr := d.PinsFor(s.Owner.Roles, s.Owner.Attrs)
				if perr == nil {
					perr = d.ApplyPins(raw, pins, s.Location)
				}
				if perr != nil {
					add("owner.attrs", "%v", perr)
				} else if _, berr := d.BindParams(raw, s.Location); berr != nil {
					for _, e := range flattenErrs(berr) {
						var pe *ParamError
						if errors.As(e, &pe) {
							add("params."+pe.Param, "for the run at %s: %s", next.Format("2006-01-02 15:04 MST"), pe.Reason)
						} else {
							add("params", "%v", e)
						}
					}
				}
			}
		}
	}
	// Columns.
	for i, c := range s.Columns {
		if len(d.Columns) == 0 {
			add("columns", "the dataset declares no columns to choose from")
			break
		}
		if !slices.ContainsFunc(d.Columns, func(col Column) bool { return col.Name == c }) {
			add(fmt.Sprintf("columns[%d]", i), "unknown column %q", c)
		}
	}
	// Personal data: a standing purpose, no attachment.
	if d.Personal {
		if err := cfg.Privacy.CheckPurpose(s.Purpose, s.PurposeText); err != nil {
			var pe *PurposeError
			field := "purpose"
			if errors.As(err, &pe) && pe.Field == "purpose_text" {
				field = "purpose.text"
			}
			add(field, "%s holds personal data: a schedule states its standing purpose: %v", d.Name, err)
		}
		if s.Attach {
			add("attach", "%s holds personal data: its file is never attached to a mail (the mail carries the expiring link)", d.Name)
		}
	}
	// Recipients.
	if len(s.Email) == 0 && len(s.Webhooks) == 0 {
		add("email", "no recipient: give e-mail addresses (email:) and/or webhook URLs (webhook:)")
	}
	for i, a := range s.Email {
		if err := CheckEmailAddress(a); err != nil {
			add(fmt.Sprintf("email[%d]", i), "%v", err)
		}
	}
	for i, u := range s.Webhooks {
		if err := CheckWebhookURL(u); err != nil {
			add(fmt.Sprintf("webhook[%d]", i), "%v", err)
		}
	}
	return out
}

// CheckEmailAddress checks that a is one bare e-mail address
// (kim@example.com, no display name, no list).
func CheckEmailAddress(a string) error {
	addr, err := mail.ParseAddress(a)
	if err != nil || addr.Address != a || addr.Name != "" || !strings.Contains(a, "@") {
		return fmt.Errorf("%q is not an e-mail address (want e.g. kim@example.com)", a)
	}
	return nil
}

// CheckWebhookURL checks that u is an absolute http or https URL without
// credentials.
func CheckWebhookURL(u string) error {
	pu, err := url.Parse(u)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL: %v", u, err)
	case pu.Scheme != "https" && pu.Scheme != "http":
		return fmt.Errorf("%q: want an http:// or https:// URL", u)
	case pu.Host == "":
		return fmt.Errorf("%q: no host", u)
	case pu.User != nil:
		return fmt.Errorf("%q: no credentials in the URL (the request is signed)", u)
	}
	return nil
}

// flattenErrs returns the errors err joins, or err itself (nil: none).
func flattenErrs(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
