package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/format"
	"github.com/exportd/exportd/mask"
	"github.com/exportd/exportd/xlsx"
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

// FormatOptions are the writer options of a dataset's files, the same for
// a job's result as for a direct download (server.export), so that both
// give the same file.
func FormatOptions(d *exportd.Dataset) format.Options {
	return format.Options{BOM: true, Sheet: d.SheetName(), Properties: xlsx.Properties{Title: d.Title, Description: d.Description}}
}

// location returns loc, or UTC when nil.
func location(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

// run works one attempt of a job. The result is written under a key of
// its own (results/{job}/{attempt}.{ext}) and committed only when the
// export has succeeded; on any error it is aborted, so no partial file is
// ever visible. River retries a failed attempt with backoff, runs a job
// whose node died again after RescueAfter, and turns a cancellation
// (JobCancel) into the job's context ending, which stops the query.
func (m *Manager) run(ctx context.Context, job *river.Job[exportArgs]) error {
	a := job.Args
	log := m.log.With("job", job.ID, "attempt", job.Attempt, "dataset", a.Dataset, "format", a.Format, "principal", a.Owner)
	now := time.Now().UTC()
	out := output{Total: -1, Attempt: job.Attempt, Started: &now}

	d, err := m.cfg.Datasets.Lookup(a.Dataset)
	if err != nil {
		return m.fail(ctx, job, &out, err)
	}
	f, err := exportd.ParseFormat(a.Format)
	if err != nil {
		return m.fail(ctx, job, &out, err)
	}
	params, err := d.BindParams(url.Values(a.Params), m.cfg.Datasets.Location)
	if err != nil {
		return m.fail(ctx, job, &out, err)
	}
	src, ok := m.cfg.Sources[d.Connection]
	if !ok {
		return m.fail(ctx, job, &out, fmt.Errorf("no source for connection %q", d.Connection))
	}
	// The columns and masking of the owner's roles (as on a direct
	// download): applied before the format writer.
	opts := FormatOptions(d)
	if d.Marking {
		// The job's owner made the file (only the owner, or a link the
		// owner was given, downloads it), at this time.
		opts.Mark(a.Owner, time.Now().In(location(m.cfg.Datasets.Location)))
	}
	newWriter := func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
		return format.New(f, w, cols, opts)
	}
	if len(d.Columns) > 0 {
		pol, err := mask.PolicyFor(d)
		if err != nil {
			return m.fail(ctx, job, &out, err)
		}
		plan, err := pol.Plan(a.Roles, d.Columns, a.Columns)
		if err != nil {
			return m.fail(ctx, job, &out, err)
		}
		newWriter = plan.NewWriter(newWriter)
	} else if a.Columns != nil {
		return m.fail(ctx, job, &out, fmt.Errorf("columns: dataset %s declares no columns", d.Name))
	}
	// A new attempt starts from zero.
	m.progress(ctx, job.ID, out)

	key := resultKey(job.ID, job.Attempt, f)
	up, err := m.cfg.Storage.Create(ctx, key, f.ContentType())
	if err != nil {
		return err
	}
	sum := sha256.New()
	e := &exportd.Export{
		Source:           src,
		Query:            d.Query(params),
		Columns:          d.Columns,
		Output:           io.MultiWriter(up, sum),
		NewWriter:        newWriter,
		Estimate:         true,
		ProgressInterval: m.cfg.ProgressInterval,
		OnProgress: func(p exportd.Progress) {
			out.Rows, out.Bytes, out.Total = p.Rows, p.Bytes, p.Total
			m.progress(ctx, job.ID, out)
		},
	}
	log.Info("job started")
	st, err := e.Run(ctx)
	if err != nil {
		up.Abort()
		level := "error"
		if ctx.Err() != nil {
			level = "stopped"
		}
		log.Warn("job attempt failed", "outcome", level, "rows", st.Rows, "error", err.Error())
		return err
	}
	if err := up.Commit(); err != nil {
		log.Warn("job attempt failed", "outcome", "commit", "error", err.Error())
		return err
	}
	out.Rows, out.Bytes = st.Rows, st.Bytes
	out.Result = &result{Key: key, FileName: d.FileNameFor(params, f), Rows: st.Rows, Size: st.Bytes,
		SHA256: hex.EncodeToString(sum.Sum(nil)), Committed: time.Now().UTC()}
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
			if !partial {
				// Past its time, the file goes even if the job cannot be
				// marked.
				if err := m.markDeleted(ctx, info.Key); err != nil {
					errs = append(errs, err)
				}
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
// that the result is deleted now. Keys of no job, or not its committed
// result, are left alone.
func (m *Manager) markDeleted(ctx context.Context, key string) error {
	id, _, _ := strings.Cut(strings.TrimPrefix(key, resultPrefix), "/")
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil
	}
	row, err := m.client.JobGet(ctx, n)
	if errors.Is(err, rivertype.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("job %d: mark expired: %w", n, err)
	}
	var out output
	if err := json.Unmarshal(row.Output(), &out); err != nil || out.Result == nil || out.Result.Key != key || out.Result.Deleted != nil {
		return nil
	}
	deleted := time.Now().UTC()
	out.Result.Deleted = &deleted
	if _, err := m.client.JobUpdate(ctx, n, &river.JobUpdateParams{Output: out}); err != nil {
		return fmt.Errorf("job %d: mark expired: %w", n, err)
	}
	return nil
}
