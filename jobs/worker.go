package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/plan"
)

// exportWorker runs export jobs: the dataset's query through the export
// engine into storage.
type exportWorker struct {
	river.WorkerDefaults[exportArgs]
	m *Manager
}

// Timeout bounds one attempt.
func (w *exportWorker) Timeout(*river.Job[exportArgs]) time.Duration { return w.m.cfg.JobTimeout }

func (w *exportWorker) Work(ctx context.Context, job *river.Job[exportArgs]) error {
	return w.m.run(ctx, job)
}

// run works one attempt of a job: its export planned again from what was
// stored at submission (package plan: the owner's roles decide the
// masking, the file is marked for the owner), run into storage. The
// result is written under a key of its own (results/{job}/{attempt}.{ext})
// and committed only when the export has succeeded; on any error it is
// aborted, so no partial file is ever visible. A personal dataset's
// attempt is in the audit trail (started, then its outcome); when the
// trail cannot be written the attempt fails and is retried. River retries
// a failed attempt with backoff, runs a job whose node died again after
// RescueAfter, and turns a cancellation (JobCancel) into the job's
// context ending, which stops the query.
func (m *Manager) run(ctx context.Context, job *river.Job[exportArgs]) error {
	a := job.Args
	log := m.log.With("job", job.ID, "attempt", job.Attempt, "dataset", a.Dataset, "format", a.Format, "principal", a.Owner)
	now := time.Now().UTC()
	out := output{Total: -1, Attempt: job.Attempt, Started: &now}

	f, err := exportd.ParseFormat(a.Format)
	if err != nil {
		return m.fail(ctx, job, &out, err)
	}
	// The datasets as they are now: a reload applies to the next attempt,
	// never to one under way.
	ds := m.datasets.Load()
	req := plan.Request{Format: f, Params: a.Params, Columns: a.Columns, Sheets: a.Sheets,
		Principal: plan.Principal{Name: a.Owner, Roles: a.Roles, Client: fmt.Sprintf("job:%d", job.ID)},
		Purpose:   audit.Purpose{Category: a.Purpose, Text: a.PurposeText}}
	var sched *exportd.Schedule
	if a.Schedule != "" {
		// A schedule's run (schedule.go): its tick claimed, once for all
		// nodes, and the owner's access and pins applied as the datasets
		// file says now.
		sched = scheduleIn(ds.cfg, a.Schedule)
		if sched == nil {
			m.metrics.runs.WithLabelValues("failed").Inc()
			return m.fail(ctx, job, &out, fmt.Errorf("%w %q: it is no longer in the datasets file", ErrUnknownSchedule, a.Schedule))
		}
		if !a.Manual && a.Tick != nil {
			ok, err := m.cfg.Queue.runs.claim(ctx, a.Schedule, a.Tick.UnixMicro(), job.ID)
			if err != nil {
				return err
			}
			if !ok {
				m.metrics.runs.WithLabelValues("skipped").Inc()
				log.Info("schedule tick already run: skipped", "schedule", a.Schedule, "tick", a.Tick.Format(time.RFC3339))
				return river.JobCancel(fmt.Errorf("tick %s of schedule %s has already run", a.Tick.Format(time.RFC3339), a.Schedule))
			}
		}
		req.Principal.Attrs, req.Principal.Enforce = a.Attrs, true
		req.Principal.Client = fmt.Sprintf("job:%d schedule:%s", job.ID, a.Schedule)
	}
	p, err := plan.New(ds.cfg, a.Dataset, req)
	if err != nil {
		if sched != nil {
			m.metrics.runs.WithLabelValues("failed").Inc()
		}
		return m.fail(ctx, job, &out, err)
	}
	src, ok := ds.sources[p.Dataset.Connection]
	if !ok {
		return m.fail(ctx, job, &out, fmt.Errorf("no source for connection %q", p.Dataset.Connection))
	}
	// A new attempt starts from zero.
	m.progress(ctx, job.ID, out)

	key := resultKey(job.ID, a.UID, job.Attempt, f)
	up, err := m.cfg.Storage.Create(ctx, key, p.ContentType())
	if err != nil {
		return err
	}
	log.Info("job started")
	var share sharing
	if sh := m.slots.Load(); sh != nil {
		share = *sh
	}
	res, err := p.Run(ctx, plan.Options{
		Admit:            share.admit,
		Turn:             share.turn,
		Source:           src,
		Sources:          ds.sources,
		Output:           up,
		Audit:            m.cfg.Audit,
		Hash:             true, // the result's digest, shown with the job
		Estimate:         true,
		ProgressInterval: m.cfg.ProgressInterval,
		OnProgress: func(pr exportd.Progress) {
			out.Rows, out.Bytes, out.Total = pr.Rows, pr.Bytes, pr.Total
			m.progress(ctx, job.ID, out)
		},
		OnAuditError: func(err error) {
			log.Error("audit outcome not recorded: the trail shows the attempt as started without an outcome", "error", err.Error())
		},
	})
	st := res.Stats
	if err != nil {
		up.Abort()
		level := "error"
		if ctx.Err() != nil {
			level = "stopped"
		}
		log.Warn("job attempt failed", "outcome", level, "rows", st.Rows, "error", err.Error())
		if sched != nil && job.Attempt >= job.MaxAttempts {
			m.metrics.runs.WithLabelValues("failed").Inc()
		}
		return err
	}
	if err := up.Commit(); err != nil {
		log.Warn("job attempt failed", "outcome", "commit", "error", err.Error())
		return err
	}
	out.Rows, out.Bytes = st.Rows, st.Bytes
	out.Result = &result{Key: key, FileName: p.FileName, Rows: st.Rows, Size: st.Bytes,
		SHA256: res.SHA256, Committed: time.Now().UTC(), Sheets: st.Sheets, Keep: a.Keep}
	if sched != nil {
		m.metrics.runs.WithLabelValues("succeeded").Inc()
		out.Deliveries = m.deliver(ctx, m.runOf(job, sched, p, out.Result, f))
	}
	// Saved with the job's completion, in the same statement.
	if err := river.RecordOutput(ctx, out); err != nil {
		return err
	}
	log.Info("job succeeded", "rows", st.Rows, "bytes", st.Bytes, "duration", st.Duration.Round(time.Millisecond).String())
	return nil
}

// progress saves a running job's progress where every node sees it. A
// failed save is only logged: the export goes on.
func (m *Manager) progress(ctx context.Context, id int64, out output) {
	if _, err := m.client.JobUpdate(ctx, id, &river.JobUpdateParams{Output: out}); err != nil && ctx.Err() == nil {
		m.log.Debug("job progress not saved", "job", id, "error", err.Error())
	}
}

// fail ends a job that cannot succeed however often it is tried: it is
// cancelled (no retries) and shows "failed" with err.
func (m *Manager) fail(ctx context.Context, job *river.Job[exportArgs], out *output, err error) error {
	out.Failed = err.Error()
	m.progress(ctx, job.ID, *out)
	m.log.Warn("job failed", "job", job.ID, "dataset", job.Args.Dataset, "error", err.Error())
	return river.JobCancel(err)
}

// retryPolicy schedules the next attempt of a failed job: base × n⁴
// after its n-th failure, ±10 % so that jobs failing together do not all
// retry together. It is River's default policy with base configurable
// (Config.RetryBackoff).
type retryPolicy struct{ base time.Duration }

var _ river.ClientRetryPolicy = retryPolicy{}

func (p retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	n := float64(len(job.Errors) + 1) // the failure being scheduled is not in Errors yet
	d := float64(p.base) * n * n * n * n * (0.9 + 0.2*rand.Float64())
	return time.Now().UTC().Add(time.Duration(min(d, float64(math.MaxInt64/2))))
}

// sweepArgs is the periodic retention job: it deletes results past their
// time. Only the leader node inserts it.
type sweepArgs struct{}

func (sweepArgs) Kind() string { return sweepKind }

type sweepWorker struct {
	river.WorkerDefaults[sweepArgs]
	m *Manager
}

func (w *sweepWorker) Work(ctx context.Context, _ *river.Job[sweepArgs]) error {
	n, err := w.m.Sweep(ctx, time.Now())
	if n > 0 {
		w.m.log.Info("expired results deleted", "count", n)
	}
	// A tick River's periodic jobs passed over (while the leadership
	// moved from one node to another) runs now (schedule.go).
	if cerr := w.m.catchUp(ctx, time.Now().Add(-time.Minute)); cerr != nil {
		w.m.log.Error("schedules: missed runs not checked", "error", cerr.Error())
	}
	return err
}

// Sweep deletes the results committed more than ResultTTL before now, and
// discards what the writers of dead attempts left unfinished (see
// deadUpload). A result's job is marked before its file is deleted, so
// that it shows "expired" from then on (see Job.ExpiresAt). It returns
// how many objects it deleted.
func (m *Manager) Sweep(ctx context.Context, now time.Time) (int, error) {
	n := 0
	var errs []error
	for info, err := range m.cfg.Storage.List(ctx, resultPrefix) {
		if err != nil {
			errs = append(errs, err)
			break
		}
		age := now.Sub(info.ModTime)
		partial := info.Partial
		if partial && m.deadUpload(ctx, info.Key, age) {
			if err := m.cfg.Storage.Discard(ctx, info.Key); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
		if !partial && age >= m.cfg.ResultTTL {
			// Past its time, the file goes even if the job cannot be
			// marked; a schedule's result kept longer stays.
			keep, err := m.markDeleted(ctx, info.Key, age)
			if err != nil {
				errs = append(errs, err)
			}
			if keep {
				continue
			}
			if err := m.cfg.Storage.Delete(ctx, info.Key); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
	}
	return n, errors.Join(errs...)
}

// markDeleted records in the job whose result is key (results/{job}/…)
// that the result, age old, is deleted now, unless the job keeps it
// longer (a schedule's keep:), which it reports. Keys of no job, or not
// its committed result, are left alone.
func (m *Manager) markDeleted(ctx context.Context, key string, age time.Duration) (keep bool, err error) {
	id, _, _ := strings.Cut(strings.TrimPrefix(key, resultPrefix), "/")
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return false, nil
	}
	row, err := m.client.JobGet(ctx, n)
	if errors.Is(err, rivertype.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("job %d: mark expired: %w", n, err)
	}
	var out output
	if err := json.Unmarshal(row.Output(), &out); err != nil || out.Result == nil || out.Result.Key != key || out.Result.Deleted != nil {
		return false, nil
	}
	if age < m.ttl(out.Result.Keep) {
		return true, nil
	}
	deleted := time.Now().UTC()
	out.Result.Deleted = &deleted
	if _, err := m.client.JobUpdate(ctx, n, &river.JobUpdateParams{Output: out}); err != nil {
		return false, fmt.Errorf("job %d: mark expired: %w", n, err)
	}
	return false, nil
}
