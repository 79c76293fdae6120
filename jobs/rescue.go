package jobs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"

	"github.com/exportd/exportd"
)

// How jobs come back after a node dies.
//
// Every node runs its River client under a stable id (Config.NodeID) and
// keeps a row in the queue database's node table: its id, the instance
// now running under it (a restart is a new instance, with its start
// time) and a heartbeat every NodeTimeout/6. River's elected leader looks
// at the running jobs every heartbeat; an attempt is dead, and its job is
// made available again at once, when
//
//   - the node it runs on has started again since the attempt began
//     (killed and restarted: found at the next look of the leader or of
//     the restarted node itself), or
//   - the node's heartbeat has not moved for NodeTimeout, as watched by
//     the leader itself (so a leader that has just been elected, or the
//     database coming back after an outage, gives every node a full
//     NodeTimeout to be heard from again).
//
// A node that cannot write its heartbeat for NodeTimeout/2 cancels its own
// running jobs first: by the time another node runs one of them again,
// the old attempt has stopped and cannot publish a result. What a dead
// attempt left in the storage (a temporary file, an open S3 multipart
// upload) is discarded when its job is requeued. A job on a node that
// never wrote a heartbeat (an older exportd) is left to River's own
// rescue after RescueAfter.

// Defaults of the node settings.
const (
	DefaultNodeTimeout   = 30 * time.Second
	heartbeatsPerTimeout = 6
)

// errNodeSilent ends the jobs of a node that cannot write its heartbeat.
var errNodeSilent = errors.New("this node could not write its heartbeat: its jobs run again elsewhere")

// DefaultNodeID returns the node id used when Config.NodeID is empty: the
// host name, and suffix (e.g. the listen address) when several nodes may
// run on one host. It is cut to River's 100 characters.
func DefaultNodeID(suffix string) string {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	id := host
	if suffix != "" {
		id += "/" + suffix
	}
	if len(id) > 100 {
		h := sha256.Sum256([]byte(id))
		id = id[:83] + "~" + hex.EncodeToString(h[:8])
	}
	return id
}

// nodeState is the manager's side of its node: its instance, its running
// jobs and what the leader has seen of the others.
type nodeState struct {
	instance string
	started  int64 // µs, the database's clock

	mu       sync.Mutex
	running  map[int64]context.CancelCauseFunc // job id → cancels its attempt
	lastBeat time.Time                         // last heartbeat written
	fenced   bool                              // running jobs cancelled for want of a heartbeat

	// Only the heartbeat goroutine uses these.
	seen map[string]seenBeat // node id → its heartbeat as the leader last saw it change

	stop context.CancelFunc
	done chan struct{}
}

type seenBeat struct {
	beat  int64
	since time.Time // when this leader saw the heartbeat change (monotonic)
}

func newInstance() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// trackRunning is River worker middleware: it keeps the cancel function of
// every attempt running on this node, so that a node without heartbeat
// can stop them.
type trackRunning struct {
	river.MiddlewareDefaults
	n *nodeState
}

func (t *trackRunning) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	t.n.mu.Lock()
	t.n.running[job.ID] = cancel
	t.n.mu.Unlock()
	defer func() {
		t.n.mu.Lock()
		delete(t.n.running, job.ID)
		t.n.mu.Unlock()
	}()
	return doInner(ctx)
}

// startNode registers this node's new instance (before its River client
// fetches any job, so that every attempt of an earlier instance started
// before it) and starts the heartbeat goroutine, which Stop ends.
func (m *Manager) startNode(ctx context.Context) error {
	started, err := m.cfg.Queue.nodes.register(ctx, m.cfg.NodeID, m.node.instance)
	if err != nil {
		return err
	}
	m.node.started = started
	m.node.lastBeat = time.Now()
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.node.stop, m.node.done = cancel, make(chan struct{})
	go m.heartbeat(hctx)
	return nil
}

// stopNode ends the heartbeat goroutine.
func (m *Manager) stopNode() {
	if m.node.stop != nil {
		m.node.stop()
		<-m.node.done
	}
}

func (m *Manager) heartbeat(ctx context.Context) {
	defer close(m.node.done)
	every := m.cfg.NodeTimeout / heartbeatsPerTimeout
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.beat(ctx)
		if n, err := m.rescue(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("job rescue", "error", err.Error())
		} else if n > 0 {
			m.log.Info("jobs of dead nodes requeued", "count", n)
		}
	}
}

// beat writes the heartbeat; a node that could not for NodeTimeout/2, or
// whose id another process has taken, cancels its running jobs.
func (m *Manager) beat(ctx context.Context) {
	// A slow write is still a heartbeat (an SQLite queue has one
	// connection, which River's own queries hold at times).
	c, cancel := context.WithTimeout(ctx, m.cfg.NodeTimeout/2)
	ok, err := m.cfg.Queue.nodes.beat(c, m.cfg.NodeID, m.node.instance)
	cancel()
	if ctx.Err() != nil {
		return
	}
	n := &m.node
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case err == nil && ok:
		n.lastBeat, n.fenced = time.Now(), false
		return
	case err == nil:
		m.log.Error("another process runs as this node: node ids must differ between live processes (--jobs-node-id); stopping this node's jobs",
			"node", m.cfg.NodeID)
	case time.Since(n.lastBeat) < m.cfg.NodeTimeout/2:
		m.log.Warn("heartbeat not written", "node", m.cfg.NodeID, "error", err.Error())
		return
	default:
		if !n.fenced {
			m.log.Error("no heartbeat written for too long: stopping this node's jobs (they run again on a live node)",
				"node", m.cfg.NodeID, "since", n.lastBeat.UTC().Format(time.RFC3339), "error", err.Error())
		}
	}
	n.fenced = true
	for _, cancel := range n.running {
		cancel(errNodeSilent)
	}
}

// rescue requeues the jobs whose attempt is dead (see the top of this
// file) and returns how many: on every node, its own jobs of an earlier
// instance (a restarted node need not wait to be elected); on River's
// leader, those of every node.
func (m *Manager) rescue(ctx context.Context) (int, error) {
	q := m.cfg.Queue
	leading := false
	leader, err := q.exec.LeaderGetElectedLeader(ctx, &riverdriver.LeaderGetElectedLeaderParams{Schema: q.schema})
	switch {
	case err == nil:
		leading = leader.LeaderID == m.cfg.NodeID
	case !errors.Is(err, rivertype.ErrNotFound):
		m.node.seen = nil
		return 0, fmt.Errorf("leader: %w", err)
	}
	var nodes map[string]node
	now := time.Now()
	if leading {
		if nodes, err = q.nodes.list(ctx); err != nil {
			m.node.seen = nil
			return 0, err
		}
		if m.node.seen == nil {
			m.node.seen = map[string]seenBeat{}
		}
		for id, nd := range nodes {
			if s, ok := m.node.seen[id]; !ok || s.beat != nd.Heartbeat {
				m.node.seen[id] = seenBeat{beat: nd.Heartbeat, since: now}
			}
		}
	} else {
		m.node.seen = nil // watching starts again when elected
	}
	res, err := m.client.JobList(ctx, river.NewJobListParams().States(rivertype.JobStateRunning).First(10000))
	if err != nil {
		return 0, fmt.Errorf("running jobs: %w", err)
	}
	n := 0
	var errs []error
	for _, job := range res.Jobs {
		if job.AttemptedAt == nil || len(job.AttemptedBy) == 0 {
			continue
		}
		by := job.AttemptedBy[len(job.AttemptedBy)-1]
		nd, ok := nodes[by]
		if by == m.cfg.NodeID {
			nd, ok = node{ID: by, Started: m.node.started}, true
		}
		if !ok {
			continue // not a node of ours (or not leading): River's own rescue
		}
		var why string
		// The start is cut to milliseconds: SQLite's attempt times are.
		started := time.UnixMicro(nd.Started).Truncate(time.Millisecond)
		switch {
		case job.AttemptedAt.Before(started):
			why = fmt.Sprintf("node %s restarted during attempt %d", by, job.Attempt)
		case leading && by != m.cfg.NodeID && now.Sub(m.node.seen[by].since) >= m.cfg.NodeTimeout:
			why = fmt.Sprintf("node %s silent for %s during attempt %d", by, now.Sub(m.node.seen[by].since).Round(time.Second), job.Attempt)
		default:
			continue
		}
		if err := m.requeue(ctx, job, why); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// requeue makes a running job whose attempt is dead available again (or
// discards it when it has no attempts left, as River does), provided it
// is still in that attempt, and discards what the attempt left in the
// storage.
func (m *Manager) requeue(ctx context.Context, job *rivertype.JobRow, why string) error {
	now := time.Now().UTC()
	state, finalized := rivertype.JobStateAvailable, (*time.Time)(nil)
	if job.Attempt >= job.MaxAttempts {
		state, finalized = rivertype.JobStateDiscarded, &now
	}
	msg, err := json.Marshal(rivertype.AttemptError{At: now, Attempt: job.Attempt, Error: why + "; the job runs again"})
	if err != nil {
		return err
	}
	// Only this attempt: River's rescue query changes a job that is still
	// running and began before the horizon.
	horizon := job.AttemptedAt.Add(time.Millisecond)
	if m.cfg.Queue.name == "postgres" {
		horizon = job.AttemptedAt.Add(time.Microsecond)
	}
	if _, err := m.cfg.Queue.exec.JobRescueMany(ctx, &riverdriver.JobRescueManyParams{
		ID: []int64{job.ID}, Error: [][]byte{msg}, FinalizedAt: []*time.Time{finalized}, ScheduledAt: []time.Time{now},
		State: []string{string(state)}, Schema: m.cfg.Queue.schema, StuckHorizon: horizon,
	}); err != nil {
		return fmt.Errorf("job %d: requeue: %w", job.ID, err)
	}
	m.log.Warn("job requeued", "job", job.ID, "attempt", job.Attempt, "kind", job.Kind, "reason", why, "state", string(state))
	if job.Kind != exportKind {
		return nil
	}
	var args exportArgs
	if err := json.Unmarshal(job.EncodedArgs, &args); err != nil {
		return nil
	}
	f, err := exportd.ParseFormat(args.Format)
	if err != nil {
		return nil
	}
	key := resultKey(job.ID, args.UID, job.Attempt, f)
	if err := m.cfg.Storage.Discard(ctx, key); err != nil {
		return fmt.Errorf("job %d: discard the dead attempt's result: %w", job.ID, err)
	}
	return nil
}

// resultKey is where attempt of job id, whose identity is uid, writes its
// result: results/{id}/{attempt}-{uid}.{ext}. The identity keeps a job of
// a recreated queue, which may get an old job's id, from writing over (or
// discarding) that job's result. Jobs queued before they had an identity
// write results/{id}/{attempt}.{ext}.
func resultKey(id int64, uid string, attempt int, f exportd.Format) string {
	if uid == "" {
		return fmt.Sprintf("%s%d/%d.%s", resultPrefix, id, attempt, f)
	}
	return fmt.Sprintf("%s%d/%d-%s.%s", resultPrefix, id, attempt, uid, f)
}

// deadUpload reports whether the unfinished upload under key, last written
// age ago, belongs to no running attempt: its job is gone, finished, or in
// another attempt. An upload younger than NodeTimeout is left alone (its
// attempt may have just ended and be cleaning up).
func (m *Manager) deadUpload(ctx context.Context, key string, age time.Duration) bool {
	if age < m.cfg.NodeTimeout {
		return false
	}
	rest, ok := strings.CutPrefix(key, resultPrefix)
	if !ok {
		return false
	}
	id, file, _ := strings.Cut(rest, "/")
	file, _, _ = strings.Cut(file, ".")
	attempt, uid, _ := strings.Cut(file, "-")
	jobID, err1 := strconv.ParseInt(id, 10, 64)
	n, err2 := strconv.Atoi(attempt)
	if err1 != nil || err2 != nil {
		return age >= m.cfg.RescueAfter // not a job's: only when very old
	}
	row, err := m.client.JobGet(ctx, jobID)
	if errors.Is(err, rivertype.ErrNotFound) {
		return true
	}
	if err != nil {
		return false
	}
	var args exportArgs
	if uid != "" && (json.Unmarshal(row.EncodedArgs, &args) != nil || args.UID != uid) {
		return true // another job's (a recreated queue gave the id again)
	}
	return row.State != rivertype.JobStateRunning || row.Attempt != n
}
