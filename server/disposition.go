package server

import (
	"slices"
	"strings"
)

// contentDisposition returns an attachment header for name: a plain ASCII
// filename for old clients and the full UTF-8 name in filename* (RFC 6266,
// RFC 8187), which browsers prefer.
func contentDisposition(name string) string {
	var b strings.Builder
	b.WriteString(`attachment; filename="`)
	b.WriteString(asciiFallback(name))
	b.WriteString(`"; filename*=UTF-8''`)
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(name); i++ {
		c := name[i]
		if isAttrChar(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// isAttrChar reports whether c may appear unencoded in an RFC 8187 value.
func isAttrChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		slices.Contains([]byte("!#$&+-.^_`|~"), c)
}

// asciiFallback returns an ASCII-only version of the file name name for the
// plain filename= of a Content-Disposition header (RFC 6266), next to the
// full name in filename*. Each run of non-ASCII characters, and each
// character that is unsafe in a quoted string, becomes one '_'; runs of '_'
// collapse and the extension is kept. A name with nothing left becomes
// "download" with the extension: 회원목록_2024-01-01.xlsx → 2024-01-01.xlsx.
func asciiFallback(name string) string {
	base, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		base, ext = name[:i], name[i:]
	}
	clean := func(s string) string {
		var b strings.Builder
		under := false
		for _, r := range s {
			if r > 0x20 && r < 0x7f && r != '_' && !strings.ContainsRune(`"\%;/:*?<>|`, r) {
				b.WriteRune(r)
				under = false
				continue
			}
			if r == ' ' {
				b.WriteByte(' ')
				under = false
				continue
			}
			if !under {
				b.WriteByte('_')
				under = true
			}
		}
		return b.String()
	}
	base = strings.Trim(clean(base), "_- .")
	ext = clean(ext)
	if strings.Contains(ext, "_") {
		base, ext = strings.Trim(clean(name), "_- ."), ""
	}
	if base == "" {
		base = "download"
	}
	return base + ext
}
