package server

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// maxRanges is the most byte ranges a download may ask for in one request
// (after overlapping and adjacent ones are merged).
const maxRanges = 5

// errRange is a Range header refused with 416.
type errRange struct{ reason string }

func (e errRange) Error() string { return e.reason }

// limitRanges bounds the Range header of a download of size bytes before
// http.ServeContent answers it, so that a small request cannot ask for an
// amplified multipart answer (the same bytes many times over, a part
// header for each byte): overlapping and adjacent ranges are merged into
// one (the header is rewritten: one range left is a plain 206), a suffix
// of zero bytes (bytes=-0) and more than maxRanges ranges are refused
// with an error for 416. A header it cannot read is left to ServeContent.
func limitRanges(r *http.Request, size int64) error {
	h := r.Header.Get("Range")
	spec, ok := strings.CutPrefix(h, "bytes=")
	if h == "" || !ok {
		return nil
	}
	type span struct{ start, end int64 } // [start, end)
	var spans []span
	n := 0
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if n++; n > 100*maxRanges {
			return errRange{fmt.Sprintf("too many ranges (at most %d)", maxRanges)}
		}
		first, last, ok := strings.Cut(part, "-")
		if !ok {
			return nil
		}
		first, last = strings.TrimSpace(first), strings.TrimSpace(last)
		var sp span
		switch {
		case first == "":
			k, err := strconv.ParseInt(last, 10, 64)
			if err != nil || k < 0 {
				return nil
			}
			if k == 0 {
				return errRange{"a suffix range of zero bytes (bytes=-0) selects nothing"}
			}
			sp = span{max(size-k, 0), size}
		default:
			a, err := strconv.ParseInt(first, 10, 64)
			if err != nil || a < 0 {
				return nil
			}
			sp = span{a, size}
			if last != "" {
				b, err := strconv.ParseInt(last, 10, 64)
				if err != nil || b < a {
					return nil
				}
				sp.end = min(b+1, size)
			}
		}
		if sp.start >= size {
			continue // unsatisfiable: ServeContent answers 416 when none is left
		}
		spans = append(spans, sp)
	}
	if len(spans) == 0 {
		return nil
	}
	slices.SortFunc(spans, func(a, b span) int { return int(min(max(a.start-b.start, -1), 1)) })
	merged := spans[:1]
	for _, sp := range spans[1:] {
		if last := &merged[len(merged)-1]; sp.start <= last.end {
			last.end = max(last.end, sp.end)
			continue
		}
		merged = append(merged, sp)
	}
	if len(merged) > maxRanges {
		return errRange{fmt.Sprintf("%d ranges (at most %d)", len(merged), maxRanges)}
	}
	out := make([]string, len(merged))
	for i, sp := range merged {
		out[i] = fmt.Sprintf("%d-%d", sp.start, sp.end-1)
	}
	r.Header.Set("Range", "bytes="+strings.Join(out, ","))
	return nil
}
