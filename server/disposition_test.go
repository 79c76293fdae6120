package server

import "testing"

func TestASCIIFallback(t *testing.T) {
	tests := []struct{ in, want string }{
		{"회원목록_2024-01-01.xlsx", "2024-01-01.xlsx"},
		{"회원목록.xlsx", "download.xlsx"},
		{"report 2024.csv", "report 2024.csv"},
		{"a회원b.tsv", "a_b.tsv"},
		{"a__회원__b.jsonl", "a_b.jsonl"},
		{`we"ird;na%me.csv`, "we_ird_na_me.csv"},
		{"noext", "noext"},
		{"파일.확장", "download"},
	}
	for _, tt := range tests {
		got := asciiFallback(tt.in)
		if got != tt.want {
			t.Errorf("asciiFallback(%q) = %q, want %q", tt.in, got, tt.want)
		}
		for _, r := range got {
			if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
				t.Errorf("%q: unsafe character %q", got, r)
			}
		}
	}
}
