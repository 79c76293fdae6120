package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// runTableName is the table of the schedules' last ticks, beside River's:
// one row per schedule (dataset/name), the last tick (microseconds since
// 1970) a job has claimed, and that job.
const runTableName = "exportd_schedule_run"

// runTable keeps each schedule's last run in the queue database, so that
// every node agrees which tick has run: the claim of a tick is one
// statement, won by one job only.
type runTable interface {
	// claim records that job runs tick of schedule id, unless a later
	// tick, or this tick by another job, has been claimed; false means
	// the tick is not this job's to run.
	claim(ctx context.Context, id string, tick int64, job int64) (bool, error)
	// last returns the last tick claimed for schedule id (ok false:
	// none yet).
	last(ctx context.Context, id string) (tick int64, ok bool, err error)
	// init records tick as the last of schedule id if it has none.
	init(ctx context.Context, id string, tick int64) error
}

type sqliteRuns struct{ db *sql.DB }

func (r sqliteRuns) create(ctx context.Context) error {
	_, err := r.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+runTableName+` (
		id TEXT PRIMARY KEY, tick INTEGER NOT NULL, job INTEGER NOT NULL)`)
	if err != nil {
		return fmt.Errorf("job queue: schedule table: %w", err)
	}
	return nil
}

func (r sqliteRuns) claim(ctx context.Context, id string, tick, job int64) (bool, error) {
	res, err := r.db.ExecContext(ctx, `INSERT INTO `+runTableName+` (id, tick, job) VALUES (?1, ?2, ?3)
		ON CONFLICT (id) DO UPDATE SET tick = excluded.tick, job = excluded.job
		WHERE `+runTableName+`.tick < excluded.tick OR (`+runTableName+`.tick = excluded.tick AND `+runTableName+`.job = excluded.job)`, id, tick, job)
	if err != nil {
		return false, fmt.Errorf("schedule %s: claim tick: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (r sqliteRuns) last(ctx context.Context, id string) (int64, bool, error) {
	var tick int64
	err := r.db.QueryRowContext(ctx, `SELECT tick FROM `+runTableName+` WHERE id = ?1`, id).Scan(&tick)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("schedule %s: last run: %w", id, err)
	}
	return tick, true, nil
}

func (r sqliteRuns) init(ctx context.Context, id string, tick int64) error {
	if _, err := r.db.ExecContext(ctx, `INSERT INTO `+runTableName+` (id, tick, job) VALUES (?1, ?2, 0) ON CONFLICT (id) DO NOTHING`, id, tick); err != nil {
		return fmt.Errorf("schedule %s: first tick: %w", id, err)
	}
	return nil
}

type pgRuns struct {
	pool  *pgxpool.Pool
	table string // quoted, with its schema
}

func (r pgRuns) create(ctx context.Context) error {
	_, err := r.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+r.table+` (
		id text PRIMARY KEY, tick bigint NOT NULL, job bigint NOT NULL)`)
	if err != nil {
		return fmt.Errorf("job queue: schedule table: %w", err)
	}
	return nil
}

func (r pgRuns) claim(ctx context.Context, id string, tick, job int64) (bool, error) {
	tag, err := r.pool.Exec(ctx, `INSERT INTO `+r.table+` AS t (id, tick, job) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET tick = excluded.tick, job = excluded.job
		WHERE t.tick < excluded.tick OR (t.tick = excluded.tick AND t.job = excluded.job)`, id, tick, job)
	if err != nil {
		return false, fmt.Errorf("schedule %s: claim tick: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

func (r pgRuns) last(ctx context.Context, id string) (int64, bool, error) {
	var tick int64
	err := r.pool.QueryRow(ctx, `SELECT tick FROM `+r.table+` WHERE id = $1`, id).Scan(&tick)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("schedule %s: last run: %w", id, err)
	}
	return tick, true, nil
}

func (r pgRuns) init(ctx context.Context, id string, tick int64) error {
	if _, err := r.pool.Exec(ctx, `INSERT INTO `+r.table+` (id, tick, job) VALUES ($1, $2, 0) ON CONFLICT (id) DO NOTHING`, id, tick); err != nil {
		return fmt.Errorf("schedule %s: first tick: %w", id, err)
	}
	return nil
}
