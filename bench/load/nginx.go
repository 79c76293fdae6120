package main

import (
	"net/url"
	"os"

	"github.com/exportd/exportd/internal/nginxtest"
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
	dir, err := os.MkdirTemp("", "load-nginx")
	if err != nil {
		return "", nil, err
	}
	n, err := nginxtest.Start(nginxtest.Options{
		Bin: bin, Conf: conf, Upstream: u.Host, Dir: dir, Connections: 4096, Output: os.Stderr,
	})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	stop := func() {
		n.Stop()
		if log := n.ErrorLog(2000); log != "" {
			os.Stderr.WriteString("nginx error.log (last 2000 bytes):\n" + log + "\n")
		}
		os.RemoveAll(dir)
	}
	return "http://" + n.Addr + "/exports" + u.RequestURI(), stop, nil
}
