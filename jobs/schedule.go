package jobs

// Scheduled deliveries: the schedules of the datasets file run as
// ordinary export jobs.
//
// Each schedule is a River periodic job, which only the elected leader
// inserts: one job per tick for all the nodes. The job's arguments name
// the schedule and its tick (the cron time it stands for), and are unique
// in every state, finished ones included, so that an insert of the same
// tick twice (a new leader, a catch-up racing a tick) is skipped. The
// worker then claims the tick in the queue database's schedule table
// (runtable.go) before it runs: a tick whose job differs (the datasets
// file changed between two inserts) is not run a second time.
//
// River's periodic jobs keep no state: ticks missed while every node was
// down are not inserted when one comes back. Start compares each
// schedule's last claimed tick with its cron's last tick before now, and
// inserts one job for that tick if it has not run: one catch-up however
// many ticks were missed. The retention sweep, which the leader runs
// every few minutes, does the same for the ticks more than a minute old
// (a tick passed over while the leadership moved between nodes).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/plan"
)

// ErrUnknownSchedule is returned (wrapped) for a schedule the datasets
// file does not declare.
var ErrUnknownSchedule = errors.New("unknown schedule")

// periodicPrefix prefixes the River periodic job id of a schedule.
const periodicPrefix = "exportd_schedule:"

// schedulesOf returns every schedule of cfg, in the file's order.
func schedulesOf(cfg *exportd.Config) []*exportd.Schedule {
	var out []*exportd.Schedule
	for _, d := range cfg.Datasets {
		out = append(out, d.Schedules...)
	}
	return out
}

// schedule returns the schedule id (dataset/name) of the datasets now.
func (m *Manager) schedule(id string) (*exportd.Schedule, *exportd.Dataset, error) {
	cfg := m.datasets.Load().cfg
	for _, d := range cfg.Datasets {
		for _, s := range d.Schedules {
			if s.ID() == id {
				return s, d, nil
			}
		}
	}
	return nil, nil, fmt.Errorf("%w %q", ErrUnknownSchedule, id)
}

// periodicJobs returns the River periodic jobs of cfg's schedules. Each
// constructor looks its schedule up again when it fires, so that a
// reloaded file's parameters, owner and format apply.
func (m *Manager) periodicJobs(cfg *exportd.Config) []*river.PeriodicJob {
	var out []*river.PeriodicJob
	for _, s := range schedulesOf(cfg) {
		id := s.ID()
		out = append(out, river.NewPeriodicJob(s, func() (river.JobArgs, *river.InsertOpts) {
			cur, _, err := m.schedule(id)
			if err != nil {
				return nil, nil // removed by a reload under way
			}
			// River fires a tick up to 100 ms early: the tick is the last
			// cron time not after a second from now.
			tick := cur.Prev(time.Now().Add(time.Second))
			if tick.IsZero() {
				return nil, nil
			}
			args, opts, err := m.scheduledArgs(cur, tick, false)
			if err != nil {
				m.log.Error("scheduled job not inserted", "schedule", id, "tick", tick.Format(time.RFC3339), "error", err.Error())
				return nil, nil
			}
			return args, opts
		}, &river.PeriodicJobOpts{ID: periodicID(id)}))
	}
	return out
}

// periodicID returns the River periodic job id of schedule id (River
// takes fewer than 128 characters).
func periodicID(id string) string {
	if len(periodicPrefix+id) < 100 {
		return periodicPrefix + id
	}
	h := sha256.Sum256([]byte(id))
	return periodicPrefix + hex.EncodeToString(h[:16])
}

// scheduleTag is the River tag of a schedule's jobs.
func scheduleTag(id string) string {
	h := sha256.Sum256([]byte("exportd-schedule\n" + id))
	return "s_" + hex.EncodeToString(h[:12])
}

// scheduledArgs returns the job of schedule s for tick: its parameters
// resolved at the tick in the schedule's zone, for its owner. A manual run
// ("run now") joins a run of the same second in flight; a scheduled
// tick's job is unique in every state.
func (m *Manager) scheduledArgs(s *exportd.Schedule, tick time.Time, manual bool) (exportArgs, *river.InsertOpts, error) {
	cfg := m.datasets.Load().cfg
	d, err := cfg.Lookup(s.Dataset)
	if err != nil {
		return exportArgs{}, nil, err
	}
	uid, err := newUID()
	if err != nil {
		return exportArgs{}, nil, err
	}
	// A parameter that does not resolve is left as written: the worker's
	// plan refuses it, and the job shows why.
	params, _ := s.ResolveParams(d, tick)
	// The owner's pins, as the worker's plan applies them.
	if pins, err := d.PinsFor(s.Owner.Roles, s.Owner.Attrs); err == nil {
		_ = d.ApplyPins(params, pins, s.Location)
	}
	bound := ""
	if b, err := d.BindParams(params, s.Location); err == nil {
		if key, err := json.Marshal(b); err == nil {
			bound = string(key)
		}
	}
	t := tick.UTC()
	args := exportArgs{UID: uid, Owner: s.Principal(), Roles: slices.Clone(s.Owner.Roles), Attrs: s.Owner.Attrs,
		Dataset: d.Name, Format: string(s.Format), Params: params, Bound: bound, Columns: s.Columns,
		Purpose: s.Purpose, PurposeText: s.PurposeText, Schedule: s.ID(), Tick: &t, Manual: manual, Keep: s.Keep}
	states := []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
		rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled}
	if !manual {
		// A tick runs once, whatever became of its job.
		states = append(states, rivertype.JobStateCompleted, rivertype.JobStateCancelled, rivertype.JobStateDiscarded)
	}
	return args, &river.InsertOpts{
		Queue:      queueName,
		Tags:       []string{ownerTag(args.Owner), scheduleTag(args.Schedule)},
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: states},
	}, nil
}

// RunSchedule runs schedule name of dataset now, as its tick at at would
// run (zero: now): the parameters resolved at that time (at 00:30 on the
// 1st, "last month" is the month before), for its owner, delivered to its
// recipients. A manual run does not count as a tick. It returns the job,
// or the one already running for the same time (joined).
func (m *Manager) RunSchedule(ctx context.Context, dataset, name string, at time.Time) (job *Job, joined bool, err error) {
	s, _, err := m.schedule(dataset + "/" + name)
	if err != nil {
		return nil, false, err
	}
	if at.IsZero() {
		at = time.Now()
	}
	args, opts, err := m.scheduledArgs(s, at.Truncate(time.Second), true)
	if err != nil {
		return nil, false, err
	}
	res, err := m.client.Insert(ctx, args, opts)
	if err != nil {
		return nil, false, fmt.Errorf("jobs: run schedule %s: %w", s.ID(), err)
	}
	j, err := m.toJob(res.Job)
	if err != nil {
		return nil, false, err
	}
	return j, res.UniqueSkippedAsDuplicate, nil
}

// catchUp inserts, for each schedule whose last tick before now has not
// run (every node was down then), one job for that tick. A schedule never
// seen before has its last tick recorded without a run: a new schedule
// starts with its next tick.
func (m *Manager) catchUp(ctx context.Context, now time.Time) error {
	var errs []error
	for _, s := range schedulesOf(m.datasets.Load().cfg) {
		prev := s.Prev(now)
		if prev.IsZero() {
			continue
		}
		last, ok, err := m.cfg.Queue.runs.last(ctx, s.ID())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			errs = append(errs, m.cfg.Queue.runs.init(ctx, s.ID(), prev.UnixMicro()))
			continue
		}
		if last >= prev.UnixMicro() {
			continue
		}
		args, opts, err := m.scheduledArgs(s, prev, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res, err := m.client.Insert(ctx, args, opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule %s: catch up: %w", s.ID(), err))
			continue
		}
		if !res.UniqueSkippedAsDuplicate {
			m.log.Warn("a schedule's last tick has not run (no node ran then, or the leadership moved): running it once now", "schedule", s.ID(),
				"tick", prev.Format(time.RFC3339), "last", time.UnixMicro(last).In(s.Location).Format(time.RFC3339), "job", res.Job.ID)
		}
	}
	return errors.Join(errs...)
}

// reloadSchedules replaces the periodic jobs with those of cfg.
func (m *Manager) reloadSchedules(cfg *exportd.Config) {
	b := m.client.PeriodicJobs()
	if b == nil {
		return
	}
	m.periodicMu.Lock()
	defer m.periodicMu.Unlock()
	b.RemoveManyByID(m.periodicIDs)
	if _, err := b.AddManySafely(m.periodicJobs(cfg)); err != nil {
		m.log.Error("schedules not reloaded: they do not run until the next reload", "error", err.Error())
		m.periodicIDs = nil
		return
	}
	m.periodicIDs = periodicIDs(cfg)
}

func periodicIDs(cfg *exportd.Config) []string {
	var ids []string
	for _, s := range schedulesOf(cfg) {
		ids = append(ids, periodicID(s.ID()))
	}
	return ids
}

// ScheduleStatus is a schedule as the API shows it.
type ScheduleStatus struct {
	Dataset  string `json:"dataset"`
	Title    string `json:"title,omitempty"` // the dataset's
	Name     string `json:"name"`
	Cron     string `json:"cron"`
	Timezone string `json:"timezone"`
	Format   string `json:"format"`
	// Owner is the principal the runs are for (schedule:NAME); Roles its
	// roles.
	Owner    string   `json:"owner"`
	Roles    []string `json:"roles,omitempty"`
	Personal bool     `json:"personal,omitempty"`
	Purpose  string   `json:"purpose,omitempty"`
	// Params are the parameters as written (relative dates unresolved).
	Params map[string][]string `json:"params,omitempty"`
	Email  []string            `json:"email,omitempty"`
	// Webhooks are the hosts of the webhook URLs (their paths and queries
	// may hold tokens).
	Webhooks []string  `json:"webhooks,omitempty"`
	NextRun  time.Time `json:"next_run"`
	// LastTick is the last tick run (or passed over when the schedule was
	// first seen); LastJob is the schedule's latest job, a tick's or a
	// manual run's.
	LastTick *time.Time `json:"last_tick,omitempty"`
	LastJob  *Job       `json:"last_job,omitempty"`
	// MayRun says whether the principal asking may run the schedule now
	// and download its files (set by the server).
	MayRun bool `json:"may_run"`
}

// Schedules returns the schedules of the datasets now, with their next
// run and their last job, for which the function may (nil: all).
func (m *Manager) Schedules(ctx context.Context, may func(*exportd.Dataset) bool) ([]ScheduleStatus, error) {
	cfg := m.datasets.Load().cfg
	now := time.Now()
	out := []ScheduleStatus{}
	for _, d := range cfg.Datasets {
		if may != nil && !may(d) {
			continue
		}
		for _, s := range d.Schedules {
			st := ScheduleStatus{Dataset: d.Name, Title: d.Title, Name: s.Name, Cron: s.Cron, Timezone: s.Timezone,
				Format: string(s.Format), Owner: s.Principal(), Roles: s.Owner.Roles, Personal: d.Personal,
				Purpose: s.Purpose, Params: s.Params, Email: s.Email, NextRun: s.Next(now)}
			for _, w := range s.Webhooks {
				if u, err := url.Parse(w); err == nil {
					st.Webhooks = append(st.Webhooks, u.Scheme+"://"+u.Host)
				}
			}
			last, ok, err := m.cfg.Queue.runs.last(ctx, s.ID())
			if err != nil {
				return nil, err
			}
			if ok {
				t := time.UnixMicro(last).In(s.Location)
				st.LastTick = &t
			}
			res, err := m.client.JobList(ctx, river.NewJobListParams().Kinds(exportKind).TagsAll(scheduleTag(s.ID())).
				States(rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
					rivertype.JobStateRetryable, rivertype.JobStateScheduled, rivertype.JobStateCompleted,
					rivertype.JobStateCancelled, rivertype.JobStateDiscarded).
				OrderBy(river.JobListOrderByID, river.SortOrderDesc).First(1))
			if err != nil {
				return nil, fmt.Errorf("jobs: schedule %s: %w", s.ID(), err)
			}
			if len(res.Jobs) > 0 {
				if j, err := m.toJob(res.Jobs[0]); err == nil {
					st.LastJob = j
				}
			}
			out = append(out, st)
		}
	}
	return out, nil
}

// ScheduleJob returns job id of a schedule, whoever owns it (the caller
// has checked that the principal may see the schedule's dataset).
func (m *Manager) ScheduleJob(ctx context.Context, id string) (*Job, error) {
	j, err := m.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.Schedule == "" {
		return nil, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	return j, nil
}

// scheduleIn returns the schedule id (dataset/name) of cfg, or nil.
func scheduleIn(cfg *exportd.Config, id string) *exportd.Schedule {
	for _, d := range cfg.Datasets {
		for _, s := range d.Schedules {
			if s.ID() == id {
				return s
			}
		}
	}
	return nil
}

// runOf returns what the deliveries of a finished run tell: the figures,
// the parameters run with and the signed link, valid as long as the
// result.
func (m *Manager) runOf(job *river.Job[exportArgs], s *exportd.Schedule, p *plan.Plan, r *result, f exportd.Format) *run {
	a := job.Args
	exp := r.Committed.Add(m.ttl(r.Keep))
	j := &Job{ID: strconv.FormatInt(job.ID, 10), uid: a.UID, owner: a.Owner, key: r.Key}
	link := ""
	if m.cfg.Delivery.PublicURL != "" {
		link = m.cfg.Delivery.PublicURL + m.SignedURL(j, exp)
	}
	tick := time.Now().UTC()
	if a.Tick != nil {
		tick = *a.Tick
	}
	rec := p.Record()
	return &run{s: s, d: p.Dataset, key: r.Key, ctype: f.ContentType(), rec: rec, personal: p.Dataset.Personal,
		payload: WebhookPayload{Event: "export.delivered", JobID: j.ID, Schedule: s.ID(), Dataset: p.Dataset.Name,
			Tick: tick, Manual: a.Manual, Params: p.Raw, Format: string(f), FileName: r.FileName,
			Rows: r.Rows, Size: r.Size, SHA256: r.SHA256, Link: link, ExpiresAt: exp.UTC()}}
}
