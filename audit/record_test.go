package audit

import (
	"encoding/json"
	"testing"
	"time"
)

// A record without a ref is signed exactly as records were before refs
// existed (the MAC below was computed by that code), so the trails written
// then keep verifying; a ref changes the MAC.
func TestMACWithoutRefUnchanged(t *testing.T) {
	r := &Record{Time: time.Date(2025, 6, 1, 9, 30, 0, 123456000, time.UTC), Principal: "kim", Roles: []string{"manager"},
		Client: "10.0.0.1", Dataset: "member_scores", Params: json.RawMessage(`{"from":"2019-01-01"}`), Columns: []string{"id", "name"},
		Purpose: Purpose{Category: "support", Text: "회원 문의 처리"}, Format: "xlsx", Rows: 12, Bytes: 4096,
		SHA256: "ab", Outcome: OutcomeOK, Seq: 7, KeyID: "k1"}
	if err := r.normalize(); err != nil {
		t.Fatal(err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	const before = "ad2371de44dfebd0d45385de673885988619e4f7f4958914dd0f9b4ffe678bb7"
	if got := computeMAC(key, r, []byte("prev")).String(); got != before {
		t.Fatalf("MAC of a record without ref = %s, want %s (as before refs)", got, before)
	}
	r.Ref = 6
	if got := computeMAC(key, r, []byte("prev")).String(); got == before {
		t.Fatal("the ref is not covered by the MAC")
	}
}
