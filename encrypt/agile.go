package encrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"unicode/utf16"
)

// Block keys of MS-OFFCRYPTO 2.3.4.11–2.3.4.14.
var (
	blockVerifierInput = []byte{0xfe, 0xa7, 0xd2, 0x76, 0x3b, 0x4b, 0x9e, 0x79}
	blockVerifierValue = []byte{0xd7, 0xaa, 0x0f, 0x6d, 0x30, 0x61, 0x34, 0x4e}
	blockKeyValue      = []byte{0x14, 0x6e, 0x0b, 0xe7, 0xab, 0xac, 0xd0, 0xd6}
	blockHmacKey       = []byte{0x5f, 0xb2, 0xad, 0x01, 0x0c, 0xb9, 0xe1, 0xf6}
	blockHmacValue     = []byte{0xa0, 0x67, 0x7f, 0x02, 0xb2, 0x2c, 0x84, 0x33}
)

const (
	keyBytes  = 32 // AES-256
	saltBytes = 16 // = the AES block size
	hashBytes = sha512.Size
	// MaxPasswordLen is the longest password, in UTF-16 code units, that
	// Excel accepts.
	MaxPasswordLen = 255
	// DefaultSpinCount is the number of SHA-512 iterations of the password
	// hash, the value Excel writes.
	DefaultSpinCount = 100000
)

// agile holds the keys of one encrypted package and the password key
// encryptor's fields, computed from the password once, in NewWriter.
type agile struct {
	secretKey [keyBytes]byte  // encrypts the package
	keySalt   [saltBytes]byte // keyData saltValue: segment and HMAC IVs
	hmacKey   [hashBytes]byte // dataIntegrity's HMAC key
	pwSalt    [saltBytes]byte // encryptedKey saltValue
	spinCount int
	// The password key encryptor (2.3.4.13): all AES-256-CBC with the
	// password salt as IV.
	encVerifierInput, encVerifierValue, encKeyValue []byte
}

func newAgile(password string, spinCount int) (*agile, error) {
	a := &agile{spinCount: spinCount}
	for _, b := range [][]byte{a.secretKey[:], a.keySalt[:], a.hmacKey[:], a.pwSalt[:]} {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("encrypt: random key: %w", err)
		}
	}
	var verifier [saltBytes]byte
	if _, err := rand.Read(verifier[:]); err != nil {
		return nil, fmt.Errorf("encrypt: random verifier: %w", err)
	}
	h := passwordHash(password, a.pwSalt[:], spinCount)
	defer clear(h[:])
	verifierHash := sha512.Sum512(verifier[:])
	var err error
	if a.encVerifierInput, err = cbc(derivedKey(h, blockVerifierInput), a.pwSalt[:], verifier[:]); err != nil {
		return nil, err
	}
	if a.encVerifierValue, err = cbc(derivedKey(h, blockVerifierValue), a.pwSalt[:], verifierHash[:]); err != nil {
		return nil, err
	}
	if a.encKeyValue, err = cbc(derivedKey(h, blockKeyValue), a.pwSalt[:], a.secretKey[:]); err != nil {
		return nil, err
	}
	return a, nil
}

// passwordHash is H_n of MS-OFFCRYPTO 2.3.4.11: H_0 = SHA-512(salt ‖
// UTF-16LE(password)), H_i+1 = SHA-512(uint32le(i) ‖ H_i).
func passwordHash(password string, salt []byte, spinCount int) [hashBytes]byte {
	u := utf16.Encode([]rune(password))
	b := make([]byte, 0, len(salt)+2*len(u))
	b = append(b, salt...)
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	h := sha512.Sum512(b)
	clear(b)
	clear(u)
	var buf [4 + hashBytes]byte
	for i := range spinCount {
		binary.LittleEndian.PutUint32(buf[:4], uint32(i))
		copy(buf[4:], h[:])
		h = sha512.Sum512(buf[:])
	}
	clear(buf[:])
	return h
}

// derivedKey is SHA-512(H_n ‖ blockKey) cut to the key size.
func derivedKey(h [hashBytes]byte, blockKey []byte) []byte {
	k := sha512.Sum512(append(h[:len(h):len(h)], blockKey...))
	return k[:keyBytes]
}

// cbc encrypts data (a multiple of the block size) with AES-CBC.
func cbc(key, iv, data []byte) ([]byte, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	out := make([]byte, len(data))
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, data)
	return out, nil
}

// ivFor is SHA-512(keyData salt ‖ blockKey) cut to the block size: the IV of
// a segment (blockKey = uint32le(segment)) and of the HMAC key and value.
func ivFor(salt, blockKey []byte) []byte {
	h := sha512.New()
	h.Write(salt)
	h.Write(blockKey)
	return h.Sum(nil)[:aes.BlockSize]
}

// encryptionInfo returns the \EncryptionInfo stream (2.3.4.10): version 4.4,
// flags 0x40 and the XML encryption descriptor, with mac the HMAC-SHA512 of
// the whole \EncryptedPackage stream.
func (a *agile) encryptionInfo(mac []byte) ([]byte, error) {
	encHmacKey, err := cbc(a.secretKey[:], ivFor(a.keySalt[:], blockHmacKey), a.hmacKey[:])
	if err != nil {
		return nil, err
	}
	encHmacValue, err := cbc(a.secretKey[:], ivFor(a.keySalt[:], blockHmacValue), mac)
	if err != nil {
		return nil, err
	}
	b64 := base64.StdEncoding.EncodeToString
	params := fmt.Sprintf(`saltSize="%d" blockSize="%d" keyBits="%d" hashSize="%d" cipherAlgorithm="AES" cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512"`,
		saltBytes, aes.BlockSize, keyBytes*8, hashBytes)
	xml := `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\r\n" +
		`<encryption xmlns="http://schemas.microsoft.com/office/2006/encryption"` +
		` xmlns:p="http://schemas.microsoft.com/office/2006/keyEncryptor/password"` +
		` xmlns:c="http://schemas.microsoft.com/office/2006/keyEncryptor/certificate">` +
		`<keyData ` + params + ` saltValue="` + b64(a.keySalt[:]) + `"/>` +
		`<dataIntegrity encryptedHmacKey="` + b64(encHmacKey) + `" encryptedHmacValue="` + b64(encHmacValue) + `"/>` +
		`<keyEncryptors><keyEncryptor uri="http://schemas.microsoft.com/office/2006/keyEncryptor/password">` +
		`<p:encryptedKey spinCount="` + fmt.Sprint(a.spinCount) + `" ` + params +
		` saltValue="` + b64(a.pwSalt[:]) + `"` +
		` encryptedVerifierHashInput="` + b64(a.encVerifierInput) + `"` +
		` encryptedVerifierHashValue="` + b64(a.encVerifierValue) + `"` +
		` encryptedKeyValue="` + b64(a.encKeyValue) + `"/>` +
		`</keyEncryptor></keyEncryptors></encryption>`
	info := make([]byte, 8, 8+len(xml))
	binary.LittleEndian.PutUint16(info[0:], 4)    // major version
	binary.LittleEndian.PutUint16(info[2:], 4)    // minor version
	binary.LittleEndian.PutUint32(info[4:], 0x40) // flags: fAgile
	return append(info, xml...), nil
}

// wipe clears the keys.
func (a *agile) wipe() {
	clear(a.secretKey[:])
	clear(a.hmacKey[:])
}
