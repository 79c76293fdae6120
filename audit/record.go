package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Outcome is the result of an export attempt.
type Outcome string

// The outcomes of an export attempt.
const (
	OutcomeOK      Outcome = "ok"      // allowed, and the file was sent in full
	OutcomePartial Outcome = "partial" // allowed, and the byte range asked for (HTTP Range: a resumed download) was sent in full; Params say which
	OutcomeDenied  Outcome = "denied"  // refused: no right to the dataset, a forbidden column, no purpose…
	OutcomeFailed  Outcome = "failed"  // allowed, but the export failed or was cut short (Error says why); Bytes and SHA256 are of what was sent

	// OutcomeStarted is a record of intent: an allowed export about to
	// send its first byte (who, roles, client, dataset, params, columns,
	// purpose, format; Rows, Bytes and SHA256 empty). The record of its
	// outcome (ok, partial or failed) follows with Ref set to the started
	// record's Seq. A started record without one is what Verify reports
	// as started without outcome: the export may have sent data whose
	// end was never recorded.
	OutcomeStarted Outcome = "started"

	// OutcomeDelivered is a scheduled export handed to one recipient: its
	// download link (and, for a dataset that is not personal, maybe the
	// file) mailed, or its webhook answered 2xx. Client names the
	// recipient ("mailto:kim@example.com", "webhook:https://…"); Rows,
	// Bytes and SHA256 are the file's.
	OutcomeDelivered Outcome = "delivered"
	// OutcomeUndelivered is a delivery that failed after its tries; Error
	// says why.
	OutcomeUndelivered Outcome = "undelivered"
)

// OutcomeOf returns OutcomeOK for a nil error and OutcomeFailed otherwise;
// denials are the caller's to name.
func OutcomeOf(err error) Outcome {
	if err == nil {
		return OutcomeOK
	}
	return OutcomeFailed
}

// Purpose is the stated purpose of an export: one of the configured
// categories plus free text.
type Purpose struct {
	Category string `json:"category"`
	Text     string `json:"text"`
}

// MAC is an HMAC-SHA256; it is written as hex in JSON and in the database.
type MAC []byte

// String returns m in hex.
func (m MAC) String() string { return hex.EncodeToString(m) }

// MarshalText returns m in hex.
func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads m from hex.
func (m *MAC) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("mac: %w", err)
	}
	*m = v
	return nil
}

// Record is one export attempt, allowed or denied. The caller fills the
// fields above Seq; [Store.Append] fills the rest.
type Record struct {
	Time      time.Time       `json:"time"`      // when the export started; Append sets it to now when zero; kept to the microsecond, in UTC
	Principal string          `json:"principal"` // who exported
	Roles     []string        `json:"roles"`     // the principal's roles at the time
	Client    string          `json:"client"`    // the client's address (as seen through a trusted proxy)
	Dataset   string          `json:"dataset"`   // the dataset's name
	Params    json.RawMessage `json:"params"`    // the bound parameters as a JSON object; stored compacted
	Columns   []string        `json:"columns"`   // the columns of the file (after the role's plan and the user's choice)
	Purpose   Purpose         `json:"purpose"`
	Format    string          `json:"format"` // xlsx, csv, tsv, jsonl
	Rows      int64           `json:"rows"`   // rows written
	Bytes     int64           `json:"bytes"`  // bytes sent (of a range, the range's; cut short, those that left)
	SHA256    string          `json:"sha256"` // hex SHA-256 of exactly the bytes counted in Bytes (see NewDigest); empty when none were
	Outcome   Outcome         `json:"outcome"`
	Error     string          `json:"error,omitempty"` // why it was denied or failed
	Ref       int64           `json:"ref,omitempty"`   // on an outcome record, the Seq of the started record it completes; 0 otherwise
	// Sheets are the sheets of an export of a dataset of several, in the
	// file's order, with the rows written into each (0 on a started
	// record); nil for a dataset of one query.
	Sheets []Sheet `json:"sheets,omitempty"`

	Seq     int64  `json:"seq"`      // position in the chain, from 1, without gaps
	KeyID   string `json:"key_id"`   // the key of the MAC (see Keys)
	PrevMAC MAC    `json:"prev_mac"` // the MAC of record Seq-1 (or of the checkpoint; empty for record 1)
	MAC     MAC    `json:"mac"`      // HMAC-SHA256(key, canonical content ‖ PrevMAC)
}

// normalize makes r storable: valid UTF-8 without NUL (PostgreSQL's text
// takes nothing else), compact JSON parameters, a UTC time truncated to
// the microsecond. The MAC is computed over the normalized record, so that
// what is stored is exactly what is signed.
func (r *Record) normalize() error {
	clean := func(s string) string {
		return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC().Truncate(time.Microsecond)
	r.Principal, r.Client, r.Dataset = clean(r.Principal), clean(r.Client), clean(r.Dataset)
	r.Purpose.Category, r.Purpose.Text = clean(r.Purpose.Category), clean(r.Purpose.Text)
	r.Format, r.SHA256, r.Error = clean(r.Format), clean(r.SHA256), clean(r.Error)
	r.Roles = cleanList(r.Roles, clean)
	r.Columns = cleanList(r.Columns, clean)
	if len(r.Sheets) == 0 {
		r.Sheets = nil
	}
	for i := range r.Sheets {
		r.Sheets[i].Name = clean(r.Sheets[i].Name)
		if r.Sheets[i].Rows < 0 || (r.Outcome == OutcomeStarted && r.Sheets[i].Rows != 0) {
			return fmt.Errorf("audit: sheet %q: %d rows", r.Sheets[i].Name, r.Sheets[i].Rows)
		}
	}
	switch r.Outcome {
	case OutcomeOK, OutcomePartial, OutcomeDenied, OutcomeFailed, OutcomeDelivered, OutcomeUndelivered:
	case OutcomeStarted:
		if r.Rows != 0 || r.Bytes != 0 || r.SHA256 != "" {
			return errors.New("audit: a started record has no rows, bytes or sha256 yet")
		}
		if r.Ref != 0 {
			return errors.New("audit: a started record completes no other (ref must be 0)")
		}
	default:
		return fmt.Errorf("audit: outcome %q (want started, ok, partial, denied, failed, delivered or undelivered)", r.Outcome)
	}
	if r.Ref < 0 {
		return fmt.Errorf("audit: ref %d", r.Ref)
	}
	if len(r.Params) == 0 {
		r.Params = json.RawMessage("{}")
	} else {
		var b bytes.Buffer
		if err := json.Compact(&b, r.Params); err != nil {
			return fmt.Errorf("audit: params are not valid JSON: %w", err)
		}
		r.Params = json.RawMessage(clean(b.String()))
	}
	return nil
}

// Sheet is one sheet of an export's file, with its rows.
type Sheet struct {
	Name string `json:"name"`
	Rows int64  `json:"rows"`
}

func cleanList(l []string, clean func(string) string) []string {
	if len(l) == 0 {
		return nil
	}
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = clean(s)
	}
	return out
}

const (
	canonicalTag    = "exportd-audit-record-v1\x00"
	canonicalRefTag = "exportd-audit-record-v2\x00" // v1 and the ref after the seq
	// v2 (with the ref, 0 when none) and the sheets at the end
	canonicalSheetsTag = "exportd-audit-record-v3\x00"
)

// canonical appends the canonical encoding of r's content (every field but
// PrevMAC and MAC) to b: a version tag, then each field in a fixed order,
// integers as 8 bytes big-endian, strings and lists length-prefixed (so no
// two different records encode alike). A record with a Ref has a tag of
// its own and the Ref after its Seq; one without encodes as records did
// before refs existed, so that those keep verifying.
//
// A record with Sheets has a tag of its own too, the layout of one with
// a Ref, and its sheets (name, rows) at the end.
func (r *Record) canonical(b []byte) []byte {
	if len(r.Sheets) > 0 {
		b = append(b, canonicalSheetsTag...)
		b = binary.BigEndian.AppendUint64(b, uint64(r.Seq))
		b = binary.BigEndian.AppendUint64(b, uint64(r.Ref))
	} else if r.Ref != 0 {
		b = append(b, canonicalRefTag...)
		b = binary.BigEndian.AppendUint64(b, uint64(r.Seq))
		b = binary.BigEndian.AppendUint64(b, uint64(r.Ref))
	} else {
		b = append(b, canonicalTag...)
		b = binary.BigEndian.AppendUint64(b, uint64(r.Seq))
	}
	b = appendStr(b, r.KeyID)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixMicro()))
	b = appendStr(b, r.Principal)
	b = appendList(b, r.Roles)
	b = appendStr(b, r.Client)
	b = appendStr(b, r.Dataset)
	b = appendStr(b, string(r.Params))
	b = appendList(b, r.Columns)
	b = appendStr(b, r.Purpose.Category)
	b = appendStr(b, r.Purpose.Text)
	b = appendStr(b, r.Format)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Rows))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Bytes))
	b = appendStr(b, r.SHA256)
	b = appendStr(b, string(r.Outcome))
	b = appendStr(b, r.Error)
	if len(r.Sheets) > 0 {
		b = binary.BigEndian.AppendUint32(b, uint32(len(r.Sheets)))
		for _, s := range r.Sheets {
			b = appendStr(b, s.Name)
			b = binary.BigEndian.AppendUint64(b, uint64(s.Rows))
		}
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendList(b []byte, l []string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(l)))
	for _, s := range l {
		b = appendStr(b, s)
	}
	return b
}

// computeMAC returns HMAC-SHA256(key, canonical(r) ‖ prev).
func computeMAC(key []byte, r *Record, prev []byte) MAC {
	h := hmac.New(sha256.New, key)
	h.Write(r.canonical(nil))
	h.Write(prev)
	return h.Sum(nil)
}

const checkpointTag = "exportd-audit-checkpoint-v1\x00"

// Checkpoint stands for the records removed by [Store.Prune]: the seq and
// MAC of the last one, signed, so that the chain that remains verifies from
// it.
type Checkpoint struct {
	Seq    int64     // the last pruned record; 0 when nothing was pruned
	MAC    MAC       // its MAC: the PrevMAC of record Seq+1
	Before time.Time // records older than this were pruned
	KeyID  string
	Sig    MAC // HMAC-SHA256(key, tag ‖ Seq ‖ MAC ‖ Before ‖ KeyID)
}

func (c *Checkpoint) sign(key []byte) MAC {
	h := hmac.New(sha256.New, key)
	b := append([]byte(checkpointTag), binary.BigEndian.AppendUint64(nil, uint64(c.Seq))...)
	b = appendStr(b, string(c.MAC))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Before.UnixMicro()))
	b = appendStr(b, c.KeyID)
	h.Write(b)
	return h.Sum(nil)
}
