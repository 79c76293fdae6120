package auth

import "testing"

func TestPrincipalID(t *testing.T) {
	seen := map[string]string{}
	for _, via := range []string{ViaToken, ViaHeader, ViaLink, ViaAnonymous} {
		p := &Principal{Name: "kim", Via: via}
		id := p.ID()
		if other, ok := seen[id]; ok {
			t.Errorf("%s and %s have one identity %q", via, other, id)
		}
		seen[id] = via
		if NameOf(id) != "kim" {
			t.Errorf("NameOf(%q) = %q", id, NameOf(id))
		}
	}
	// a name that looks like a source stays apart from that source
	if (&Principal{Name: "token:kim", Via: ViaHeader}).ID() == (&Principal{Name: "kim", Via: ViaToken}).ID() {
		t.Error("header user token:kim is token kim")
	}
	if (&Principal{Name: "kim"}).ID() != "kim" || NameOf("kim") != "kim" || (*Principal)(nil).ID() != "" {
		t.Error("a principal without a source")
	}
}
