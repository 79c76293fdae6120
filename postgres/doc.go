// Package postgres is the exportd source for PostgreSQL, through pgx v5
// (binary protocol, a connection pool).
//
//	src, err := postgres.Open(ctx, "postgres://app@db:5432/shop", exportd.SourceOptions{Location: loc})
//	if err != nil {
//		return err
//	}
//	defer src.Close()
//	rows, err := src.Query(ctx, exportd.Query{
//		SQL:     "SELECT id, name, avg_score FROM members WHERE joined >= :from AND grade IN (:grades)",
//		Params:  map[string]any{"from": exportd.DateArg{Time: from}, "grades": []any{"gold", "silver"}},
//		Timeout: time.Minute,
//	})
//
// Rows are streamed: the pooled connection is held until the last row is
// read or the rows are closed; closing early cancels the statement rather
// than reading the rest. A cancelled context sends PostgreSQL a cancel
// request (the statement stops on the server, the connection is kept).
// Query.Timeout runs the statement in a transaction with SET LOCAL
// statement_timeout; hitting it yields an error wrapping
// exportd.ErrQueryTimeout. EstimateRows reads the planner's estimate from
// EXPLAIN (FORMAT JSON).
//
// Values: int2/int4/int8/oid → Int; float4/float8 → Float (real through
// its shortest decimal, so 0.1 stays 0.1); numeric → Decimal with every
// digit (NaN, Infinity and -Infinity → String); bool → Bool; date → Date;
// timestamp → DateTime with the wall clock as stored; timestamptz →
// DateTime in SourceOptions.Location; infinite dates and timestamps →
// String "infinity" / "-infinity". Every other type is String in
// PostgreSQL's text form: text, varchar, char (blank-padded), uuid, json,
// jsonb, inet, interval, time, enums, bytea as \x and hex, arrays as
// {1,2,NULL}.
//
// Parameters: a DateArg binds as midnight of its day in Location (a date
// or timestamp parameter takes that day, a timestamptz one that instant);
// a time.Time is moved to Location first, so a timestamp parameter
// compares with its wall clock there.
package postgres
