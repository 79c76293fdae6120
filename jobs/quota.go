package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Quota bounds what one principal holds in the job queue and in storage.
// A field ≤ 0 sets no bound.
type Quota struct {
	// Jobs is the most jobs one principal has queued or running.
	Jobs int
	// Bytes is the most bytes of results one principal keeps (succeeded
	// jobs whose results have not expired).
	Bytes int64
}

// QuotaError is returned by Submit when the owner is at a quota. It
// names the quota, what counts against it and when it frees.
type QuotaError struct {
	Quota  string // "jobs" or "bytes"
	Limit  int64
	Used   int64
	Counts string // what counts against the quota
	// FreesAt is when the quota frees (the oldest result expires); zero
	// when it frees as one of the owner's jobs ends.
	FreesAt time.Time
}

func (e *QuotaError) Error() string {
	frees := "when one of your queued or running jobs ends (or you cancel one)"
	if !e.FreesAt.IsZero() {
		frees = "at " + e.FreesAt.UTC().Format(time.RFC3339) + ", when your oldest result expires (or delete one)"
	}
	return fmt.Sprintf("job quota %q reached: %d of %d (%s); it frees %s", e.Quota, e.Used, e.Limit, e.Counts, frees)
}

// inFlight are the states of a queued or running job.
var inFlight = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
	rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled}

// quotaFor returns the quota of a principal with roles: for each bound the
// largest of its roles' quotas in RoleQuotas, and Quota's where none of
// its roles is listed.
func (m *Manager) quotaFor(roles []string) Quota {
	q, listed := Quota{}, false
	for _, r := range roles {
		rq, ok := m.cfg.RoleQuotas[r]
		if !ok {
			continue
		}
		if !listed {
			q, listed = rq, true
			continue
		}
		if rq.Jobs <= 0 || q.Jobs > 0 && rq.Jobs > q.Jobs {
			q.Jobs = rq.Jobs
		}
		if rq.Bytes <= 0 || q.Bytes > 0 && rq.Bytes > q.Bytes {
			q.Bytes = rq.Bytes
		}
	}
	if !listed {
		return m.cfg.Quota
	}
	return q
}

// admit checks req's owner against its quota and returns the River
// priority of its new job: 1 for the owner's first job in flight, 2 for
// the second, 3 for the third, 4 beyond, so that one owner's many jobs do
// not delay another owner's first (River runs the available jobs by
// priority, then in order).
func (m *Manager) admit(ctx context.Context, req Request) (priority int, err error) {
	q := m.quotaFor(req.Roles)
	limit := max(q.Jobs, 3) + 1
	res, err := m.client.JobList(ctx, river.NewJobListParams().Kinds(exportKind).
		TagsAll(ownerTag(req.Owner)).States(inFlight...).First(limit))
	if err != nil {
		return 0, fmt.Errorf("jobs: quota: %w", err)
	}
	n := 0
	for _, row := range res.Jobs {
		if j, err := m.toJob(row); err == nil && j.owner == req.Owner {
			n++
		}
	}
	if q.Jobs > 0 && n >= q.Jobs {
		return 0, &QuotaError{Quota: "jobs", Limit: int64(q.Jobs), Used: int64(n), Counts: "your jobs queued or running"}
	}
	if q.Bytes > 0 {
		jobs, err := m.List(ctx, req.Owner)
		if err != nil {
			return 0, err
		}
		var used int64
		var oldest time.Time
		for _, j := range jobs {
			if j.State != StateSucceeded {
				continue
			}
			used += j.Bytes
			if j.ExpiresAt != nil && (oldest.IsZero() || j.ExpiresAt.Before(oldest)) {
				oldest = *j.ExpiresAt
			}
		}
		if used >= q.Bytes {
			return 0, &QuotaError{Quota: "bytes", Limit: q.Bytes, Used: used, Counts: "the bytes of your results kept (succeeded jobs not yet expired)", FreesAt: oldest}
		}
	}
	return min(n+1, 4), nil
}
