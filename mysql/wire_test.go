package mysql_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/mysql"
	"github.com/exportd/exportd/sourcetest"
)

// paritySources opens url twice: one source reads results from the socket
// itself (the default on a plain-text connection), the other through the
// driver's rows (as under TLS or compression).
func paritySources(t *testing.T, url string) (wire, drv *mysql.Source) {
	t.Helper()
	opts := exportd.SourceOptions{Location: sourcetest.Location}
	var err error
	if wire, err = mysql.Open(t.Context(), url, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wire.Close() })
	if !mysql.ReadsWire(wire) {
		t.Fatal("the source does not read results itself on a plain-text connection")
	}
	if drv, err = mysql.Open(t.Context(), url, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	mysql.UseDriverRows(drv)
	return wire, drv
}

// sameResult runs q on both sources and compares the columns, every value
// (kind, content, time zone) and the error.
func sameResult(t *testing.T, wire, drv *mysql.Source, q exportd.Query) int {
	t.Helper()
	wcols, wrows, werr := sourcetest.Collect(t.Context(), wire, q)
	dcols, drows, derr := sourcetest.Collect(t.Context(), drv, q)
	if (werr == nil) != (derr == nil) {
		t.Fatalf("%s: errors differ: own %v, driver's %v", q.SQL, werr, derr)
	}
	if derr != nil {
		var we, de *gomysql.MySQLError
		if errors.As(werr, &we) != errors.As(derr, &de) || we != nil && (we.Number != de.Number || we.Message != de.Message) {
			t.Errorf("%s: errors differ: own %v, driver's %v", q.SQL, werr, derr)
		}
	}
	if fmt.Sprint(wcols) != fmt.Sprint(dcols) {
		t.Fatalf("%s: columns differ:\nown      %v\ndriver's %v", q.SQL, wcols, dcols)
	}
	if len(wrows) != len(drows) {
		t.Fatalf("%s: %d rows, the driver's path %d", q.SQL, len(wrows), len(drows))
	}
	for i := range wrows {
		for j := range wrows[i] {
			w, d := wrows[i][j], drows[i][j]
			if sourcetest.Format(w) != sourcetest.Format(d) || w.T.Location() != d.T.Location() {
				t.Errorf("%s: row %d, column %s: own %s (%v), driver's %s (%v)", q.SQL, i+1, wcols[j].Name,
					sourcetest.Format(w), w.T.Location(), sourcetest.Format(d), d.T.Location())
			}
		}
	}
	return len(wrows)
}

// Every value of every type, read from the socket by the source, is the
// value the driver's rows gave: the type table of TestSource, a few
// thousand generated rows (every column type, NULLs, fractional seconds,
// unsigned extremes, binary and Korean text, values over the 64 KiB read
// buffer), expressions, parameters quoted under both of the server's
// escaping modes, an error after rows and a statement without rows.
func TestWireMatchesDriver(t *testing.T) {
	url := sourcetest.IntegrationURL(t, "EXPORTD_MYSQL_URL")
	fx := fixture(t, url)
	wire, drv := paritySources(t, url)

	typesTable := sourcetest.UniqueName("exportd_types")
	fx.Exec(t, fmt.Sprintf(fx.Types.Create, typesTable))
	t.Cleanup(func() { fx.Exec(t, "DROP TABLE IF EXISTS "+typesTable) })
	for _, ins := range fx.Types.Inserts {
		fx.Exec(t, fmt.Sprintf(ins, typesTable))
	}
	if n := sameResult(t, wire, drv, exportd.Query{SQL: fmt.Sprintf("SELECT * FROM %s ORDER BY id", typesTable)}); n != len(fx.Types.Rows) {
		t.Errorf("types: %d rows", n)
	}

	gen := sourcetest.UniqueName("exportd_wire")
	fx.Exec(t, `CREATE TABLE `+gen+` (id INT PRIMARY KEY, ti TINYINT, uti TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT UNSIGNED,
		i INT, ui INT UNSIGNED, bi BIGINT, ubi BIGINT UNSIGNED, d1 DECIMAL(65,30), d2 DECIMAL(12,2), d0 DECIMAL(20,0),
		f FLOAT, db DOUBLE, dt DATE, dtt0 DATETIME, dtt3 DATETIME(3), dtt6 DATETIME(6), ts0 TIMESTAMP NULL, ts6 TIMESTAMP(6) NULL,
		tm TIME(6), y YEAR, bt BIT(13), c CHAR(4), vc VARCHAR(300), tx TEXT, lt LONGTEXT, bn BINARY(4), vb VARBINARY(64),
		bl BLOB, mb MEDIUMBLOB, j JSON, e ENUM('standard','silver','gold'), st SET('a','b','c')) DEFAULT CHARSET=utf8mb4`)
	t.Cleanup(func() { fx.Exec(t, "DROP TABLE IF EXISTS "+gen) })
	fx.Exec(t, `INSERT INTO `+gen+` SELECT seq,
		(seq * 37) % 256 - 128, (seq * 41) % 256, (seq * 7919) % 65536 - 32768, (seq * 104729) % 16777216,
		(seq * 2654435761) % 4294967296 - 2147483648, (seq * 2654435761) % 4294967296,
		IF(seq % 2, -1, 1) * (seq * 3074457345618000 + seq),
		18446744073709551615 - seq * seq * 1000003,
		IF(seq % 3, -1, 1) * (seq * 1.000000000000000000000000000001 + seq / 7),
		(seq * 104729 % 10000000) / 100, seq * 1000000007,
		seq / 7e0, IF(seq % 5 = 0, 1e300 / seq, seq * 1.1e-300) * IF(seq % 2, -1, 1),
		DATE '1000-01-01' + INTERVAL seq * 997 DAY,
		TIMESTAMP '1970-01-01 00:00:00' + INTERVAL seq * 9973 MINUTE,
		TIMESTAMP '2020-02-29 23:59:59' + INTERVAL seq * 1001000 MICROSECOND,
		TIMESTAMP '1999-12-31 23:59:59' + INTERVAL seq * 123457 MICROSECOND,
		IF(seq % 4 = 0, NULL, TIMESTAMP '1980-01-01 00:00:00' + INTERVAL seq * 86399 SECOND),
		TIMESTAMP '2038-01-01 00:00:00' - INTERVAL seq * 1000003 MICROSECOND,
		SEC_TO_TIME((seq * 3301) % 6000000 - 3000000) + INTERVAL seq MICROSECOND, 1901 + seq % 255, seq % 8192,
		SUBSTRING('김이박최정', seq % 5 + 1, seq % 4),
		CONCAT(REPEAT('메모 ', seq % 50), 'R&D, "q" \\ line1\nline2 #', seq),
		IF(seq % 7 = 0, NULL, REPEAT(CONCAT('가나다 ', seq, ' '), seq % 40)),
		IF(seq % 500 = 1, REPEAT('한국어 텍스트 😀 ', 4000 + seq), IF(seq % 3 = 0, '', NULL)),
		UNHEX(LPAD(HEX(seq), 8, '0')), UNHEX(MD5(seq)), IF(seq % 2, UNHEX(SHA2(seq, 256)), CAST(CONCAT('text ', seq) AS BINARY)),
		IF(seq % 250 = 0, REPEAT(UNHEX(MD5(seq)), 5000), NULL),
		JSON_OBJECT('n', seq, 's', CONCAT('김', seq)), ELT(seq % 3 + 1, 'standard', 'silver', 'gold'),
		MAKE_SET(seq % 8, 'a', 'b', 'c')
		FROM (SELECT CAST(seq AS SIGNED) AS seq FROM seq_1_to_3000) AS s`)
	if n := sameResult(t, wire, drv, exportd.Query{SQL: "SELECT * FROM " + gen + " ORDER BY id"}); n != 3000 {
		t.Errorf("generated: %d rows", n)
	}

	for _, sql := range []string{
		`SELECT 1 AS one, -9223372036854775808 AS min, 18446744073709551615 AS umax, 1.5e300, -0e0 AS negzero, 0.1e0 + 0.2e0 AS sum,
			CAST(0.1 AS FLOAT) AS f, 1/3 AS third, NULL AS n, '' AS empty, X'' AS emptybin, 'λ 김 😀' AS text,
			CURRENT_DATE - CURRENT_DATE AS zero, CAST('2024-02-29 12:34:56.789' AS DATETIME(3)) AS dt3,
			TIMESTAMP '1970-01-01 00:00:01' AS ts, DATE '9999-12-31' AS maxdate, TIME '-838:59:59' AS mintime`,
		`SELECT seq, seq * 1e-7 AS small, seq / 3 AS div, CONCAT('x', seq) AS s FROM seq_1_to_20000`,
		`DO 1`,
		fx.FailAt(150),
	} {
		sameResult(t, wire, drv, exportd.Query{SQL: sql})
	}

	// Parameters, quoted as the driver quotes them, under the server's
	// default escaping and with NO_BACKSLASH_ESCAPES.
	params := exportd.Query{
		SQL: `SELECT :s AS s, :k AS k, :i AS i, :f AS f, :b AS b, :n AS n, :d AS d, :t AS t, :list AS list,
			CONCAT(':not', ' a param') AS lit FROM seq_1_to_3 WHERE seq IN (:seqs)`,
		Params: map[string]any{
			"s": "it's \"q\" \\ back\\'slash \x00 nul \x1a sub \r\n ? :k -- # /* */ `bt`", "k": "김민준 😀",
			"i": int64(-9223372036854775808), "f": 0.1, "b": true, "n": nil,
			"d":    exportd.DateArg{Time: date("2024-02-29").T},
			"t":    kst("2024-02-29 23:59:59.123456").T,
			"list": []any{"a", "b'c"}, "seqs": []any{int64(1), int64(3)},
		},
	}
	sameResult(t, wire, drv, params)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	nbURL := url + sep + "sql_mode=%27NO_BACKSLASH_ESCAPES%27"
	nbWire, nbDrv := paritySources(t, nbURL)
	sameResult(t, nbWire, nbDrv, params)

	// A compressed connection is the driver's to read, with the same
	// values.
	compressed, err := mysql.Open(t.Context(), url+sep+"compress=true", exportd.SourceOptions{Location: sourcetest.Location})
	if err != nil {
		t.Fatal(err)
	}
	defer compressed.Close()
	if mysql.ReadsWire(compressed) {
		t.Fatal("the source reads a compressed connection itself")
	}
	sameResult(t, wire, compressed, exportd.Query{SQL: "SELECT * FROM " + gen + " ORDER BY id"})
	sameResult(t, wire, compressed, params)
}
