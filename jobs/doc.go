// Package jobs runs exports in the background: a queue on River (SQLite
// for one node, PostgreSQL shared by several), a worker that runs the
// export engine into result storage (package storage: a local directory
// or S3), progress every node can read, expiring signed download links
// and the retention sweep.
//
// A job belongs to the principal that submitted it; identical requests in
// flight (same principal, dataset, bound parameters and format) join one
// job. An attempt writes its result under a key of its own and commits it
// only when the export succeeded, so a partial file is never served; a
// failed attempt is retried with backoff (Config.RetryBackoff). A job
// whose node was killed runs again as soon as the node is back, or on
// another node once the dead one has been silent for NodeTimeout (see
// rescue.go); what the dead attempt left in the storage is discarded. A new
// attempt counts its rows from 0 again: progress goes forward as
// (Job.Attempt, Job.Rows). Once the retention sweep has deleted a result,
// its job shows "expired".
//
//	q, _ := jobs.OpenQueue(ctx, "sqlite:exportd-jobs.db")
//	st, _ := storage.Open(ctx, "file:///var/lib/exportd/results")
//	m, _ := jobs.New(jobs.Config{Datasets: cfg, Sources: sources, Queue: q, Storage: st, Links: keys})
//	m.Start(ctx)
//	defer m.Stop(ctx)
//	job, joined, err := m.Submit(ctx, jobs.Request{Owner: "kim", Dataset: "accounts", Format: exportd.FormatXLSX})
//
// The HTTP API is in package server (server/jobs.go).
package jobs
