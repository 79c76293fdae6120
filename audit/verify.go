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
	"strings"
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

// ChainErrors are every problem [Store.Verify] found, in seq order (at
// most maxProblems of them; Total counts them all). errors.As finds the
// first *ChainError in it, errors.Is finds ErrTampered.
type ChainErrors struct {
	Problems []*ChainError
	Total    int
}

// maxProblems is the most problems a ChainErrors holds.
const maxProblems = 1000

func (e *ChainErrors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problems: ", ErrTampered, e.Total)
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Error())
	}
	if more := e.Total - len(e.Problems); more > 0 {
		fmt.Fprintf(&b, "; and %d more", more)
	}
	return b.String()
}

// Unwrap returns the problems, each a *ChainError.
func (e *ChainErrors) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// Verify checks the whole store: the checkpoint and every row of the
// records' table, whatever the head row says. It returns nil, a
// *ChainError when one thing is wrong, or a *ChainErrors naming each of
// several; both wrap ErrTampered, and errors.As finds the first
// *ChainError in either:
//
//   - an edited record: "MAC mismatch" at that record (the MAC covers every
//     field, the seq and the key id);
//   - a deleted record k: "missing" at k, the first absent seq of the gap;
//     with the seqs renumbered to hide the gap, a MAC mismatch at k instead;
//   - reordered or swapped content: a MAC mismatch at each record involved
//     (the MAC covers the seq, so content moved to another seq no longer
//     verifies);
//   - a record that verifies on its own but does not follow the one
//     before it (its prev_mac is another record's MAC): named as such;
//   - a seq stored twice ("duplicate"; "fork" when both copies verify and
//     follow the same record: two histories merged, such as a restored
//     backup appended to);
//   - rows past the head, each named "after the head": a record appended
//     around Append (a copy with the next seq and another principal);
//   - an edited or forged checkpoint: a signature mismatch at the
//     checkpoint; rows at or before it: "before the checkpoint";
//   - deleted newest records with the head row left as it was: "missing" at
//     the first deleted seq. Someone who also rewinds the head row to an
//     older record goes unnoticed here: [Store.VerifyAgainstLog] finds it.
//
// A record whose key is not in the Store's Keys stops the walk with an
// error wrapping ErrNoKey.
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
		var err error
		sum, err = s.verifyAll(ctx, q)
		return err
	})
	return sum, err
}

// verifyAll is Verify within a read transaction.
func (s *Store) verifyAll(ctx context.Context, q querier) (Summary, error) {
	h, err := s.readHead(ctx, q, false)
	if err != nil {
		return Summary{}, err
	}
	w := walker{s: s, h: h, limit: maxProblems}
	sum, err := w.walk(ctx, q, -1)
	if err != nil {
		return sum, err
	}
	switch {
	case w.last < h.seq:
		w.problem(w.last+1, fmt.Sprintf("missing (the head is record %d): the newest records were deleted", h.seq))
	case h.seq > h.ck.Seq && !hmac.Equal(w.headMAC, h.mac):
		w.problem(h.seq, "MAC differs from the head's")
	case h.seq == h.ck.Seq && !hmac.Equal(h.ck.MAC, h.mac):
		w.problem(h.seq, "MAC differs from the head's")
	}
	return sum, w.err()
}

// verify checks the checkpoint of h and the records after it up to seq
// upTo, the last of which it returns the MAC of (the checkpoint's when
// there is none). It stops at the first problem, which it returns as a
// *ChainError.
func (s *Store) verify(ctx context.Context, q querier, h headRow, upTo int64) (Summary, MAC, error) {
	w := walker{s: s, h: h, limit: 1}
	sum, err := w.walk(ctx, q, upTo)
	if err != nil {
		return sum, nil, err
	}
	if err := w.err(); err != nil {
		return sum, nil, err
	}
	return sum, w.prev, nil
}

// walker walks the records of a trail in seq order and collects what is
// wrong with them.
type walker struct {
	s     *Store
	h     headRow
	limit int // stop after this many problems

	problems []*ChainError
	total    int
	last     int64 // seq of the last record of the chain (the checkpoint's before any)
	prev     MAC   // its MAC
	headMAC  MAC   // the MAC of the record at the head's seq
}

func (w *walker) problem(seq int64, reason string) {
	w.total++
	if len(w.problems) < maxProblems {
		w.problems = append(w.problems, &ChainError{Seq: seq, Reason: reason})
	}
}

func (w *walker) full() bool { return w.total >= w.limit }

func (w *walker) err() error {
	switch len(w.problems) {
	case 0:
		return nil
	case 1:
		return w.problems[0]
	}
	return &ChainErrors{Problems: w.problems, Total: w.total}
}

// walk reads the records (those up to seq upTo, or all when upTo < 0).
func (w *walker) walk(ctx context.Context, q querier, upTo int64) (Summary, error) {
	s, h := w.s, w.h
	sum := Summary{Checkpoint: h.ck.Seq}
	if err := s.verifyCheckpoint(h.ck); err != nil {
		var ce *ChainError
		if !errors.As(err, &ce) {
			return sum, err
		}
		w.problems, w.total = append(w.problems, ce), w.total+1
		if w.full() {
			return sum, nil
		}
	}
	query, args := "SELECT "+s.columns+" FROM "+s.table+" ORDER BY seq, time_us, mac", []any(nil)
	if upTo >= 0 {
		query, args = "SELECT "+s.columns+" FROM "+s.table+" WHERE seq <= ? ORDER BY seq, time_us, mac", []any{upTo}
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return sum, fmt.Errorf("audit: read records: %w", err)
	}
	defer rows.Close()
	w.last, w.prev = h.ck.Seq, h.ck.MAC
	var (
		lastBroken bool                 // the last record of the chain was itself reported
		open       = map[int64]Record{} // started records awaiting their outcome
	)
	// the rows come in groups of one seq: more than one is a duplicate or a fork
	var pending []Record
	nextGroup := func() ([]Record, error) {
		g := pending
		pending = nil
		for rows.Next() {
			r, err := scanRecord(rows)
			if err != nil {
				var ce *ChainError
				if !errors.As(err, &ce) {
					return nil, err
				}
				w.problem(ce.Seq, ce.Reason)
				continue
			}
			if len(g) > 0 && r.Seq != g[0].Seq {
				pending = []Record{r}
				return g, nil
			}
			g = append(g, r)
		}
		return g, rows.Err()
	}
	for !w.full() {
		g, err := nextGroup()
		if err != nil {
			return sum, fmt.Errorf("audit: read records: %w", err)
		}
		if len(g) == 0 {
			break
		}
		if g[0].Seq <= h.ck.Seq {
			for _, r := range g {
				w.problem(r.Seq, fmt.Sprintf("before the checkpoint (record %d)", h.ck.Seq))
			}
			continue
		}
		// the record of the chain: the one that follows the chain (and is
		// the head's, at the head), else the first
		keys := make([][]byte, len(g))
		chained := make([]bool, len(g))
		pick := -1
		for i := range g {
			if keys[i], err = s.Keys().key(g[i].KeyID); err != nil {
				return sum, fmt.Errorf("audit record %d: %w", g[i].Seq, err)
			}
			chained[i] = hmac.Equal(computeMAC(keys[i], &g[i], w.prev), g[i].MAC)
			if chained[i] && (pick < 0 || g[i].Seq == h.seq && hmac.Equal(g[i].MAC, h.mac)) {
				pick = i
			}
		}
		if pick < 0 {
			pick = 0
		}
		r, key := g[pick], keys[pick]
		for i := range g {
			if i == pick {
				continue
			}
			if hmac.Equal(computeMAC(keys[i], &g[i], g[i].PrevMAC), g[i].MAC) && hmac.Equal(g[i].PrevMAC, r.PrevMAC) {
				w.problem(r.Seq, fmt.Sprintf("fork: a second record %d that also follows record %d (two histories merged: a restored backup appended to?)", r.Seq, w.last))
			} else {
				w.problem(r.Seq, fmt.Sprintf("duplicate: a second record %d", r.Seq))
			}
		}
		own := hmac.Equal(computeMAC(key, &r, r.PrevMAC), r.MAC) // the record verifies on its own
		gap := r.Seq > w.last+1
		if gap {
			reason := fmt.Sprintf("missing (record %d follows record %d)", r.Seq, w.last)
			if r.Seq > w.last+2 {
				reason = fmt.Sprintf("missing: records %d–%d (record %d follows record %d)", w.last+1, r.Seq-1, r.Seq, w.last)
			}
			w.problem(w.last+1, reason)
		}
		broken := false
		if !chained[pick] {
			switch {
			case own && (gap || lastBroken):
				// the gap, or the broken record before, says it all
			case own:
				broken = true
				w.problem(r.Seq, fmt.Sprintf("does not follow record %d: its prev_mac is another record's MAC (records deleted, reordered or forked)", w.last))
			case !hmac.Equal(r.PrevMAC, w.prev):
				broken = true
				w.problem(r.Seq, "MAC mismatch: prev_mac does not match the previous record (deleted, reordered or edited)")
			default:
				broken = true
				w.problem(r.Seq, "MAC mismatch (edited, reordered or signed with another key)")
			}
		} else if !hmac.Equal(r.PrevMAC, w.prev) {
			// the MAC covers the chained value, not the stored column
			broken = true
			w.problem(r.Seq, "prev_mac column edited")
		}
		if upTo < 0 && r.Seq > h.seq {
			w.problem(r.Seq, fmt.Sprintf("after the head (record %d): not appended through the trail", h.seq))
		}
		switch {
		case r.Outcome == OutcomeStarted:
			open[r.Seq] = r
		case r.Ref > h.ck.Seq:
			if _, ok := open[r.Ref]; !ok || r.Ref >= r.Seq {
				w.problem(r.Seq, fmt.Sprintf("completes record %d, which is not a started record awaiting its outcome", r.Ref))
			}
			delete(open, r.Ref)
		}
		if sum.First == 0 {
			sum.First = r.Seq
		}
		if r.Seq == h.seq {
			w.headMAC = r.MAC
		}
		sum.Last, sum.Records = r.Seq, sum.Records+1
		w.last, w.prev, lastBroken = r.Seq, r.MAC, broken
	}
	if sum.Records == 0 {
		sum.Last = h.ck.Seq
	}
	for _, r := range open {
		sum.StartedWithoutOutcome = append(sum.StartedWithoutOutcome, r)
	}
	slices.SortFunc(sum.StartedWithoutOutcome, func(a, b Record) int { return cmp.Compare(a.Seq, b.Seq) })
	return sum, nil
}

func (s *Store) verifyCheckpoint(ck Checkpoint) error {
	if ck.Seq == 0 && len(ck.MAC) == 0 && ck.KeyID == "" && len(ck.Sig) == 0 && ck.Before.UnixMicro() == 0 {
		return nil // nothing pruned yet
	}
	key, err := s.Keys().key(ck.KeyID)
	if err != nil {
		if errors.Is(err, ErrNoKey) && s.Keys().current != "" {
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
	keys := s.Keys()
	key, err := keys.key(keys.current)
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
		ck := Checkpoint{Seq: upTo, MAC: lastMAC, Before: before.UTC().Truncate(time.Microsecond), KeyID: keys.current}
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
