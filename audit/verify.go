package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"
)

// ErrTampered is wrapped by every error that reports a broken chain.
var ErrTampered = errors.New("audit trail does not verify")

// ChainError names the first record at which the chain breaks.
type ChainError struct {
	Seq        int64  // the record (or, with Checkpoint, the checkpoint's seq)
	Reason     string // what is wrong
	Checkpoint bool   // the checkpoint itself does not verify
}

func (e *ChainError) Error() string {
	if e.Checkpoint {
		return fmt.Sprintf("audit checkpoint (seq %d): %s", e.Seq, e.Reason)
	}
	return fmt.Sprintf("audit record %d: %s", e.Seq, e.Reason)
}

// Unwrap returns ErrTampered.
func (e *ChainError) Unwrap() error { return ErrTampered }

// Summary describes a verified trail.
type Summary struct {
	Records    int64 // records verified
	First      int64 // seq of the first record (0 when none)
	Last       int64 // seq of the last record (0 when none)
	Checkpoint int64 // seq of the checkpoint the chain starts from (0: nothing pruned)

	// StartedWithoutOutcome are the started records ([OutcomeStarted])
	// that no outcome record completes, in seq order: exports that were
	// allowed and may have sent data, but whose end is not recorded (still
	// running, or the process died, or the outcome could not be written).
	// They are facts to review, not a broken chain.
	StartedWithoutOutcome []Record
}

// Verify checks the whole chain, from the checkpoint to the newest record,
// and returns a *ChainError (wrapping ErrTampered) naming the first broken
// record:
//
//   - an edited record: "MAC mismatch" at that record (the MAC covers every
//     field, the seq and the key id);
//   - a deleted record k: "missing" at k, the first absent seq (record k+1
//     is present, its seq is not the one expected); with the seqs renumbered
//     to hide the gap, a MAC mismatch at k instead;
//   - reordered or swapped content: a MAC mismatch at the first of the
//     records involved (the MAC covers the seq, so content moved to another
//     seq no longer verifies);
//   - an edited or forged checkpoint: a signature mismatch at the checkpoint;
//   - deleted newest records with the head row left as it was: "missing" at
//     the first deleted seq. Someone who also rewinds the head row to an
//     older record goes unnoticed here: [Store.VerifyAgainstLog] finds it.
//
// A started record ([OutcomeStarted]) that no outcome record completes is
// not an error: it is listed in Summary.StartedWithoutOutcome. An outcome
// record whose Ref names no started record awaiting its outcome is (it can
// only be written around Append).
//
// Verify reads a consistent snapshot; appends go on meanwhile.
func (s *Store) Verify(ctx context.Context) (Summary, error) {
	var sum Summary
	err := s.locked(ctx, true, func(q querier) error {
		h, err := s.readHead(ctx, q, false)
		if err != nil {
			return err
		}
		var lastMAC MAC
		sum, lastMAC, err = s.verify(ctx, q, h, h.seq)
		if err != nil {
			return err
		}
		switch {
		case sum.Last < h.seq:
			return &ChainError{Seq: sum.Last + 1, Reason: fmt.Sprintf("missing (the head is record %d): the newest records were deleted", h.seq)}
		case sum.Last > h.seq:
			return &ChainError{Seq: h.seq + 1, Reason: fmt.Sprintf("after the head (record %d)", h.seq)}
		case !hmac.Equal(lastMAC, h.mac):
			return &ChainError{Seq: h.seq, Reason: "MAC differs from the head's"}
		}
		return nil
	})
	return sum, err
}

// verify checks the checkpoint of h and the records after it up to seq
// upTo, the last of which it returns the MAC of (the checkpoint's when
// there is none).
func (s *Store) verify(ctx context.Context, q querier, h headRow, upTo int64) (Summary, MAC, error) {
	sum := Summary{Checkpoint: h.ck.Seq}
	if err := s.verifyCheckpoint(h.ck); err != nil {
		return sum, nil, err
	}
	rows, err := q.QueryContext(ctx, "SELECT "+s.columns+" FROM "+s.table+" WHERE seq <= ? ORDER BY seq", upTo)
	if err != nil {
		return sum, nil, fmt.Errorf("audit: read records: %w", err)
	}
	defer rows.Close()
	want, prev := h.ck.Seq+1, h.ck.MAC
	open := map[int64]Record{} // started records awaiting their outcome
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return sum, nil, err
		}
		switch {
		case r.Seq < want:
			return sum, nil, &ChainError{Seq: r.Seq, Reason: fmt.Sprintf("before the checkpoint (record %d)", h.ck.Seq)}
		case r.Seq > want:
			return sum, nil, &ChainError{Seq: want, Reason: fmt.Sprintf("missing (record %d follows record %d)", r.Seq, want-1)}
		}
		key, err := s.keys.key(r.KeyID)
		if err != nil {
			return sum, nil, fmt.Errorf("audit record %d: %w", r.Seq, err)
		}
		if !hmac.Equal(computeMAC(key, &r, prev), r.MAC) {
			if !hmac.Equal(r.PrevMAC, prev) {
				return sum, nil, &ChainError{Seq: r.Seq, Reason: "MAC mismatch: prev_mac does not match the previous record (deleted, reordered or edited)"}
			}
			return sum, nil, &ChainError{Seq: r.Seq, Reason: "MAC mismatch (edited, reordered or signed with another key)"}
		}
		if !hmac.Equal(r.PrevMAC, prev) {
			// the MAC covers the chained value, not the stored column
			return sum, nil, &ChainError{Seq: r.Seq, Reason: "prev_mac column edited"}
		}
		switch {
		case r.Outcome == OutcomeStarted:
			open[r.Seq] = r
		case r.Ref > h.ck.Seq:
			if _, ok := open[r.Ref]; !ok || r.Ref >= r.Seq {
				return sum, nil, &ChainError{Seq: r.Seq, Reason: fmt.Sprintf("completes record %d, which is not a started record awaiting its outcome", r.Ref)}
			}
			delete(open, r.Ref)
		}
		if sum.First == 0 {
			sum.First = r.Seq
		}
		sum.Last, sum.Records = r.Seq, sum.Records+1
		want, prev = r.Seq+1, r.MAC
	}
	if err := rows.Err(); err != nil {
		return sum, nil, fmt.Errorf("audit: read records: %w", err)
	}
	if sum.Records == 0 {
		sum.Last = h.ck.Seq
	}
	for _, r := range open {
		sum.StartedWithoutOutcome = append(sum.StartedWithoutOutcome, r)
	}
	slices.SortFunc(sum.StartedWithoutOutcome, func(a, b Record) int { return cmp.Compare(a.Seq, b.Seq) })
	return sum, prev, nil
}

func (s *Store) verifyCheckpoint(ck Checkpoint) error {
	if ck.Seq == 0 && len(ck.MAC) == 0 && ck.KeyID == "" && len(ck.Sig) == 0 && ck.Before.UnixMicro() == 0 {
		return nil // nothing pruned yet
	}
	key, err := s.keys.key(ck.KeyID)
	if err != nil {
		if errors.Is(err, ErrNoKey) && s.keys.current != "" {
			return &ChainError{Seq: ck.Seq, Checkpoint: true, Reason: fmt.Sprintf("unknown key %q", ck.KeyID)}
		}
		return err
	}
	if !hmac.Equal(ck.sign(key), ck.Sig) {
		return &ChainError{Seq: ck.Seq, Checkpoint: true, Reason: "signature mismatch (the checkpoint was edited)"}
	}
	return nil
}

// LogSummary describes a comparison of the trail with a log.
type LogSummary struct {
	Lines    int // lines read
	Logged   int // audit records found in the log
	Compared int // of those, found in the trail with the same MAC
	Pruned   int // of those, at or before the checkpoint: pruned, not compared
}

// ErrNoLogRecords is returned by VerifyAgainstLog when the log holds no
// audit record: comparing nothing proves nothing (the wrong file, or a log
// whose audit lines were not written as JSON).
var ErrNoLogRecords = errors.New("the log holds no audit record")

// ErrBadLogLine is wrapped by the error of VerifyAgainstLog when lines of
// the log name an audit record but are not one: a log written in text
// format, or a line cut or edited.
var ErrBadLogLine = errors.New("log lines look like audit records but are not JSON audit lines")

// VerifyAgainstLog compares the trail with the log lines of its records
// (Options.Log): each logged record newer than the checkpoint must be in
// the store with the same MAC. It finds what Verify cannot: the newest
// records deleted together with a rewound head row. Records stored but
// not logged (a crash between the commit and the log line, a rotated log)
// are not an error.
//
// The log may hold other lines (a server's log, in text or JSON): they are
// skipped. A line may carry a prefix before its JSON object (a timestamp,
// journalctl's short output). A line naming an audit record ("export
// audit") that is not one is not skipped silently: after the comparison
// it is an error wrapping ErrBadLogLine, with the line's number. A log
// without any audit record is ErrNoLogRecords. A record that is missing
// or differs is a *ChainError naming the first one.
func (s *Store) VerifyAgainstLog(ctx context.Context, log io.Reader) (LogSummary, error) {
	var (
		sum     LogSummary
		logged  = map[int64]MAC{}
		bad     []int // line numbers
		twice   *ChainError
		marker  = []byte(`"` + logMessage + `"`)
		scanner = bufio.NewScanner(log)
	)
	scanner.Buffer(nil, 16<<20)
	for scanner.Scan() {
		sum.Lines++
		line := scanner.Bytes()
		if !bytes.Contains(line, marker) {
			continue
		}
		var l struct {
			Msg   string `json:"msg"`
			Audit *struct {
				Seq int64 `json:"seq"`
				MAC MAC   `json:"mac"`
			} `json:"audit"`
		}
		i := bytes.IndexByte(line, '{')
		if i < 0 || json.Unmarshal(line[i:], &l) != nil || l.Msg != logMessage || l.Audit == nil || l.Audit.Seq <= 0 || len(l.Audit.MAC) != 32 {
			bad = append(bad, sum.Lines)
			continue
		}
		if prev, ok := logged[l.Audit.Seq]; ok && !hmac.Equal(prev, l.Audit.MAC) && twice == nil {
			twice = &ChainError{Seq: l.Audit.Seq, Reason: "logged twice with different MACs"}
		}
		logged[l.Audit.Seq] = l.Audit.MAC
	}
	if err := scanner.Err(); err != nil {
		return sum, fmt.Errorf("audit: read log: %w", err)
	}
	sum.Logged = len(logged)
	if twice != nil {
		return sum, twice
	}
	err := s.locked(ctx, true, func(q querier) error {
		h, err := s.readHead(ctx, q, false)
		if err != nil {
			return err
		}
		rows, err := q.QueryContext(ctx, "SELECT seq, mac FROM "+s.table+" ORDER BY seq")
		if err != nil {
			return fmt.Errorf("audit: read records: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				seq int64
				mac string
			)
			if err := rows.Scan(&seq, &mac); err != nil {
				return fmt.Errorf("audit: read records: %w", err)
			}
			want, ok := logged[seq]
			if !ok {
				continue
			}
			if want.String() != mac {
				return &ChainError{Seq: seq, Reason: "MAC differs from the log's"}
			}
			delete(logged, seq)
			sum.Compared++
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("audit: read records: %w", err)
		}
		var missing []int64
		for seq := range logged {
			if seq > h.ck.Seq {
				missing = append(missing, seq)
			} else {
				sum.Pruned++
			}
		}
		if len(missing) > 0 {
			sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
			return &ChainError{Seq: missing[0], Reason: fmt.Sprintf("in the log but not in the store (%d logged records missing)", len(missing))}
		}
		return nil
	})
	switch {
	case err != nil:
		return sum, err
	case len(bad) > 0:
		more := ""
		if len(bad) > 1 {
			more = fmt.Sprintf(" and %d more", len(bad)-1)
		}
		return sum, fmt.Errorf("audit: %w: line %d%s (a log in text format? audit lines are JSON, %s)", ErrBadLogLine, bad[0], more, `"msg":"export audit"`)
	case sum.Logged == 0:
		return sum, fmt.Errorf("audit: %w (%d lines read)", ErrNoLogRecords, sum.Lines)
	}
	return sum, nil
}

// Prune deletes the records older than before and writes a signed
// checkpoint (the seq and MAC of the last deleted record), from which the
// remaining chain verifies. Only a prefix of the chain is deleted: it ends
// before the first record whose time is not older than before (records
// from several nodes are not strictly in time order). The records to delete
// are verified first: Prune refuses (with a *ChainError) to sign a
// checkpoint over a broken chain, which would hide the tampering. It
// returns the number of records deleted.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	key, err := s.keys.key(s.keys.current)
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.locked(ctx, false, func(q querier) error {
		h, err := s.readHead(ctx, q, true)
		if err != nil {
			return err
		}
		var first *int64
		if err := q.QueryRowContext(ctx, "SELECT min(seq) FROM "+s.table+" WHERE time_us >= ?", before.UnixMicro()).Scan(&first); err != nil {
			return fmt.Errorf("audit: prune: %w", err)
		}
		upTo := h.seq
		if first != nil {
			upTo = *first - 1
		}
		if upTo <= h.ck.Seq {
			return s.verifyCheckpoint(h.ck)
		}
		sum, lastMAC, err := s.verify(ctx, q, h, upTo)
		if err != nil {
			return err
		}
		if sum.Last != upTo {
			return &ChainError{Seq: sum.Last + 1, Reason: "missing"}
		}
		res, err := q.ExecContext(ctx, "DELETE FROM "+s.table+" WHERE seq <= ?", upTo)
		if err != nil {
			return fmt.Errorf("audit: prune: %w", err)
		}
		n, _ = res.RowsAffected()
		ck := Checkpoint{Seq: upTo, MAC: lastMAC, Before: before.UTC().Truncate(time.Microsecond), KeyID: s.keys.current}
		ck.Sig = ck.sign(key)
		if _, err := q.ExecContext(ctx, "UPDATE "+s.head+" SET ck_seq = ?, ck_mac = ?, ck_time_us = ?, ck_key_id = ?, ck_sig = ? WHERE id = 1",
			ck.Seq, ck.MAC.String(), ck.Before.UnixMicro(), ck.KeyID, ck.Sig.String()); err != nil {
			return fmt.Errorf("audit: write checkpoint: %w", err)
		}
		return nil
	})
	return n, err
}

// PruneExpired prunes the records older than the retention
// (Options.Retention, DefaultRetention when zero) before now.
func (s *Store) PruneExpired(ctx context.Context, now time.Time) (int64, error) {
	return s.Prune(ctx, now.Add(-s.retention))
}

// Checkpoint returns the current checkpoint (Seq 0 when nothing was pruned).
func (s *Store) Checkpoint(ctx context.Context) (Checkpoint, error) {
	var ck Checkpoint
	err := s.locked(ctx, true, func(q querier) error {
		h, err := s.readHead(ctx, q, false)
		ck = h.ck
		return err
	})
	return ck, err
}
