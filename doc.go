// Package exportd streams the result of a parameterised SQL query into an
// XLSX, CSV, TSV or JSON Lines file without holding the result in memory.
//
// The root package holds the domain types shared by every part of exportd:
// [Value] (one typed cell), [Column] (a declared output column), [Source]
// (a database that yields typed rows), [RowWriter] (a format writer) and the
// export engine [Export] whose [Export.Run] connects one to the other.
// Backends live in packages named after what they wrap: sqlite, postgres,
// mysql; the format writers live in xlsx (importable on its own) and
// format. Package datasets reads a datasets file (YAML) into a [Config].
// Package plan turns a request for a dataset into an export (the
// rules of access, parameters, purpose, masking and audit), the same on
// every path.
package exportd
