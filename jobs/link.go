package jobs

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/exportd/exportd/auth"
)

// newUID returns a job's unguessable identity: 128 random bits in hex.
func newUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("jobs: job identity: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// SignedURL returns the download path of job j, signed to be valid until
// expires: /v1/jobs/{id}/download?expires=UNIX&sig=HEX. The signature is
// the hex HMAC-SHA256 under the newest link key ([auth.Keys]) over the job's numeric id, its
// unguessable identity (made when it was submitted), its owner, its
// result's storage key and the expiry, so that the link opens this job's
// result and nothing else: not the job that comes to have the same id in a
// recreated queue or a restored backup, nor another result. A job without
// an identity (submitted before jobs had one) or a result gets no link ("").
func (m *Manager) SignedURL(j *Job, expires time.Time) string {
	if j.uid == "" || j.key == "" {
		return ""
	}
	exp := strconv.FormatInt(expires.Unix(), 10)
	return "/v1/jobs/" + url.PathEscape(j.ID) + "/download?expires=" + exp + "&sig=" + m.links.Load().Sign(linkMessage(j, exp))
}

const linkTag = "exportd-job-download-v2\x00"

// SetLinks makes keys sign the download links from now on (the newest
// key) and verify them (every key): a rotation adds the new key after the
// old one, and drops the old one once its links have expired.
func (m *Manager) SetLinks(keys *auth.Keys) error {
	if keys == nil {
		return errors.New("jobs: no link keys")
	}
	m.links.Store(keys)
	return nil
}

// linkMessage is what the signature of a link to j valid until exp
// covers: each field length-prefixed, so that no two different links sign
// alike.
func linkMessage(j *Job, exp string) []byte {
	b := []byte(linkTag)
	for _, f := range []string{j.ID, j.uid, j.owner, j.key, exp} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// IsSignedLink reports whether q carries a job download signature.
func IsSignedLink(q url.Values) bool { return q.Has("sig") }

// OpenLink opens the result of job id through a signed link (query q,
// see SignedURL), whoever asks: ErrBadLink when the signature does not
// match the job that has that id now (its identity, owner and result),
// or there is no such job; ErrLinkExpired past the link's expiry; then as
// Open (ErrNotReady, ErrExpired).
func (m *Manager) OpenLink(ctx context.Context, id string, q url.Values, now time.Time) (*Result, error) {
	exp, sig := q.Get("expires"), q.Get("sig")
	if len(q["sig"]) != 1 || len(q["expires"]) != 1 {
		return nil, fmt.Errorf("job %s: %w", id, ErrBadLink)
	}
	j, err := m.get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("job %s: %w", id, ErrBadLink) // a link names a job: one that is gone is not a lookup
	}
	if err != nil {
		return nil, err
	}
	if j.uid == "" || j.key == "" || !m.links.Load().Verify(linkMessage(j, exp), sig) {
		return nil, fmt.Errorf("job %s: %w", id, ErrBadLink)
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", id, ErrBadLink)
	}
	if !now.Before(time.Unix(n, 0)) {
		return nil, fmt.Errorf("job %s: %w at %s", id, ErrLinkExpired, time.Unix(n, 0).UTC().Format(time.RFC3339))
	}
	return m.open(ctx, j)
}
