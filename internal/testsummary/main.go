// Command testsummary runs `go test -json …` and prints what a plain `go
// test` prints (each package's "ok" or "FAIL" line, and the output of
// every failed test), then a summary of the skipped tests grouped by
// reason, with the environment variable or package that turns each group
// on. It exits with go test's exit status.
//
//	go run ./internal/testsummary go test -json -race ./...
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testsummary go test -json [flags] [packages]")
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stderr = os.Stdin, os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	// Ctrl-C reaches go test too (the same process group): let it end
	// and report, and exit with its status.
	signal.Ignore(os.Interrupt, syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	s := newSummary(os.Stdout)
	readErr := s.read(out)
	err = cmd.Wait()
	s.printSkips()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		os.Exit(exit.ExitCode())
	case err != nil:
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	case readErr != nil:
		fmt.Fprintln(os.Stderr, "testsummary:", readErr)
		os.Exit(1)
	case s.failed:
		os.Exit(1) // go test says a test failed but exited 0: never pass that
	}
}

// event is one line of go test -json (see go doc test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type skip struct{ pkg, test, reason string }

type summary struct {
	w       io.Writer
	pending map[string][]string // output of running tests, by package and test
	skips   []skip
	failed  bool
}

func newSummary(w io.Writer) *summary { return &summary{w: w, pending: map[string][]string{}} }

// read handles go test's output up to its end.
func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		s.line(sc.Bytes())
	}
	return sc.Err()
}

func (s *summary) line(b []byte) {
	var e event
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &e) != nil || e.Action == "" {
		fmt.Fprintf(s.w, "%s\n", b) // not an event: pass it on
		return
	}
	key := e.Package + "\x00" + e.Test
	switch {
	case e.Action == "build-output":
		io.WriteString(s.w, e.Output)
	case e.Action == "output" && e.Test == "":
		// The package's own lines: "ok  pkg 1.2s", "FAIL pkg", a panic
		// outside a test. "PASS" alone is -v noise.
		if e.Output != "PASS\n" {
			io.WriteString(s.w, e.Output)
		}
	case e.Action == "output":
		s.pending[key] = append(s.pending[key], e.Output)
	case e.Action == "fail" && e.Test != "":
		s.failed = true
		s.flush(key)
	case e.Action == "fail":
		s.failed = true
		// A package that failed outside its tests (a panic, a timeout):
		// show what its unfinished tests printed.
		var left []string
		for k := range s.pending {
			if strings.HasPrefix(k, e.Package+"\x00") {
				left = append(left, k)
			}
		}
		sort.Strings(left)
		for _, k := range left {
			s.flush(k)
		}
	case e.Action == "skip" && e.Test != "":
		s.skips = append(s.skips, skip{e.Package, e.Test, skipReason(s.pending[key])})
		delete(s.pending, key)
	case e.Action == "pass":
		delete(s.pending, key)
	}
}

func (s *summary) flush(key string) {
	for _, o := range s.pending[key] {
		if !strings.HasPrefix(o, "=== ") {
			io.WriteString(s.w, o)
		}
	}
	delete(s.pending, key)
}

// logLine is a t.Log/t.Skip line: "    file_test.go:42: message".
var logLine = regexp.MustCompile(`^\s+[\w.-]+\.go:\d+: (.*)$`)

// skipReason returns the message a skipped test gave, from its output.
func skipReason(output []string) string {
	reason := ""
	for _, o := range output {
		if m := logLine.FindStringSubmatch(strings.TrimRight(o, "\n")); m != nil {
			reason = m[1] // the last logged line is the Skip's
		}
	}
	if reason == "" {
		return "(no reason given)"
	}
	return reason
}

// A group of skips: what is missing and what turns it on.
type group struct {
	title, enable string
	match         *regexp.Regexp
}

// groups are checked in order; a skip matching none is grouped by its
// own message.
var groups = []group{
	{"PostgreSQL", "EXPORTD_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'", regexp.MustCompile(`EXPORTD_POSTGRES_URL`)},
	{"MariaDB/MySQL", "EXPORTD_MYSQL_URL='mysql://root@127.0.0.1:3306/test'", regexp.MustCompile(`EXPORTD_MYSQL_URL`)},
	{"nginx", "EXPORTD_NGINX=/usr/sbin/nginx (apt-get install nginx)", regexp.MustCompile(`EXPORTD_NGINX|nginx`)},
	{"Chromium", "EXPORTD_CHROMIUM=/usr/bin/chromium (apt-get install chromium)", regexp.MustCompile(`EXPORTD_CHROMIUM|[Cc]hromium`)},
	{"systemd-analyze", "EXPORTD_SYSTEMD_ANALYZE=/usr/bin/systemd-analyze (apt-get install systemd)", regexp.MustCompile(`EXPORTD_SYSTEMD_ANALYZE`)},
	{"Mailpit (SMTP server)", "EXPORTD_MAILPIT=$HOME/go/bin/mailpit (go install github.com/axllent/mailpit@v1.33.1)", regexp.MustCompile(`EXPORTD_MAILPIT`)},
	{"LibreOffice", "apt-get install libreoffice-calc-nogui python3-uno", regexp.MustCompile(`soffice|[Ll]ibre[Oo]ffice|uno`)},
	{"Python modules", "apt-get install python3-openpyxl python3-msoffcrypto-tool", regexp.MustCompile(`python|openpyxl|msoffcrypto`)},
	{"git", "apt-get install git, in a git checkout", regexp.MustCompile(`\bgit\b`)},
	{"long tests", "make test (without -short)", regexp.MustCompile(`-short`)},
}

// printSkips prints the skipped tests grouped by what they need.
func (s *summary) printSkips() {
	if len(s.skips) == 0 {
		fmt.Fprintln(s.w, "\nNo test was skipped.")
		return
	}
	type bucket struct {
		group
		reasons map[string]bool
		pkgs    map[string]int
		n       int
	}
	var order []string
	buckets := map[string]*bucket{}
	for _, sk := range s.skips {
		g := group{title: sk.reason}
		for _, cand := range groups {
			if cand.match.MatchString(sk.reason) {
				g = cand
				break
			}
		}
		b := buckets[g.title]
		if b == nil {
			b = &bucket{group: g, reasons: map[string]bool{}, pkgs: map[string]int{}}
			buckets[g.title] = b
			order = append(order, g.title)
		}
		b.n++
		b.reasons[sk.reason] = true
		b.pkgs[sk.pkg]++
	}
	fmt.Fprintf(s.w, "\n%d tests skipped:\n", len(s.skips))
	for _, title := range order {
		b := buckets[title]
		pkgs := make([]string, 0, len(b.pkgs))
		for p, n := range b.pkgs {
			pkgs = append(pkgs, fmt.Sprintf("%s %d", p, n))
		}
		sort.Strings(pkgs)
		fmt.Fprintf(s.w, "  %3d  %s (%s)\n", b.n, b.title, strings.Join(pkgs, ", "))
		reasons := make([]string, 0, len(b.reasons))
		for r := range b.reasons {
			reasons = append(reasons, r)
		}
		slices.Sort(reasons)
		if b.enable != "" {
			for _, r := range reasons {
				fmt.Fprintf(s.w, "         why: %s\n", r)
			}
			fmt.Fprintf(s.w, "         on:  %s\n", b.enable)
		}
	}
}
