package jobs

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
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
// the hex HMAC-SHA256 under the link secret over the job's numeric id, its
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
	return "/v1/jobs/" + url.PathEscape(j.ID) + "/download?expires=" + exp + "&sig=" + m.linkMAC(j, exp)
}

const linkTag = "exportd-job-download-v2\x00"

// linkMAC returns the hex MAC of a link to j valid until exp: each field
// length-prefixed, so that no two different links sign alike.
func (m *Manager) linkMAC(j *Job, exp string) string {
	return linkMAC(m.linkSecrets.Load().sign, j, exp)
}

// linkSecrets are the secrets of the download links: the newest signs,
// every one verifies, so that a secret can be rotated without breaking
// the links already handed out (see SetLinkSecrets).
type linkSecrets struct {
	sign   []byte
	verify [][]byte
}

// SetLinkSecrets makes the newest of secrets (the last) sign the download
// links from now on, and each of them verify links; a rotation adds the
// new secret after the old one, and drops the old one once its links have
// expired. Every secret must have at least 16 bytes.
func (m *Manager) SetLinkSecrets(secrets ...[]byte) error {
	if len(secrets) == 0 {
		return errors.New("jobs: no link secret")
	}
	for _, s := range secrets {
		if len(s) < 16 {
			return errors.New("jobs: a link secret must have at least 16 bytes")
		}
	}
	m.linkSecrets.Store(&linkSecrets{sign: secrets[len(secrets)-1], verify: secrets})
	return nil
}

// verifyLink reports whether sig is the MAC of a link to j valid until exp
// under any of the link secrets.
func (m *Manager) verifyLink(j *Job, exp, sig string) bool {
	ok := false
	for _, secret := range m.linkSecrets.Load().verify {
		ok = hmac.Equal([]byte(sig), []byte(linkMAC(secret, j, exp))) || ok
	}
	return ok
}

func linkMAC(secret []byte, j *Job, exp string) string {
	mac := hmac.New(sha256.New, secret)
	b := []byte(linkTag)
	for _, f := range []string{j.ID, j.uid, j.owner, j.key, exp} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	mac.Write(b)
	return hex.EncodeToString(mac.Sum(nil))
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
	if j.uid == "" || j.key == "" || !m.verifyLink(j, exp, sig) {
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
