package encrypt_test

import (
	"bytes"
	"fmt"
	"log"
	"os"

	"github.com/exportd/exportd/encrypt"
	"github.com/exportd/exportd/xlsx"
)

func Example() {
	f, err := os.CreateTemp("", "export-*.xlsx")
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()

	password := encrypt.GeneratePassword() // shown to the user once
	w, err := encrypt.NewWriter(f, password)
	if err != nil {
		log.Fatal(err)
	}
	xw := xlsx.NewWriter(w)
	if err := xw.NewSheet("Members", []xlsx.Column{{Header: "id"}, {Header: "name"}}); err != nil {
		log.Fatal(err)
	}
	if err := xw.Write([]xlsx.Cell{xlsx.Int(1), xlsx.String("김민준")}); err != nil {
		log.Fatal(err)
	}
	if err := xw.Close(); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	head := make([]byte, 8)
	if _, err := f.ReadAt(head, 0); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("compound file: % x\n", head)
	fmt.Println("Content-Length is a whole number of sectors:", w.Size()%512 == 0)
	fmt.Println("password characters:", len(password))
	// Output:
	// compound file: d0 cf 11 e0 a1 b1 1a e1
	// Content-Length is a whole number of sectors: true
	// password characters: 19
}

func ExampleGeneratePassword() {
	p := encrypt.GeneratePassword()
	fmt.Println(len(p), p[4] == '-', p[9] == '-', p[14] == '-')
	// Output: 19 true true true
}

// Encrypt sends a finished workbook of known size, front to back: the
// Content-Length first, then the bytes as they are encrypted.
func ExampleEncrypt() {
	plain := []byte("PK\x05\x06" + string(make([]byte, 18))) // a finished package: an empty ZIP
	var out bytes.Buffer                                     // an http.ResponseWriter in a server
	size := encrypt.EncryptedSize(int64(len(plain)))
	fmt.Println("Content-Length:", size)
	n, err := encrypt.Encrypt(&out, bytes.NewReader(plain), int64(len(plain)), encrypt.GeneratePassword())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("written:", n, out.Len())
	fmt.Printf("compound file: % x\n", out.Bytes()[:8])
	// Output:
	// Content-Length: 5120
	// written: 5120 5120
	// compound file: d0 cf 11 e0 a1 b1 1a e1
}
