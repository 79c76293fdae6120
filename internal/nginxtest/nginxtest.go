// Package nginxtest runs a real nginx with exportd's shipped configuration
// (deploy/nginx/exportd.conf) in front of an exportd, as an operator would
// put it there, for the end-to-end tests and the load benchmark.
package nginxtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Options say where nginx runs and what it fronts.
type Options struct {
	Bin      string // the nginx binary
	Conf     string // the shipped deploy/nginx/exportd.conf
	Upstream string // exportd's host:port (several: "a:1; server b:2")
	Dir      string // nginx's prefix: its configuration, logs and temporary files

	// ReadTimeout replaces the shipped proxy_read_timeout of 60s, so that
	// a test sees within seconds whether exportd's keep-alives hold a
	// silent export open. Empty: 3s.
	ReadTimeout string
	Connections int       // worker_connections; 0: 1024
	AccessLog   bool      // log every request to Dir/access.log
	Output      io.Writer // nginx's own stdout and stderr; nil: Dir/nginx.out
}

// Nginx is a running nginx.
type Nginx struct {
	Addr string // host:port it listens on
	dir  string
	cmd  *exec.Cmd
	out  *os.File // Dir/nginx.out, when Options.Output is nil

	// exited receives the process's end from the goroutine that waits
	// for it, which Start starts and Stop waits for.
	exited chan error
}

// Start writes the configuration into o.Dir, starts nginx in the
// foreground and returns once it accepts connections. The shipped
// configuration must keep exactly one of each line it rewrites: the
// upstream server, the listen address and the exports' read timeout.
func Start(o Options) (*Nginx, error) {
	shipped, err := os.ReadFile(o.Conf)
	if err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	if o.ReadTimeout == "" {
		o.ReadTimeout = "3s"
	}
	conf := string(shipped)
	for _, r := range [][2]string{
		{"server 127.0.0.1:8080;", "server " + o.Upstream + ";"},
		{"listen 80;", "listen " + addr + ";"},
		{"proxy_read_timeout 60s;", "proxy_read_timeout " + o.ReadTimeout + ";"},
	} {
		if strings.Count(conf, r[0]) != 1 {
			return nil, fmt.Errorf("nginx: %s no longer has exactly one %q", o.Conf, r[0])
		}
		conf = strings.Replace(conf, r[0], r[1], 1)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	access := "off"
	if o.AccessLog {
		access = filepath.Join(o.Dir, "access.log")
	}
	main := fmt.Sprintf(`%s
worker_processes 2;
events { worker_connections %d; }
http {
    access_log %s;
    client_body_temp_path %[4]s/body;
    proxy_temp_path %[4]s/proxy;
    fastcgi_temp_path %[4]s/fastcgi;
    uwsgi_temp_path %[4]s/uwsgi;
    scgi_temp_path %[4]s/scgi;
    include %[4]s/exportd.conf;
}
`, user, orDefault(o.Connections, 1024), access, o.Dir)
	if err := os.WriteFile(filepath.Join(o.Dir, "exportd.conf"), []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.Dir, "nginx.conf"), []byte(main), 0o644); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	n := &Nginx{Addr: addr, dir: o.Dir}
	n.cmd = exec.Command(o.Bin, "-p", o.Dir, "-c", filepath.Join(o.Dir, "nginx.conf"),
		"-g", fmt.Sprintf("daemon off; pid %[1]s/nginx.pid; error_log %[1]s/error.log;", o.Dir))
	if o.Output != nil {
		n.cmd.Stdout, n.cmd.Stderr = o.Output, o.Output
	} else {
		if n.out, err = os.Create(filepath.Join(o.Dir, "nginx.out")); err != nil {
			return nil, fmt.Errorf("nginx: %w", err)
		}
		n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	}
	if err := n.cmd.Start(); err != nil {
		n.closeOut()
		return nil, fmt.Errorf("nginx: %w", err)
	}
	n.exited = make(chan error, 1)
	go func() { n.exited <- n.cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return n, nil
		}
		select {
		case err := <-n.exited:
			n.closeOut()
			return nil, fmt.Errorf("nginx exited before listening (%v): %s", err, n.ErrorLog(2000))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.Stop()
			return nil, errors.New("nginx: not listening after 10s: " + n.ErrorLog(2000))
		}
	}
}

func orDefault(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// Stop asks nginx to finish its requests and quit (SIGQUIT), and kills it
// after 10 seconds.
func (n *Nginx) Stop() {
	n.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		<-n.exited
	}
	n.closeOut()
}

func (n *Nginx) closeOut() {
	if n.out != nil {
		n.out.Close()
	}
}

// ErrorLog returns the last max bytes of nginx's error log.
func (n *Nginx) ErrorLog(limit int) string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	return string(b[len(b)-min(len(b), limit):])
}
