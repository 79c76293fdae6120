package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// MinKeyBytes is the shortest key [NewKeys] accepts.
const MinKeyBytes = 16

// Keys are the HMAC-SHA256 keys of every link exportd signs or accepts: a
// host application's export links ([SignLink]) and job download links.
// The newest key (the last given) signs; every key verifies, so that a key
// is rotated without breaking the links already handed out: add the new
// key after the old one, and drop the old one once its links have expired.
// Keys are immutable and safe for concurrent use.
type Keys struct {
	keys [][]byte
}

// NewKeys returns the keys, oldest first; each must have at least
// [MinKeyBytes] bytes.
func NewKeys(keys ...[]byte) (*Keys, error) {
	if len(keys) == 0 {
		return nil, errors.New("link keys: none given")
	}
	k := &Keys{}
	for i, key := range keys {
		if len(key) < MinKeyBytes {
			return nil, fmt.Errorf("link keys: key %d of %d has %d bytes, at least %d are needed", i+1, len(keys), len(key), MinKeyBytes)
		}
		k.keys = append(k.keys, append([]byte(nil), key...))
	}
	return k, nil
}

// Sign returns the hex HMAC-SHA256 of msg under the newest key.
func (k *Keys) Sign(msg []byte) string {
	return hex.EncodeToString(mac(k.keys[len(k.keys)-1], msg))
}

// Verify reports whether sig is the hex HMAC-SHA256 of msg under any of
// the keys, comparing in constant time.
func (k *Keys) Verify(msg []byte, sig string) bool {
	got, err := hex.DecodeString(sig)
	if k == nil || err != nil {
		return false
	}
	ok := false
	for _, key := range k.keys {
		ok = hmac.Equal(got, mac(key, msg)) || ok
	}
	return ok
}

// Len returns the number of keys.
func (k *Keys) Len() int { return len(k.keys) }

func mac(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}
