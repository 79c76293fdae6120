package encrypt

import (
	"crypto/rand"
	"strings"
)

// passwordAlphabet leaves out characters that are easily confused when read
// aloud or typed from a screen: 0/o, 1/l/i, and upper case.
const passwordAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

// GeneratePassword returns a random password for a workbook, to be shown to
// the user once: four groups of four characters from a 31-letter alphabet
// without look-alikes ("7kqm-x3vd-h9pe-2tra"), about 79 bits, from
// crypto/rand.
func GeneratePassword() string {
	var sb strings.Builder
	var b [1]byte
	for n := 0; n < 16; {
		rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
		// 248 = 8 × 31: reject the rest so every letter is equally likely.
		if b[0] >= 248 {
			continue
		}
		if n > 0 && n%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(passwordAlphabet[int(b[0])%len(passwordAlphabet)])
		n++
	}
	return sb.String()
}
