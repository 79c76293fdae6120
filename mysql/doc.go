// Package mysql is the exportd source for MySQL and MariaDB, through
// github.com/go-sql-driver/mysql and a result-set reader of its own.
//
//	src, err := mysql.Open(ctx, "mysql://app:secret@db:3306/shop", exportd.SourceOptions{Location: loc})
//	if err != nil {
//		return err
//	}
//	defer src.Close()
//	rows, err := src.Query(ctx, exportd.Query{
//		SQL:    "SELECT id, name FROM members WHERE joined >= :from AND grade IN (:grades)",
//		Params: map[string]any{"from": exportd.DateArg{Time: from}, "grades": []any{"gold", "silver"}},
//	})
//
// Open takes a mysql:// URL (see [DSNFromURL]) or a driver DSN. The driver
// opens every connection (handshake, authentication, TLS, session
// variables). Rows come over the text protocol and are streamed. On a
// plain-text connection (no TLS, no compression) the source sends the
// query itself and decodes the result from the socket's read buffer
// straight into exportd.Value, with no allocation per row; parameters are
// then quoted as the driver's client-side interpolation quotes them (the
// server's escaping rules, NO_BACKSLASH_ESCAPES included), never spliced
// as given. Under TLS or compression the rows come from the driver's
// connection (not through database/sql's Scan) and the driver binds the
// parameters. Either way the column types reported by the server decide
// the conversion, and both give the same values:
//
//   - TINYINT…BIGINT, YEAR, BOOL (a TINYINT(1)) → Int; BIGINT UNSIGNED above
//     the int64 range → Decimal; BIT → Int (Decimal above int64)
//   - DECIMAL → Decimal, every digit; FLOAT, DOUBLE → Float
//   - DATE → Date; DATETIME → DateTime, the wall clock as stored;
//     TIMESTAMP → DateTime in SourceOptions.Location (the session time_zone
//     is UTC); zero dates ('0000-00-00…') → NULL; other dates that do not
//     parse ('2024-00-00') → String
//   - CHAR, VARCHAR, TEXT, JSON, ENUM, SET, TIME → String; BINARY,
//     VARBINARY, BLOB → String, as is when valid UTF-8, else `\x` and hex
//
// A DateArg parameter binds as 'YYYY-MM-DD' and a time.Time as its wall
// clock in Location, the text DATE and DATETIME columns compare with
// (a TIMESTAMP column compares that text as UTC).
//
// Each query holds a connection of its own. A cancel returns at once (the
// read of the socket is interrupted), but the server would go on: so a
// cancel, or closing the rows early, also sends KILL QUERY for that
// connection on another one, and the connection is discarded. Query.Timeout becomes
// SET STATEMENT max_statement_time=… FOR on MariaDB and the session's
// max_execution_time on MySQL (SELECT only); hitting it yields an error
// wrapping exportd.ErrQueryTimeout.
package mysql
