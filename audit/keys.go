package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Keys are the HMAC keys of an audit trail. Each key has an id derived from
// it (the first 8 bytes of a SHA-256 over it, in hex: it reveals nothing of
// the key), which each record and checkpoint carries, so that a key can be
// rotated: add the new key after the old ones; new records are signed with
// the last key, and records signed with an older key still verify as long
// as that key stays listed.
type Keys struct {
	current string
	keys    map[string][]byte
}

// ErrNoKey is returned when the Store has no key, or a record names a key
// it does not have.
var ErrNoKey = errors.New("audit: no key")

// MinKeyLen is the shortest key accepted, in bytes.
const MinKeyLen = 16

// NewKeys returns the Keys holding secrets; the last one signs new records.
func NewKeys(secrets ...[]byte) (Keys, error) {
	k := Keys{keys: map[string][]byte{}}
	for _, s := range secrets {
		if len(s) < MinKeyLen {
			return Keys{}, fmt.Errorf("audit key: %d bytes, want at least %d", len(s), MinKeyLen)
		}
		id := KeyID(s)
		k.keys[id] = bytes.Clone(s)
		k.current = id
	}
	if k.current == "" {
		return Keys{}, errors.New("audit key: none given")
	}
	return k, nil
}

// KeyID returns the id of key.
func KeyID(key []byte) string {
	h := sha256.Sum256(append([]byte("exportd-audit-key-id\x00"), key...))
	return hex.EncodeToString(h[:8])
}

// ParseKeys reads keys from text: one secret a line, in hex (only hex
// digits) or base64 (standard or URL alphabet, padded or not), optionally
// prefixed "hex:" or "base64:" to say which; blank lines and lines
// starting with # are ignored. The last key signs new records. Generate
// one with `openssl rand -hex 32`.
func ParseKeys(data []byte) (Keys, error) {
	var secrets [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		key, err := decodeSecret(s)
		if err != nil {
			return Keys{}, fmt.Errorf("audit key, line %d: %w", line, err)
		}
		secrets = append(secrets, key)
	}
	if err := sc.Err(); err != nil {
		return Keys{}, fmt.Errorf("audit keys: %w", err)
	}
	return NewKeys(secrets...)
}

// LoadKeys reads keys from a file (see ParseKeys).
func LoadKeys(path string) (Keys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Keys{}, fmt.Errorf("audit keys: %w", err)
	}
	return ParseKeys(data)
}

func decodeSecret(s string) ([]byte, error) {
	if v, ok := strings.CutPrefix(s, "hex:"); ok {
		return hex.DecodeString(v)
	}
	b64, explicit := strings.CutPrefix(s, "base64:")
	if !explicit && len(s)%2 == 0 && strings.Trim(s, "0123456789abcdefABCDEF") == "" {
		return hex.DecodeString(s)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if v, err := enc.DecodeString(b64); err == nil {
			return v, nil
		}
	}
	return nil, errors.New("neither hex nor base64")
}

// Current returns the id of the key that signs new records.
func (k Keys) Current() string { return k.current }

func (k Keys) key(id string) ([]byte, error) {
	if key, ok := k.keys[id]; ok {
		return key, nil
	}
	if k.current == "" {
		return nil, ErrNoKey
	}
	return nil, fmt.Errorf("%w with id %q", ErrNoKey, id)
}
