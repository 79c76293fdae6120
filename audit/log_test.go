package audit_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/exportd/exportd/audit"
)

// A server's text-format log with the audit lines among its own: each
// audit line is one JSON object, and VerifyAgainstLog reads them back,
// skipping the text lines, and still finds the newest records cut off.
func testLogAmongText(t *testing.T, b backend) {
	log := &syncBuffer{}
	server := slog.New(slog.NewTextHandler(log, nil))
	s := b.open(t, "text", audit.Options{Keys: keys(t), Log: log})
	for i := 1; i <= 5; i++ {
		server.Info("export", "dataset", "members", "client", "203.0.113.7")
		if err := s.Append(t.Context(), record(i)); err != nil {
			t.Fatal(err)
		}
		server.Warn("audit prune", "error", `no "export audit" here`)
	}
	audits := 0
	for _, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		if strings.Contains(line, `"export audit"`) {
			audits++
			if !json.Valid([]byte(line)) {
				t.Errorf("audit line is not one JSON object: %s", line)
			}
		}
	}
	if audits != 5 {
		t.Fatalf("%d audit lines, want 5:\n%s", audits, log)
	}
	ls, err := s.VerifyAgainstLog(t.Context(), strings.NewReader(log.String()))
	if err != nil || ls.Logged != 5 || ls.Compared != 5 || ls.Lines != 15 {
		t.Fatalf("VerifyAgainstLog = %+v, %v; want 5 of 15 lines compared", ls, err)
	}
	// journalctl's short output puts a prefix before each line
	var prefixed strings.Builder
	for line := range strings.SplitSeq(strings.TrimSpace(log.String()), "\n") {
		fmt.Fprintf(&prefixed, "Oct 01 09:00:00 host exportd[4242]: %s\n", line)
	}
	if ls, err := s.VerifyAgainstLog(t.Context(), strings.NewReader(prefixed.String())); err != nil || ls.Compared != 5 {
		t.Fatalf("prefixed: VerifyAgainstLog = %+v, %v", ls, err)
	}
	b.exec(t, "text", `DELETE FROM %[1]s WHERE seq > 3`)
	b.exec(t, "text", `UPDATE %[1]s_head SET seq = 3, mac = (SELECT mac FROM %[1]s WHERE seq = 3)`)
	_, err = s.VerifyAgainstLog(t.Context(), strings.NewReader(log.String()))
	wantBroken(t, err, 4, "not in the store")
}

// A log that cannot show anything is an error, not agreement: no audit
// record at all, audit records written in text format, a line cut short.
func testLogUnreadable(t *testing.T, b backend) {
	s, jsonLog := fill(t, b, "unreadable", 3)
	text := &syncBuffer{}
	textLog := slog.New(slog.NewTextHandler(text, nil))
	textLog.Info("serving", "addr", "127.0.0.1:8080")
	for i := 1; i <= 3; i++ {
		r := record(i)
		r.Seq = int64(i)
		textLog.Info("export audit", "audit", r) // what a text-format logger makes of a record
	}
	lines := strings.SplitAfter(jsonLog.String(), "\n")
	cut := lines[0] + lines[1][:len(lines[1])/2] + "\n" + lines[2]
	for _, tc := range []struct {
		name, log string
		want      error
		line      string
	}{
		{"empty", "", audit.ErrNoLogRecords, ""},
		{"no audit line", "time=2026-10-01T09:00:00Z level=INFO msg=serving addr=127.0.0.1:8080\n", audit.ErrNoLogRecords, ""},
		{"text format", text.String(), audit.ErrBadLogLine, "line 2 and 2 more"},
		{"line cut short", cut, audit.ErrBadLogLine, "line 2"},
	} {
		ls, err := s.VerifyAgainstLog(t.Context(), strings.NewReader(tc.log))
		if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.line) {
			t.Errorf("%s: VerifyAgainstLog = %+v, %v; want %v naming %q", tc.name, ls, err, tc.want, tc.line)
		}
	}
	// the same record logged twice with different MACs
	i := strings.Index(lines[0], `"mac":"`) + len(`"mac":"`)
	other := lines[0][:i] + strings.Repeat("0", 64) + lines[0][i+64:]
	_, err := s.VerifyAgainstLog(t.Context(), strings.NewReader(lines[0]+other))
	wantBroken(t, err, 1, "logged twice")
}

// errWriter fails every write.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// A log line that cannot be written is an error of Append; the record is
// stored all the same.
func testLogWriteFails(t *testing.T, b backend) {
	s := b.open(t, "nolog", audit.Options{Keys: keys(t), Log: errWriter{}})
	r := record(1)
	err := s.Append(t.Context(), r)
	if !errors.Is(err, audit.ErrNotLogged) || !strings.Contains(err.Error(), "disk full") || r.Seq != 1 {
		t.Fatalf("Append = %v (seq %d); want ErrNotLogged for record 1", err, r.Seq)
	}
	if sum, err := s.Verify(t.Context()); err != nil || sum.Records != 1 {
		t.Fatalf("Verify = %+v, %v", sum, err)
	}
}
