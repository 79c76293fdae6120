package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// startNginx runs nginx (bin) with the shipped deploy/nginx/exportd.conf
// (read from conf), pointed at the exportd of target and with
// proxy_read_timeout 3s for exports, as the end-to-end tests run it. It
// returns target's URL through nginx and a function that stops nginx.
func startNginx(bin, conf, target string) (string, func(), error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", nil, err
	}
	shipped, err := os.ReadFile(conf)
	if err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	l.Close()
	c := string(shipped)
	for _, r := range [][2]string{
		{"server 127.0.0.1:8080;", "server " + u.Host + ";"},
		{"listen 80;", "listen " + addr + ";"},
		{"proxy_read_timeout 60s;", "proxy_read_timeout 3s;"},
	} {
		if strings.Count(c, r[0]) != 1 {
			return "", nil, fmt.Errorf("%s no longer has exactly one %q", conf, r[0])
		}
		c = strings.Replace(c, r[0], r[1], 1)
	}
	dir, err := os.MkdirTemp("", "load-nginx")
	if err != nil {
		return "", nil, err
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	main := fmt.Sprintf(`%s
worker_processes 2;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include %[2]s/exportd.conf;
}
`, user, dir)
	if err := os.WriteFile(filepath.Join(dir, "exportd.conf"), []byte(c), 0o644); err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"),
		"-g", fmt.Sprintf("daemon off; pid %[1]s/nginx.pid; error_log %[1]s/error.log;", dir))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "error.log")); len(b) > 0 {
			fmt.Fprintf(os.Stderr, "nginx error.log (last 2000 bytes):\n%s\n", b[max(0, len(b)-2000):])
		}
		os.RemoveAll(dir)
	}
	for range 100 { // until it listens
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	through := "http://" + addr + "/exports" + u.RequestURI()
	return through, stop, nil
}
