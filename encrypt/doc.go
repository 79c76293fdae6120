// Package encrypt writes password-protected Office Open XML files: ECMA-376
// Agile Encryption (AES-256-CBC, SHA-512, a password key encryptor of
// 100,000 SHA-512 iterations and an HMAC-SHA512 data integrity check) of a
// package such as an .xlsx workbook, in a compound file (MS-CFB), the form
// Excel writes for "Encrypt with Password". The tests open the result with
// msoffcrypto-tool and LibreOffice (Excel itself is not run here).
//
// Two ways in. When the package's size is known before it is encrypted (a
// finished file: a server sending a stored workbook), [Encrypt] reads it
// from an io.Reader and writes the compound file to an io.Writer strictly
// front to back, [EncryptedSize] bytes, so that a response can carry
// Content-Length and its first bytes at once:
//
//	n, err := encrypt.Encrypt(w, f, size, password) // w: an http.ResponseWriter
//
// A [Writer] takes the plaintext package as a stream of unknown length,
// typically from an xlsx.Writer, and encrypts it segment by segment into a
// file:
//
//	f, _ := os.CreateTemp(dir, "export-*.xlsx")
//	w, err := encrypt.NewWriter(f, password)
//	xw := xlsx.NewWriter(w)
//	… xw.Write(row) …
//	err = xw.Close()
//	err = w.Close()   // f now holds the encrypted workbook, w.Size() bytes
//
// With the size unknown, the compound file's header and the package
// stream's first 8 bytes (its size) can only be written once the package
// has ended, so the Writer's output is a [File] (an *os.File) written at
// offsets, not an io.Writer. Memory does not grow with the package either
// way: one 4096-byte segment, a 64 KiB write buffer, and the FAT computed
// sector by sector (a 77 MiB file has 1,232 FAT sectors, never held at
// once).
//
// The password is hashed in NewWriter (or Encrypt) and not kept; the
// derived keys are cleared at Close (when Encrypt returns). [GeneratePassword] makes a readable random password for
// a user to be shown once.
//
// # Encryption (MS-OFFCRYPTO 2.3.4.10–2.3.4.15)
//
//   - A random 256-bit secret key encrypts the package in 4096-byte segments
//     with AES-256-CBC; segment i's IV is SHA-512(keyData salt ‖
//     uint32le(i)) cut to 16 bytes; the last segment is zero-padded to the
//     16-byte block. The \EncryptedPackage stream is the package's size
//     (uint64 little-endian) followed by the segments.
//   - dataIntegrity: a random 64-byte HMAC key; HMAC-SHA512 over the whole
//     \EncryptedPackage stream, size field included. Encrypt knows the size
//     first and computes the HMAC as it encrypts; the Writer knows it only
//     at the end, so Close reads the stream back from the file once to
//     compute it (sequential, from the page cache). The key and the value
//     are encrypted with the secret key, IVs from block keys
//     0x5fb2ad010cb9e1f6 and 0xa0677f02b22c8433.
//   - The password key encryptor: H_0 = SHA-512(salt ‖ UTF-16LE(password)),
//     H_i+1 = SHA-512(uint32le(i) ‖ H_i) for 100,000 rounds; from it and
//     three block keys, the AES-256 keys (salt as IV) of
//     encryptedVerifierHashInput (a random verifier), encryptedVerifierHashValue
//     (its SHA-512) and encryptedKeyValue (the secret key).
//   - \EncryptionInfo: version 4.4, flags 0x40, the XML <encryption>
//     descriptor.
//
// # Compound file layout (MS-CFB version 3, 512-byte sectors)
//
// The same regions, every one a contiguous chain, in two orders. The
// Writer's, for a package of unknown size:
//
//	header (offset 0, written last)
//	sectors 0…P-1   \EncryptedPackage, written while the package streams
//	then            the mini stream (64-byte mini sectors: \EncryptionInfo
//	                and the \x06DataSpaces streams), the MiniFAT, the
//	                directory, the FAT, and DIFAT sectors when there are more
//	                than the header's 109 FAT sectors (packages over ~7.1 MB)
//
// Encrypt's, written in order, for a package whose size is known (so is
// every stream's: the \EncryptedPackage stream is 8 bytes + the package
// zero-padded to the 16-byte block; \EncryptionInfo has the same length
// whatever its HMAC; the DataSpaces streams are constants):
//
//	header
//	the FAT, the DIFAT sectors, the directory, the MiniFAT
//	\EncryptedPackage's sectors, as the segments are encrypted
//	the mini stream, last: \EncryptionInfo holds the HMAC, known only
//	                when the last segment has been encrypted
//
// In both, when the package is 4,080 bytes or less its stream is shorter
// than 4,096 bytes and goes to the mini stream (Encrypt keeps it, one
// segment, until then).
//
// The directory holds the Root Entry,
// EncryptionInfo, EncryptedPackage and the \x06DataSpaces storage that
// MS-OFFCRYPTO 2.3.4.1 requires (Version, DataSpaceMap,
// DataSpaceInfo\StrongEncryptionDataSpace,
// TransformInfo\StrongEncryptionTransform\x06Primary), each storage's
// children in a red-black tree ordered as MS-CFB 2.6.4 asks. A version 3
// stream holds at most 2 GiB, so a package must stay below that
// ([ErrTooLarge]).
//
// References: [MS-OFFCRYPTO] 2.1.5–2.1.9 (data spaces), 2.3.4.10–2.3.4.15
// (agile encryption); [MS-CFB] 2.2–2.6.
//
// [MS-OFFCRYPTO]: https://learn.microsoft.com/en-us/openspecs/office_file_formats/ms-offcrypto/
// [MS-CFB]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-cfb/
package encrypt
