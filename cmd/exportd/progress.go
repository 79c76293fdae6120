package main

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/exportd/exportd"
)

// progress draws a progress bar of rows (with rows/s and bytes) on a terminal.
type progress struct {
	bar   *progressbar.ProgressBar
	total int64
}

func newProgress(w io.Writer) *progress {
	return &progress{bar: progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetItsString("rows"),
		progressbar.OptionShowIts(),
		progressbar.OptionShowCount(),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	), total: -1}
}

func (p *progress) update(pr exportd.Progress) {
	if pr.Total > 0 && p.total != pr.Total {
		p.total = pr.Total
		p.bar.ChangeMax64(pr.Total)
	}
	p.bar.Describe(fmt.Sprintf("exporting · %s", humanBytes(pr.Bytes)))
	_ = p.bar.Set64(pr.Rows)
}

func (p *progress) finish(pr exportd.Progress, ok bool) {
	p.update(pr)
	if ok {
		_ = p.bar.Finish()
	} else {
		_ = p.bar.Exit()
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
