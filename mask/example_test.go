package mask_test

import (
	"fmt"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/mask"
)

func ExampleParse() {
	for _, x := range []struct {
		spec  exportd.MaskSpec
		value string
	}{
		{exportd.MaskSpec{Rule: "name"}, "남궁민수"},
		{exportd.MaskSpec{Rule: "name"}, "John Smith"},
		{exportd.MaskSpec{Rule: "email"}, "user12@example.com"},
		{exportd.MaskSpec{Rule: "phone"}, "+82-10-1234-5678"},
		{exportd.MaskSpec{Rule: "national_id"}, "9001011234567"},
		{exportd.MaskSpec{Rule: "pattern", Pattern: `(\d{4})$`, Replace: "****"}, "1234-5678"},
		{exportd.MaskSpec{Rule: "keep", First: 6, Last: 4}, "1234-5678-9012-3456"},
		{exportd.MaskSpec{Rule: "fixed", Replace: "(비공개)"}, "서울시 강남구"},
	} {
		r, err := mask.Parse(x.spec)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%-11s %s\n", r, r.ApplyString(x.value))
	}
	// Output:
	// name        남**수
	// name        J*** S****
	// email       us****@example.com
	// phone       +82-10-****-5678
	// national_id 9001011******
	// pattern     1234-****
	// keep        1234-5*********3456
	// fixed       (비공개)
}
