//go:build unix

package mysql

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection, the first
// read through a bufferedConn as the source reads its database.
func tcpPair(t *testing.T) (*bufferedConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	c := &bufferedConn{Conn: nc}
	t.Cleanup(func() { nc.Close(); peer.Close() })
	return c, peer
}

// Bytes sent in bursts, some within the poll(2) wait and some after it,
// arrive whole and in order, and the peer's close is io.EOF.
func TestReadSocketBursts(t *testing.T) {
	c, peer := tcpPair(t)
	var want bytes.Buffer
	chunks := make([][]byte, 20)
	for i := range chunks {
		chunks[i] = bytes.Repeat([]byte{byte('a' + i)}, 1000*(i+1))
		want.Write(chunks[i])
	}
	go func() {
		for i, chunk := range chunks {
			peer.Write(chunk)
			switch i % 3 {
			case 1:
				time.Sleep(2 * time.Millisecond) // inside the poll(2) wait
			case 2:
				time.Sleep(3 * pollWait * time.Millisecond) // past it: the read parks
			}
		}
		peer.Close()
	}()
	var got bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := c.readSocket(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("a read returned no bytes and no error")
		}
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Errorf("read %d bytes, want the %d sent", got.Len(), want.Len())
	}
}

// A read deadline still ends a read that waits: as a timeout, soon after
// the deadline (the poll(2) wait adds at most pollWait).
func TestReadSocketDeadline(t *testing.T) {
	c, _ := tcpPair(t)
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := c.readSocket(make([]byte, 16))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the read ended %v after it began, deadline 50ms", d)
	}
}

// Closing the connection ends a read that waits, with net.ErrClosed.
func TestReadSocketClose(t *testing.T) {
	c, _ := tcpPair(t)
	done := make(chan error, 1)
	go func() {
		_, err := c.readSocket(make([]byte, 16))
		done <- err
	}()
	time.Sleep(3 * pollWait * time.Millisecond) // the read has parked
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("read on a closed connection: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the read went on after Close")
	}
}

// A peer that resets the connection is an error naming the read, as
// net.Conn's own Read reports it.
func TestReadSocketReset(t *testing.T) {
	c, peer := tcpPair(t)
	peer.(*net.TCPConn).SetLinger(0)
	peer.Close() // RST
	time.Sleep(10 * time.Millisecond)
	_, err := c.readSocket(make([]byte, 16))
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Errorf("read after a reset: %v, want a read *net.OpError", err)
	}
}
