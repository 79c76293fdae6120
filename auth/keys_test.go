package auth_test

import (
	"strings"
	"testing"

	"github.com/exportd/exportd/auth"
)

func TestKeys(t *testing.T) {
	if _, err := auth.NewKeys(); err == nil {
		t.Error("no keys accepted")
	}
	if _, err := auth.NewKeys([]byte(strings.Repeat("a", 32)), []byte("short")); err == nil || !strings.Contains(err.Error(), "key 2 of 2 has 5 bytes") {
		t.Errorf("short key: %v", err)
	}
	old := []byte(strings.Repeat("o", 16))
	neu := []byte(strings.Repeat("n", 16))
	k, err := auth.NewKeys(old, neu)
	if err != nil {
		t.Fatal(err)
	}
	kOld, _ := auth.NewKeys(old)
	kNew, _ := auth.NewKeys(neu)
	msg := []byte("exportd\x00message")
	sig := k.Sign(msg)
	if sig != kNew.Sign(msg) || sig == kOld.Sign(msg) {
		t.Errorf("the newest key must sign: %s", sig)
	}
	for name, c := range map[string]struct {
		keys *auth.Keys
		sig  string
		want bool
	}{
		"new by both":      {k, sig, true},
		"old by both":      {k, kOld.Sign(msg), true},
		"new by old alone": {kOld, sig, false},
		"upper-case hex":   {k, strings.ToUpper(sig), true},
		"truncated":        {k, sig[:len(sig)-2], false},
		"not hex":          {k, "zz" + sig[2:], false},
		"empty":            {k, "", false},
		"nil keys":         {nil, sig, false},
	} {
		if got := c.keys.Verify(msg, c.sig); got != c.want {
			t.Errorf("%s: Verify = %v, want %v", name, got, c.want)
		}
	}
	if k.Verify([]byte("exportd\x00messagf"), sig) {
		t.Error("another message verified")
	}
}
