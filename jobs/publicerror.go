package jobs

import "regexp"

// serverPath matches what names a file on the server in an error: an
// absolute path of two or more elements (/var/lib/exportd/results/7.xlsx,
// C:\exportd\jobs.db) or a file: URL.
var serverPath = regexp.MustCompile(`(?:file:/*)?(?:[A-Za-z]:)?(?:[/\\][\w.@%+~-]+){2,}[/\\]?`)

// publicError returns a job's error as the client may see it: the server's
// paths replaced by "[path]" (the log keeps the full error).
func publicError(msg string) string {
	return serverPath.ReplaceAllString(msg, "[path]")
}
