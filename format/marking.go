package format

import (
	"time"
	"unicode/utf8"

	"github.com/exportd/exportd/xlsx"
)

// Mark makes an XLSX file show who exported it and when (a dataset's
// marking: true): in the printed header and footer of every sheet and in
// the document properties (Creator, and a line added to Description).
// Other formats have nowhere to show it and ignore it.
func (o *Options) Mark(who string, at time.Time) {
	if utf8.RuneCountInString(who) > 80 { // Excel takes 255 characters per header
		who = string([]rune(who)[:80]) + "…"
	}
	ts := at.Format("2006-01-02 15:04:05 -07:00")
	line := "내려받은 사람: " + who + " · 시각: " + ts
	o.Properties.Creator = who
	if o.Properties.Description != "" {
		o.Properties.Description += "\n"
	}
	o.Properties.Description += line
	o.HeaderFooter = xlsx.HeaderFooter{
		OddHeader: "&L" + xlsx.HeaderFooterText("내려받은 사람: "+who) + "&R" + xlsx.HeaderFooterText(ts),
		OddFooter: "&L" + xlsx.HeaderFooterText(line) + "&R&P / &N",
	}
}
