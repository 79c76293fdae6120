//go:build !unix

package mysql

// readSocket reads from the socket (see poll.go for Unix).
func (c *bufferedConn) readSocket(p []byte) (int, error) { return c.Conn.Read(p) }
