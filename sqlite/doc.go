// Package sqlite is the exportd source for SQLite databases, through the
// pure-Go modernc.org/sqlite (no cgo). Queries run on connections of the
// source's own, driven through modernc.org/sqlite/lib directly: a row is
// read without an allocation (its text is copied into a buffer reused from
// row to row, valid until the next call to Next). Ping and Describe use the database/sql
// driver. Of that driver's DSN parameters, _pragma and _busy_timeout apply;
// _txlock and _time_format (writes only) are ignored; any other is refused.
//
//	src, err := sqlite.Open(ctx, "demo.db", exportd.SourceOptions{Location: loc})
//	if err != nil {
//		return err
//	}
//	defer src.Close()
//	rows, err := src.Query(ctx, exportd.Query{
//		SQL:    "SELECT id, name FROM members WHERE joined >= :from",
//		Params: map[string]any{"from": exportd.DateArg{Time: from}},
//	})
//
// The source only reads (PRAGMA query_only) and opens existing files only.
//
// Values follow each column's declared type, then the stored value:
// INTEGER → Int; REAL → Float; TEXT → String; BOOL/BOOLEAN holding 0 or 1
// → Bool; DATE holding 'YYYY-MM-DD' → Date; DATETIME/TIMESTAMP holding
// 'YYYY-MM-DD[ HH:MM[:SS[.fff]]]' → DateTime with the wall clock as stored,
// or, with a zone suffix (+09:00), converted to SourceOptions.Location;
// DECIMAL/NUMERIC → Decimal when SQLite kept the text, else Int or Float
// (SQLite's NUMERIC affinity stores 123.45 as REAL: keep exact digits in a
// TEXT column). Text that does not parse stays String; a BLOB is String,
// as is when valid UTF-8, else `\x` and hex. Expressions with no declared
// type (avg(x), count(*)) follow the stored value.
//
// A DateArg parameter binds as 'YYYY-MM-DD' and a time.Time as
// 'YYYY-MM-DD HH:MM:SS' in Location, so text comparisons work. A cancelled
// context interrupts the statement; Query.Timeout is applied as a
// deadline on it and reported as exportd.ErrQueryTimeout.
package sqlite
