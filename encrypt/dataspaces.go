package encrypt

import (
	"encoding/binary"
	"unicode/utf16"
)

// The \x06DataSpaces storage (MS-OFFCRYPTO 2.1, 2.3.4.1–2.3.4.3) says that
// the EncryptedPackage stream is transformed by the strong encryption
// transform. Its streams are constants.

// appendLPP4 appends a UNICODE-LP-P4: the byte length, the UTF-16LE
// characters and zero padding to 4 bytes.
func appendLPP4(b []byte, s string) []byte {
	u := utf16.Encode([]rune(s))
	b = binary.LittleEndian.AppendUint32(b, uint32(2*len(u)))
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// appendVersions appends reader, updater and writer versions 1.0.
func appendVersions(b []byte) []byte {
	for range 3 {
		b = binary.LittleEndian.AppendUint16(b, 1) // major
		b = binary.LittleEndian.AppendUint16(b, 0) // minor
	}
	return b
}

// versionStream is \x06DataSpaces\Version (DataSpaceVersionInfo, 2.1.5).
func versionStream() []byte {
	return appendVersions(appendLPP4(nil, "Microsoft.Container.DataSpaces"))
}

// dataSpaceMap is \x06DataSpaces\DataSpaceMap (2.1.6): one entry mapping
// the EncryptedPackage stream to StrongEncryptionDataSpace.
func dataSpaceMap() []byte {
	var e []byte
	e = binary.LittleEndian.AppendUint32(e, 1) // ReferenceComponentCount
	e = binary.LittleEndian.AppendUint32(e, 0) // ReferenceComponentType: stream
	e = appendLPP4(e, "EncryptedPackage")
	e = appendLPP4(e, "StrongEncryptionDataSpace")
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 8) // HeaderLength
	b = binary.LittleEndian.AppendUint32(b, 1) // EntryCount
	b = binary.LittleEndian.AppendUint32(b, uint32(4+len(e)))
	return append(b, e...)
}

// dataSpaceDefinition is \x06DataSpaces\DataSpaceInfo\StrongEncryptionDataSpace
// (2.1.7): one transform.
func dataSpaceDefinition() []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 8) // HeaderLength
	b = binary.LittleEndian.AppendUint32(b, 1) // TransformReferenceCount
	return appendLPP4(b, "StrongEncryptionTransform")
}

// primaryTransform is
// \x06DataSpaces\TransformInfo\StrongEncryptionTransform\x06Primary: a
// TransformInfoHeader (2.1.8) and an EncryptionTransformInfo (2.1.9) whose
// fields are unused by agile encryption (2.3.4.2).
func primaryTransform() []byte {
	id := appendLPP4(nil, "{FF9A3F03-56EF-4613-BDD5-5A41C1D07246}")
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, uint32(8+len(id))) // TransformLength: up to TransformName
	b = binary.LittleEndian.AppendUint32(b, 1)                 // TransformType
	b = append(b, id...)
	b = appendLPP4(b, "Microsoft.Container.EncryptionTransform")
	b = appendVersions(b)
	b = binary.LittleEndian.AppendUint32(b, 0) // EncryptionName: empty UTF-8-LP-P4
	b = binary.LittleEndian.AppendUint32(b, 0) // EncryptionBlockSize
	b = binary.LittleEndian.AppendUint32(b, 0) // CipherMode
	b = binary.LittleEndian.AppendUint32(b, 4) // Reserved
	return b
}
