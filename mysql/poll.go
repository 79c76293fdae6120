//go:build unix

package mysql

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// pollWait is how long, in milliseconds, readSocket waits for data in
// poll(2) before it leaves the wait to Go's scheduler.
const pollWait = 10

// polling is set while a reader waits in poll(2): one at a time.
var polling atomic.Bool

// readSocket reads from the socket like net.Conn's Read does, except when
// nothing is waiting to be read: then it first waits in poll(2), on this
// goroutine's thread, for up to pollWait, and parks the goroutine only if
// nothing came.
//
// A result set arrives in bursts that the reader drains faster than the
// database sends them: at a million rows it found the socket empty about
// 5,000 times. Parked on the scheduler, each of those waits woke other
// threads to look for work and sysmon to watch the wake-up; on a machine
// whose cores the database shares, that churn took CPU from the database
// the export waits for (MariaDB → CSV 1.13-1.17× its own client's time,
// 1.04-1.09× with the waits in poll(2); the reader's CPU down by a sixth).
//
// One reader at a time waits so: a thread blocked in poll(2) keeps its
// processor until sysmon takes it back, which costs nothing while one
// stream has the process to itself (the command line, a quiet server) but
// would hold processors that many concurrent exports need; the others park
// at once, as before. The read deadline and Close still apply: the wait in
// poll(2) is bounded, and after it the read parks as usual, where both are
// checked.
func (c *bufferedConn) readSocket(p []byte) (int, error) {
	if c.raw == nil {
		sc, ok := c.Conn.(syscall.Conn)
		if !ok {
			return c.Conn.Read(p)
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			return c.Conn.Read(p)
		}
		c.raw = raw
	}
	var n int
	var rerr error
	read := func(fd int) {
		for {
			if n, rerr = unix.Read(fd, p); rerr != unix.EINTR {
				return
			}
		}
	}
	err := c.raw.Read(func(fd uintptr) bool {
		read(int(fd))
		if rerr != unix.EAGAIN {
			return true
		}
		if !polling.CompareAndSwap(false, true) {
			return false // another reader waits in poll(2): park
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		k, _ := unix.Poll(fds, pollWait)
		polling.Store(false)
		if k <= 0 {
			return false // nothing came (or a signal): park
		}
		read(int(fd))
		return rerr != unix.EAGAIN
	})
	if err == nil && rerr != nil {
		err = os.NewSyscallError("read", rerr)
	}
	switch {
	case err != nil:
		// As net.Conn's Read reports its errors.
		return 0, &net.OpError{Op: "read", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}
