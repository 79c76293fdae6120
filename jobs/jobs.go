package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/jobs/storage"
	"github.com/exportd/exportd/plan"
)

// Errors of the manager's methods; the HTTP server maps them to statuses.
var (
	// ErrNotFound: no such job, or the job of another principal.
	ErrNotFound = errors.New("no such job")
	// ErrNotReady: the job has not succeeded (yet), so it has no result.
	ErrNotReady = errors.New("the job has no result yet")
	// ErrExpired: the job's result has expired and is deleted.
	ErrExpired = errors.New("the job's result has expired")
	// ErrBadLink: a download link whose signature does not match.
	ErrBadLink = errors.New("bad download link")
	// ErrLinkExpired: a download link past its expiry.
	ErrLinkExpired = errors.New("the download link has expired")
)

// Job states as the API shows them.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
	StateExpired   = "expired"
)

// Defaults applied by New.
const (
	DefaultWorkers          = 2
	DefaultResultTTL        = 24 * time.Hour
	DefaultJobTimeout       = 2 * time.Hour
	DefaultMaxAttempts      = 3
	DefaultRetryBackoff     = time.Second
	DefaultProgressInterval = 500 * time.Millisecond
	queueName               = "exports"
	exportKind              = "exportd_export"
	sweepKind               = "exportd_sweep"
	resultPrefix            = "results/"
)

// Config configures a [Manager].
type Config struct {
	// Datasets and Sources are those of the server: a job runs a dataset
	// on the source of its connection.
	Datasets *exportd.Config
	Sources  map[string]exportd.Source
	// Queue holds the jobs (see OpenQueue); Storage their results.
	Queue   *Queue
	Storage storage.Storage
	// Links sign download links (HMAC-SHA256; see auth.Keys). Required;
	// every node needs the same keys.
	Links *auth.Keys
	// Audit is the trail in which a personal dataset's attempts are
	// recorded (an *audit.Store); without it such a job fails.
	Audit plan.Auditor

	// Workers is the number of jobs this node runs at once; 0 means 2, a
	// negative value means none (the node only accepts and serves jobs).
	Workers int
	// ResultTTL is how long a result can be downloaded after the job
	// succeeded; then it is deleted and the job shows "expired". 0 means
	// 24 h.
	ResultTTL time.Duration
	// JobTimeout bounds one attempt of a job; 0 means 2 h.
	JobTimeout time.Duration
	// NodeID names this node in the queue: River's client id, the same
	// after a restart and different from every other live node's (two
	// processes under one id stop each other's jobs). A restarted node's
	// unfinished jobs run again at once; see rescue.go. Empty means
	// DefaultNodeID("").
	NodeID string
	// NodeTimeout is how long a node may go without a heartbeat before
	// the leader runs its jobs again on other nodes; a node writes one
	// every NodeTimeout/6, and one that could not for NodeTimeout/2
	// cancels its own jobs. 0 means 30 s.
	NodeTimeout time.Duration
	// RescueAfter is River's own last resort: how long a job may stay
	// running before it is run again whatever its node says. It must
	// exceed JobTimeout; 0 means JobTimeout + 5 min. The jobs of a dead
	// node are run again long before (NodeTimeout).
	RescueAfter time.Duration
	// MaxAttempts is how often a failing job is tried; 0 means 3.
	MaxAttempts int
	// RetryBackoff is the wait before a failed job's first retry; the
	// n-th retry waits n⁴ times as long (by default 1 s, 16 s, 81 s …),
	// give or take 10 %. 0 means 1 s.
	RetryBackoff time.Duration
	// ProgressInterval is how often a running job saves its progress;
	// 0 means 500 ms.
	ProgressInterval time.Duration
	// PollInterval is how often the node looks for new jobs (and, on
	// SQLite, for cancellations); 0 means River's 1 s.
	PollInterval time.Duration
	// SweepInterval is how often expired results are deleted; 0 means
	// ResultTTL/4, at most 10 min.
	SweepInterval time.Duration
	// Logger receives the job log lines; nil means slog.Default().
	Logger *slog.Logger

	// Quota bounds each principal's jobs in flight and results kept
	// (quota.go); RoleQuotas, by role, replace it for principals with a
	// listed role. Zero values set no bound.
	Quota      Quota
	RoleQuotas map[string]Quota

	// Delivery of the schedules' runs (deliver.go).
	Delivery Delivery
}

// Manager submits, runs and serves background export jobs. Make one with
// New, Start it, and Stop it before closing the queue.
type Manager struct {
	cfg      Config
	log      *slog.Logger
	client   riverClient
	datasets atomic.Pointer[datasets] // Config.Datasets and Sources until a Reload
	// links sign and verify download links (link.go).
	links atomic.Pointer[auth.Keys]
	node  nodeState
	slots atomic.Pointer[sharing] // see ShareSlots

	// The periodic jobs of the schedules now (schedule.go).
	periodicMu  sync.Mutex
	periodicIDs []string
	metrics     *deliveryMetrics
}

// sharing is how a job's export shares the node with its downloads (see
// [Manager.ShareSlots]).
type sharing struct {
	admit func(ctx context.Context) (release func(), err error)
	turn  func(ctx context.Context, rows int64) (done func(), err error)
}

// ShareSlots makes every attempt from now on wait, after its file has
// started and before its query, for admit to return: a slot of the run
// slots this node's downloads use too (a server with Config.Jobs sets
// it), so that jobs and downloads share the cores instead of both taking
// all of them. The attempt calls release when its export ends. turn, if
// not nil, is the engine's Turn of each attempt (see exportd.Export):
// it is called before each batch of rows. Without ShareSlots, a job runs
// as soon as a worker takes it.
func (m *Manager) ShareSlots(admit func(ctx context.Context) (release func(), err error), turn func(ctx context.Context, rows int64) (done func(), err error)) {
	m.slots.Store(&sharing{admit: admit, turn: turn})
}

// datasets are the datasets jobs run, on a source per connection.
type datasets struct {
	cfg     *exportd.Config
	sources map[string]exportd.Source
}

// Reload makes the jobs submitted and the attempts started from now on
// use cfg and sources (a reloaded datasets file); attempts under way
// finish on the datasets they started with.
//
// The schedules of cfg replace the periodic jobs: a changed cron
// expression takes effect from its next tick.
func (m *Manager) Reload(cfg *exportd.Config, sources map[string]exportd.Source) {
	m.datasets.Store(&datasets{cfg: cfg, sources: sources})
	if m.client != nil {
		m.reloadSchedules(cfg)
	}
}

// New checks cfg, applies its defaults and makes the manager's River
// client (workers registered, not started).
func New(cfg Config) (*Manager, error) {
	switch {
	case cfg.Datasets == nil:
		return nil, errors.New("jobs: no datasets config")
	case cfg.Queue == nil:
		return nil, errors.New("jobs: no queue")
	case cfg.Storage == nil:
		return nil, errors.New("jobs: no storage")
	case cfg.Links == nil:
		return nil, errors.New("jobs: no link keys to sign download links")
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.ResultTTL <= 0 {
		cfg.ResultTTL = DefaultResultTTL
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = DefaultJobTimeout
	}
	if cfg.RescueAfter <= 0 {
		cfg.RescueAfter = cfg.JobTimeout + 5*time.Minute
	}
	if cfg.RescueAfter <= cfg.JobTimeout {
		return nil, fmt.Errorf("jobs: RescueAfter (%v) must exceed JobTimeout (%v), or a live job would run twice", cfg.RescueAfter, cfg.JobTimeout)
	}
	if cfg.NodeID == "" {
		cfg.NodeID = DefaultNodeID("")
	}
	if len(cfg.NodeID) > 100 {
		return nil, fmt.Errorf("jobs: node id %q: longer than 100 characters", cfg.NodeID)
	}
	if cfg.NodeTimeout <= 0 {
		cfg.NodeTimeout = DefaultNodeTimeout
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = DefaultRetryBackoff
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = min(cfg.ResultTTL/4, 10*time.Minute)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.Delivery.setDefaults(); err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, node: nodeState{instance: newInstance(), running: map[int64]context.CancelCauseFunc{}},
		metrics: newDeliveryMetrics()}
	m.Reload(cfg.Datasets, cfg.Sources)
	if err := m.SetLinks(cfg.Links); err != nil {
		return nil, err
	}

	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &exportWorker{m: m}); err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &sweepWorker{m: m}); err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	rc := &river.Config{
		ID:                   cfg.NodeID,
		Middleware:           []rivertype.Middleware{&trackRunning{n: &m.node}},
		Workers:              workers,
		JobTimeout:           cfg.JobTimeout,
		RescueStuckJobsAfter: cfg.RescueAfter,
		MaxAttempts:          cfg.MaxAttempts,
		RetryPolicy:          retryPolicy{cfg.RetryBackoff},
		FetchPollInterval:    cfg.PollInterval,
		// The job rows outlive their results, so that a job shows
		// "expired" rather than vanishing.
		CompletedJobRetentionPeriod: cfg.ResultTTL + maxKeepBeyondTTL,
		CancelledJobRetentionPeriod: 7 * 24 * time.Hour,
		DiscardedJobRetentionPeriod: 7 * 24 * time.Hour,
		Logger:                      slog.New(minLevel{cfg.Logger.Handler(), slog.LevelWarn}),
		// Only the leader inserts periodic jobs: one sweep at a time for
		// all nodes.
		PeriodicJobs: []*river.PeriodicJob{river.NewPeriodicJob(
			river.PeriodicInterval(cfg.SweepInterval),
			func() (river.JobArgs, *river.InsertOpts) {
				return sweepArgs{}, &river.InsertOpts{Queue: queueName, UniqueOpts: river.UniqueOpts{ByArgs: true,
					ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateScheduled}}}
			},
			&river.PeriodicJobOpts{RunOnStart: true, ID: sweepKind},
		)},
	}
	// The schedules of the datasets file (schedule.go).
	rc.PeriodicJobs = append(rc.PeriodicJobs, m.periodicJobs(cfg.Datasets)...)
	m.periodicIDs = periodicIDs(cfg.Datasets)
	if cfg.PollInterval > 0 && cfg.PollInterval < 100*time.Millisecond {
		rc.FetchCooldown = cfg.PollInterval // River's default is 100 ms
	}
	if cfg.Workers > 0 {
		rc.Queues = map[string]river.QueueConfig{queueName: {MaxWorkers: cfg.Workers}}
	}
	client, err := cfg.Queue.newClient(rc)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	m.client = client
	return m, nil
}

// Start starts working jobs (unless Workers is negative) and the
// retention sweep. Jobs run until Stop, not until ctx ends.
func (m *Manager) Start(ctx context.Context) error {
	if m.cfg.Workers < 0 {
		return nil
	}
	if err := m.startNode(ctx); err != nil {
		return fmt.Errorf("jobs: start: %w", err)
	}
	if err := m.client.Start(context.WithoutCancel(ctx)); err != nil {
		m.stopNode()
		return fmt.Errorf("jobs: start: %w", err)
	}
	// A schedule's tick missed while no node ran runs once now.
	if err := m.catchUp(ctx, time.Now()); err != nil {
		m.log.Error("schedules: missed runs not checked", "error", err.Error())
	}
	return nil
}

// Stop stops fetching jobs and waits for the running ones until ctx ends;
// a job still running then is cancelled and will run again (on this node
// after a restart, or on another).
func (m *Manager) Stop(ctx context.Context) error {
	if m.cfg.Workers < 0 {
		return nil
	}
	// The heartbeat goes on while running jobs finish: they are alive.
	defer m.stopNode()
	err := m.client.Stop(ctx)
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		// River's StopAndCancel cancels the work contexts.
		if sc, ok := m.client.(interface{ StopAndCancel(context.Context) error }); ok {
			c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = sc.StopAndCancel(c)
		}
	}
	if err != nil {
		return fmt.Errorf("jobs: stop: %w", err)
	}
	return nil
}

// NodeID returns this node's id in the queue.
func (m *Manager) NodeID() string { return m.cfg.NodeID }

// Ping checks that the queue's database answers: without it no job can
// be submitted, followed or run (the server's /readyz asks).
func (m *Manager) Ping(ctx context.Context) error { return m.cfg.Queue.Ping(ctx) }

// ResultTTL returns how long results are kept.
func (m *Manager) ResultTTL() time.Duration { return m.cfg.ResultTTL }

// Request asks for a job.
type Request struct {
	Owner   string   // the principal the job belongs to
	Roles   []string // the principal's roles (kept for masking rules)
	Dataset string   // dataset name
	Format  exportd.Format
	Params  url.Values // the dataset parameters as given (pins applied)
	// Columns are the columns chosen (nil: all the roles may see); the
	// worker masks by Roles and the dataset's access: block.
	Columns []string
	// Sheets are the sheets chosen of a dataset of several (nil: all).
	Sheets []string
	// Purpose and PurposeText are the stated purpose of a personal
	// dataset's export, for the audit record of each download.
	Purpose, PurposeText string
}

// Submit validates req (unknown dataset, bad parameters: the dataset's
// errors) and queues a job, or returns the job already queued or running
// for the same owner, dataset, parameters and format (joined reports
// which).
func (m *Manager) Submit(ctx context.Context, req Request) (job *Job, joined bool, err error) {
	ds := m.datasets.Load()
	d, err := ds.cfg.Lookup(req.Dataset)
	if err != nil {
		return nil, false, err
	}
	if _, err := exportd.ParseFormat(string(req.Format)); err != nil {
		return nil, false, err
	}
	if _, ok := ds.sources[d.Connection]; !ok && ds.sources != nil {
		return nil, false, fmt.Errorf("dataset %s: no source for connection %q", d.Name, d.Connection)
	}
	bound, err := d.BindParams(req.Params, ds.cfg.Location)
	if err != nil {
		return nil, false, err
	}
	// Only the dataset's own parameters are kept.
	params := url.Values{}
	for _, p := range d.Params {
		if v, ok := req.Params[p.Name]; ok {
			params[p.Name] = v
		}
	}
	key, err := json.Marshal(bound) // sorted keys, typed values: equal requests give equal keys
	if err != nil {
		return nil, false, fmt.Errorf("jobs: %w", err)
	}
	priority, err := m.admit(ctx, req) // quota.go
	if err != nil {
		return nil, false, err
	}
	uid, err := newUID()
	if err != nil {
		return nil, false, err
	}
	args := exportArgs{UID: uid, Owner: req.Owner, Roles: req.Roles, Dataset: d.Name, Format: string(req.Format),
		Params: params, Bound: string(key), Columns: req.Columns, Sheets: req.Sheets, Purpose: req.Purpose, PurposeText: req.PurposeText}
	res, err := m.client.Insert(ctx, args, &river.InsertOpts{
		Queue:    queueName,
		Priority: priority,
		Tags:     []string{ownerTag(req.Owner)},
		UniqueOpts: river.UniqueOpts{
			ByArgs: true,
			// In flight only: a finished, cancelled or failed job does not
			// stop a new one.
			ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
				rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled},
		},
	})
	if err != nil {
		return nil, false, fmt.Errorf("jobs: submit: %w", err)
	}
	j, err := m.toJob(res.Job)
	if err != nil {
		return nil, false, err
	}
	return j, res.UniqueSkippedAsDuplicate, nil
}

// Get returns owner's job id; another owner's job is ErrNotFound.
func (m *Manager) Get(ctx context.Context, owner, id string) (*Job, error) {
	row, err := m.row(ctx, id)
	if err != nil {
		return nil, err
	}
	j, err := m.toJob(row)
	if err != nil {
		return nil, err
	}
	if j.owner != owner {
		return nil, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	return j, nil
}

// get returns job id whoever owns it.
func (m *Manager) get(ctx context.Context, id string) (*Job, error) {
	row, err := m.row(ctx, id)
	if err != nil {
		return nil, err
	}
	return m.toJob(row)
}

func (m *Manager) row(ctx context.Context, id string) (*rivertype.JobRow, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	row, err := m.client.JobGet(ctx, n)
	if errors.Is(err, rivertype.ErrNotFound) {
		return nil, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", id, err)
	}
	if row.Kind != exportKind {
		return nil, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	return row, nil
}

// List returns owner's jobs, newest first (at most 200).
func (m *Manager) List(ctx context.Context, owner string) ([]*Job, error) {
	res, err := m.client.JobList(ctx, river.NewJobListParams().
		Kinds(exportKind).
		TagsAll(ownerTag(owner)).
		States(rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
			rivertype.JobStateRetryable, rivertype.JobStateScheduled, rivertype.JobStateCompleted,
			rivertype.JobStateCancelled, rivertype.JobStateDiscarded).
		OrderBy(river.JobListOrderByID, river.SortOrderDesc).
		First(200))
	if err != nil {
		return nil, fmt.Errorf("jobs: list: %w", err)
	}
	list := make([]*Job, 0, len(res.Jobs))
	for _, row := range res.Jobs {
		j, err := m.toJob(row)
		if err != nil || j.owner != owner {
			continue
		}
		list = append(list, j)
	}
	return list, nil
}

// Cancel cancels owner's job id: a queued job never runs, a running one
// has its context cancelled (which stops its query) within a poll
// interval. A finished job is returned unchanged.
func (m *Manager) Cancel(ctx context.Context, owner, id string) (*Job, error) {
	j, err := m.Get(ctx, owner, id)
	if err != nil {
		return nil, err
	}
	row, err := m.client.JobCancel(ctx, j.rowID)
	if err != nil {
		return nil, fmt.Errorf("job %s: cancel: %w", id, err)
	}
	return m.toJob(row)
}

// ownerTag is the River tag of an owner's jobs (tags allow only a few
// characters, so it is a hash).
func ownerTag(owner string) string {
	h := sha256.Sum256([]byte("exportd-owner\n" + owner))
	return "o_" + hex.EncodeToString(h[:12])
}

// Job is a job as the API shows it.
type Job struct {
	ID      string              `json:"id"`
	State   string              `json:"state"`
	Dataset string              `json:"dataset"`
	Format  string              `json:"format"`
	Params  map[string][]string `json:"params"`
	// Rows and Bytes written so far by the current attempt (Attempt,
	// counted from 1). A retry starts again from 0 with Attempt one
	// higher: progress never goes back as (Attempt, Rows), and Rows only
	// grows within an attempt, up to the final row count.
	Rows  int64 `json:"rows"`
	Bytes int64 `json:"bytes"`
	// TotalRows is the source's estimate of the row count, when it has one.
	TotalRows *int64    `json:"total_rows,omitempty"`
	Attempt   int       `json:"attempt"`
	CreatedAt time.Time `json:"created_at"`
	// StartedAt is when the current attempt started.
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// ExpiresAt is when the result will be deleted (succeeded jobs), or
	// was (expired ones).
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Error is the last attempt's error (a failed job, or one waiting to
	// be retried).
	Error string `json:"error,omitempty"`
	// CancelRequested is set when a running job has been asked to stop.
	CancelRequested bool `json:"cancel_requested,omitempty"`
	// The result, once the job has succeeded.
	FileName    string `json:"file_name,omitempty"`
	Size        int64  `json:"size,omitempty"`
	SHA256      string `json:"sha256,omitempty"`
	DownloadURL string `json:"download_url,omitempty"`
	// The privacy rules the job was submitted with (see Request).
	Columns []string `json:"columns,omitempty"`
	Sheets  []string `json:"sheets,omitempty"` // the sheets chosen of a dataset of several
	// SheetRows are the rows of each sheet of the result (a dataset of
	// several sheets).
	SheetRows   []exportd.SheetStats `json:"sheet_rows,omitempty"`
	Purpose     string               `json:"purpose,omitempty"`
	PurposeText string               `json:"purpose_text,omitempty"`
	// A scheduled run: its schedule (dataset/name), the tick it stands for
	// (a manual run's: when it was asked for), and how its deliveries went.
	Schedule   string          `json:"schedule,omitempty"`
	Tick       *time.Time      `json:"tick,omitempty"`
	Manual     bool            `json:"manual,omitempty"`
	Deliveries []DeliveryState `json:"deliveries,omitempty"`

	owner       string
	roles       []string
	rowID       int64
	uid         string // the job's unguessable identity (see exportArgs.UID)
	key         string
	contentType string
}

// Final reports whether the job will not change any more (but for
// expiring).
func (j *Job) Final() bool {
	switch j.State {
	case StateSucceeded, StateFailed, StateCancelled, StateExpired:
		return true
	}
	return false
}

// Owner returns the principal the job belongs to.
func (j *Job) Owner() string { return j.owner }

// Roles returns the roles of the owner when the job was submitted (which
// decided its masking).
func (j *Job) Roles() []string { return j.roles }

// ContentType returns the result's MIME type.
func (j *Job) ContentType() string { return j.contentType }

// ETag returns the result's strong entity tag (from its SHA-256).
func (j *Job) ETag() string {
	if len(j.SHA256) < 32 {
		return ""
	}
	return `"` + j.SHA256[:32] + `"`
}

func (m *Manager) toJob(row *rivertype.JobRow) (*Job, error) {
	var args exportArgs
	if err := json.Unmarshal(row.EncodedArgs, &args); err != nil {
		return nil, fmt.Errorf("job %d: %w", row.ID, err)
	}
	var out output
	if raw := row.Output(); len(raw) > 0 {
		json.Unmarshal(raw, &out)
	}
	j := &Job{
		ID: strconv.FormatInt(row.ID, 10), Dataset: args.Dataset, Format: args.Format, Params: args.Params,
		Rows: out.Rows, Bytes: out.Bytes, Attempt: row.Attempt, CreatedAt: row.CreatedAt,
		owner: args.Owner, roles: args.Roles, rowID: row.ID, uid: args.UID,
		Columns: args.Columns, Sheets: args.Sheets, Purpose: args.Purpose, PurposeText: args.PurposeText,
		Schedule: args.Schedule, Tick: args.Tick, Manual: args.Manual, Deliveries: out.Deliveries,
	}
	if j.Params == nil {
		j.Params = map[string][]string{}
	}
	if out.Total >= 0 && out.Started != nil {
		t := out.Total
		j.TotalRows = &t
	}
	// A new attempt that has not saved its progress yet still has its
	// predecessor's: those rows are not this attempt's.
	stale := row.State == rivertype.JobStateRunning && out.Attempt < row.Attempt
	if stale {
		j.Rows, j.Bytes = 0, 0
	}
	if out.Started != nil && !stale {
		j.StartedAt = out.Started
	} else if row.AttemptedAt != nil {
		j.StartedAt = row.AttemptedAt
	}
	j.FinishedAt = row.FinalizedAt
	if f, err := exportd.ParseFormat(args.Format); err == nil {
		j.contentType = f.ContentType()
	}
	if out.Result != nil && strings.HasSuffix(out.Result.FileName, ".zip") {
		j.contentType = "application/zip" // a CSV, TSV or JSON Lines export of several sheets
	}
	if n := len(row.Errors); n > 0 {
		j.Error = publicError(row.Errors[n-1].Error)
	}
	var meta struct {
		CancelAttemptedAt *time.Time `json:"cancel_attempted_at"`
	}
	json.Unmarshal(row.Metadata, &meta)
	switch row.State {
	case rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateScheduled, rivertype.JobStateRetryable:
		j.State = StateQueued
	case rivertype.JobStateRunning:
		j.State = StateRunning
		j.CancelRequested = meta.CancelAttemptedAt != nil
	case rivertype.JobStateCompleted:
		j.State = StateSucceeded
		if r := out.Result; r != nil {
			j.FileName, j.Size, j.SHA256, j.key = r.FileName, r.Size, r.SHA256, r.Key
			j.SheetRows = r.Sheets
			j.Rows, j.Bytes = r.Rows, r.Size
			exp := r.Committed.Add(m.ttl(r.Keep))
			if r.Deleted != nil && r.Deleted.Before(exp) {
				exp = *r.Deleted
			}
			j.ExpiresAt = &exp
			if r.Deleted != nil || !time.Now().Before(exp) {
				j.State = StateExpired
			} else {
				j.DownloadURL = m.SignedURL(j, exp)
			}
		}
	case rivertype.JobStateCancelled:
		j.State = StateCancelled
		if out.Failed != "" {
			j.State, j.Error = StateFailed, publicError(out.Failed)
		}
	case rivertype.JobStateDiscarded:
		j.State = StateFailed
	default:
		j.State = string(row.State)
	}
	if j.State != StateFailed && j.State != StateQueued {
		j.Error = ""
	}
	return j, nil
}

// Result is an opened result of a succeeded job.
type Result struct {
	storage.Object
	Job *Job
}

// Open opens the result of owner's job id (see OpenLink for a signed
// link). ErrNotReady for a job that has not succeeded, ErrExpired after its
// result's time.
func (m *Manager) Open(ctx context.Context, owner, id string) (*Result, error) {
	j, err := m.Get(ctx, owner, id)
	if err != nil {
		return nil, err
	}
	return m.open(ctx, j)
}

// open opens the result of j.
func (m *Manager) open(ctx context.Context, j *Job) (*Result, error) {
	id := j.ID
	switch j.State {
	case StateSucceeded:
	case StateExpired:
		return nil, fmt.Errorf("job %s: %w", id, ErrExpired)
	default:
		return nil, fmt.Errorf("job %s is %s: %w", id, j.State, ErrNotReady)
	}
	obj, err := m.cfg.Storage.Open(ctx, j.key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("job %s: %w", id, ErrExpired)
	}
	if err != nil {
		return nil, err
	}
	return &Result{Object: obj, Job: j}, nil
}

// exportArgs are a job's arguments. The fields marked unique make
// identical requests in flight join one job.
type exportArgs struct {
	// UID is the job's unguessable identity (128 random bits, hex), made
	// when it is submitted: its download links are signed over it (see
	// SignedURL), so that a link names this job and no other that comes to
	// have its numeric id (a recreated queue, a restored backup).
	UID     string   `json:"uid,omitempty"`
	Owner   string   `json:"owner" river:"unique"`
	Roles   []string `json:"roles,omitempty"`
	Dataset string   `json:"dataset" river:"unique"`
	Format  string   `json:"format" river:"unique"`
	// Params are the dataset parameters as given; Bound is them bound
	// (typed, defaults filled in) as JSON, the identity of the request.
	Params url.Values `json:"params"`
	Bound  string     `json:"bound" river:"unique"`
	// The privacy rules: the columns chosen and the stated purpose (a
	// different purpose is another export, audited on its own).
	Columns     []string `json:"columns,omitempty" river:"unique"`
	Sheets      []string `json:"sheets,omitempty" river:"unique"`
	Purpose     string   `json:"purpose,omitempty" river:"unique"`
	PurposeText string   `json:"purpose_text,omitempty" river:"unique"`
	// A schedule's run (schedule.go): the schedule (dataset/name), the
	// tick, whether it was asked for by hand, and the owner's attributes
	// (its pins, applied again by the worker).
	Schedule string            `json:"schedule,omitempty" river:"unique"`
	Tick     *time.Time        `json:"tick,omitempty" river:"unique"`
	Manual   bool              `json:"manual,omitempty" river:"unique"`
	Attrs    map[string]string `json:"attrs,omitempty"`
	// Keep is how long the schedule keeps its results (see result.Keep).
	Keep time.Duration `json:"keep,omitempty"`
}

func (exportArgs) Kind() string { return exportKind }

// output is a job's River output: its progress while it runs, its result
// when done.
type output struct {
	Rows    int64      `json:"rows"`
	Bytes   int64      `json:"bytes"`
	Total   int64      `json:"total"` // -1: unknown
	Attempt int        `json:"attempt"`
	Started *time.Time `json:"started,omitempty"`
	Result  *result    `json:"result,omitempty"`
	// Failed is set when the job cannot succeed by trying again (unknown
	// dataset, bad parameters): it is cancelled and shows "failed".
	Failed string `json:"failed,omitempty"`
	// Deliveries are a scheduled run's deliveries (deliver.go).
	Deliveries []DeliveryState `json:"deliveries,omitempty"`
}

type result struct {
	Key       string    `json:"key"`
	FileName  string    `json:"file_name"`
	Rows      int64     `json:"rows"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	Committed time.Time `json:"committed"`
	// Sheets are the rows of each sheet of a dataset of several.
	Sheets []exportd.SheetStats `json:"sheets,omitempty"`
	// Deleted is when the sweep deleted the result (see Sweep).
	Deleted *time.Time `json:"deleted,omitempty"`
	// Keep is how long a schedule's result is kept when longer than
	// ResultTTL (see Manager.ttl); 0: ResultTTL.
	Keep time.Duration `json:"keep,omitempty"`
}

// maxKeepBeyondTTL is how much longer than ResultTTL a schedule may keep
// its results: River keeps a finished job's row that long (see
// CompletedJobRetentionPeriod), and a result is served through its job.
const maxKeepBeyondTTL = 7 * 24 * time.Hour

// ttl returns how long a result asking to be kept for keep is kept:
// ResultTTL, or keep when longer, at most a week beyond ResultTTL.
func (m *Manager) ttl(keep time.Duration) time.Duration {
	return min(max(m.cfg.ResultTTL, keep), m.cfg.ResultTTL+maxKeepBeyondTTL)
}

// minLevel drops records below a level (River logs each job at info).
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
