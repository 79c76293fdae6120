// Package sourcetest is the shared test suite every [exportd.Source]
// passes. A backend's test calls [Run] with a function that opens its
// source and a [Fixture] holding the SQL its database speaks:
//
//	func TestSource(t *testing.T) {
//		sourcetest.Run(t, func(t *testing.T, opts exportd.SourceOptions) exportd.Source {
//			src, err := sqlite.Open(t.Context(), path, opts)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { src.Close() })
//			return src
//		}, fixture)
//	}
//
// The suite checks exact values for every SQL type the fixture declares,
// bound named parameters (lists, dates, injection attempts), streaming,
// Describe, cancellation on the server and statement timeouts.
package sourcetest
