package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/auth"
)

// A signed link masks like a token of the same role: every cell of every
// format, on SQLite and PostgreSQL, and its audit record names the link's
// principal and purpose with the digest of the bytes received.
func TestPrivacySignedLinkEveryFormat(t *testing.T) {
	for _, b := range privacyBackends() {
		t.Run(b.name, func(t *testing.T) {
			f := newPrivacyFixture(t, b, false)
			c := client(t)
			for _, format := range exportd.Formats {
				for _, who := range []struct {
					role string
					want [][]string
				}{{"support", peopleSupport}, {"admin", peopleFull}} {
					link := auth.SignLink(linkKeys, auth.Link{Dataset: "people", Format: string(format), Name: "link-" + who.role,
						Roles: []string{who.role}, Purpose: "audit", PurposeText: "분기 감사 표본 확인 요청",
						Params: url.Values{}, Expires: time.Now().Add(time.Hour)})
					resp, body, err := get(t, c, f.url+link, "Accept-Encoding", "gzip")
					if err != nil || resp.StatusCode != 200 {
						t.Fatalf("%s as %s: %v %s %s", format, who.role, err, resp.Status, body)
					}
					sum := sha256.Sum256(body)
					rec := f.last(t)
					if rec.Principal != "link:link-"+who.role || rec.Outcome != audit.OutcomeOK || rec.Rows != int64(len(who.want)) ||
						rec.SHA256 != hex.EncodeToString(sum[:]) || rec.Bytes != int64(len(body)) ||
						rec.Purpose != (audit.Purpose{Category: "audit", Text: "분기 감사 표본 확인 요청"}) {
						t.Errorf("%s as %s: record %+v; received %d bytes, sha256 %x", format, who.role, rec, len(body), sum)
					}
					if resp.Header.Get("Content-Encoding") == "gzip" {
						zr, err := gzip.NewReader(bytes.NewReader(body))
						if err != nil {
							t.Fatal(err)
						}
						if body, err = io.ReadAll(zr); err != nil {
							t.Fatal(err)
						}
					}
					rows := readTable(t, format, body)
					if format != exportd.FormatJSONL {
						rows = rows[1:] // header
					}
					if !reflect.DeepEqual(rows, who.want) {
						t.Errorf("%s through a link as %s:\n got %q\nwant %q", format, who.role, rows, who.want)
					}
				}
			}
		})
	}
}
