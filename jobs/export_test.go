package jobs

import (
	"context"
	"time"
)

// InsertTick inserts the job of schedule id's tick, as the leader's
// periodic job or a catch-up would; it reports whether the insert was
// skipped as a duplicate.
func (m *Manager) InsertTick(ctx context.Context, id string, tick time.Time) (jobID int64, duplicate bool, err error) {
	s, _, err := m.schedule(id)
	if err != nil {
		return 0, false, err
	}
	args, opts, err := m.scheduledArgs(s, tick, false)
	if err != nil {
		return 0, false, err
	}
	res, err := m.client.Insert(ctx, args, opts)
	if err != nil {
		return 0, false, err
	}
	return res.Job.ID, res.UniqueSkippedAsDuplicate, nil
}

// SetLastTick records tick as schedule id's last run (a node that was
// down over the ticks since).
func (q *Queue) SetLastTick(ctx context.Context, id string, tick time.Time) error {
	_, err := q.runs.claim(ctx, id, tick.UnixMicro(), -1)
	return err
}

// LastTick returns schedule id's last claimed tick.
func (q *Queue) LastTick(ctx context.Context, id string) (time.Time, bool, error) {
	t, ok, err := q.runs.last(ctx, id)
	return time.UnixMicro(t), ok, err
}

// NextRun returns schedule id's next tick.
func (m *Manager) NextRun(id string) time.Time {
	s, _, _ := m.schedule(id)
	return s.Next(time.Now())
}
