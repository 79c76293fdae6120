// Package audit keeps the tamper-evident trail of personal-data exports:
// one [Record] per export attempt, allowed or denied (who, with which
// roles, from where, when, which dataset, parameters and columns, for what
// purpose, in which format, how many rows and bytes, the SHA-256 of the
// bytes sent, the outcome and the error).
//
// Records are stored append-only in a SQL database (SQLite, the jobs
// database by default; PostgreSQL when several nodes share the trail) and
// chained: record n carries
//
//	mac_n = HMAC-SHA256(key, canonical(record_n) ‖ mac_{n-1})
//
// where the canonical encoding covers every field, its seq and its key
// id. Someone who can write the database but does not hold the key cannot
// edit, delete, insert or reorder a record without [Store.Verify] naming
// the first record at which the chain breaks. Each record is also written
// as one JSON line carrying its MAC (Options.Log; JSON whatever else is
// written there), against which [Store.VerifyAgainstLog] finds the newest
// records cut off. [Store.Prune]
// removes records past the retention (two years by default) and leaves a
// signed checkpoint the remaining chain verifies from. [Store.Export]
// writes the monthly review file (XLSX or CSV).
//
// An export path records itself in a few lines:
//
//	d := audit.NewDigest(w) // w: the HTTP response or the job's file
//	e.Output = d
//	st, err := e.Run(ctx)
//	rec := &audit.Record{Principal: p.Name, Roles: p.Roles, Client: ip,
//		Dataset: ds.Name, Params: paramsJSON, Columns: plan.Names(),
//		Purpose: purpose, Format: string(f), Rows: st.Rows,
//		Bytes: d.N(), SHA256: d.Sum(), Outcome: audit.OutcomeOf(err)}
//	if err != nil {
//		rec.Error = err.Error()
//	}
//	if aerr := store.Append(ctx, rec); aerr != nil { … }
//
// A denial is appended the same way with Outcome [OutcomeDenied].
//
// # Keys
//
// The HMAC key comes from configuration, hex or base64 ([ParseKeys]).
// Each record stores the id of the key that signed it ([KeyID]), so a key
// can be rotated: list the new key after the old one; new records are
// signed with the last key and the old records still verify as long as
// their key is listed.
//
// # What it does not protect against
//
// Whoever holds the key can rewrite the trail: keep it away from the
// database's administrators. Deleting the newest records and rewinding the
// head row is invisible to Verify alone (the chain that remains is
// valid); it is found against the log lines, which should therefore go to
// a separate system (journald, a log collector).
package audit
