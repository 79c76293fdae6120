package server

import (
	"fmt"
	"sync"
)

// admission limits the exports streaming at once, per server and per
// client. It never queues: a request over a limit is refused at once, so
// that a client can be told to retry or to use a background job.
type admission struct {
	max, perClient int // ≤ 0: no limit

	mu       sync.Mutex
	total    int
	byClient map[string]int
}

func newAdmission(max, perClient int) *admission {
	return &admission{max: max, perClient: perClient, byClient: map[string]int{}}
}

// acquire takes a slot for client, or returns an error wrapping errBusy.
// A successful acquire must be followed by one release.
func (a *admission) acquire(client string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.max > 0 && a.total >= a.max {
		return fmt.Errorf("%w: the server is streaming its limit of %d exports; retry later or run the export as a background job", errBusy, a.max)
	}
	if a.perClient > 0 && a.byClient[client] >= a.perClient {
		return fmt.Errorf("%w: you are streaming your limit of %d exports at once; retry when one ends or run the export as a background job", errBusy, a.perClient)
	}
	a.total++
	a.byClient[client]++
	return nil
}

func (a *admission) release(client string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	if a.byClient[client]--; a.byClient[client] <= 0 {
		delete(a.byClient, client)
	}
}

func (a *admission) active() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.total
}
