package mysql_test

import (
	"database/sql"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/mysql"
	"github.com/exportd/exportd/sourcetest"
)

var (
	null  = exportd.Null()
	i64   = exportd.Int
	f64   = exportd.Float
	str   = exportd.String
	dec   = exportd.Decimal
	col   = sourcetest.Col
	date  = sourcetest.Date
	naive = sourcetest.Naive
	kst   = sourcetest.KST
)

func types() sourcetest.TypeTable {
	nulls := make([]exportd.Value, 27)
	return sourcetest.TypeTable{
		Create: `CREATE TABLE %[1]s (id INT PRIMARY KEY, ti TINYINT, bo BOOL, si SMALLINT, i INT, bi BIGINT,
			ubi BIGINT UNSIGNED, dec1 DECIMAL(65,30), dec2 DECIMAL(10,2), f FLOAT, d DOUBLE, c CHAR(5), vc VARCHAR(100),
			tx TEXT, bl BLOB, vb VARBINARY(10), j JSON, dt DATE, dtt DATETIME(6), ts TIMESTAMP(3) NULL, tod TIME,
			y YEAR, b BIT(8), b64 BIT(64), e ENUM('a','b'), st SET('x','y')) DEFAULT CHARSET=utf8mb4`,
		Inserts: []string{
			`INSERT INTO %[1]s VALUES (1, 127, TRUE, 32767, 2147483647, 9223372036854775807,
				18446744073709551615, 123456789012345678901234567890.123456789, -12.5, 0.1, 1.7976931348623157e308,
				'ab', '김민준 😀 "q"', 'line1\nline2', X'00FF', 'hello', '{"a": [1, 2]}', '2024-02-29',
				'2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.123', '13:14:15', 2024, b'10000001', b'1111111111111111111111111111111111111111111111111111111111111111', 'b', 'x,y')`,
			`INSERT INTO %[1]s VALUES (2, -128, FALSE, -32768, -2147483648, -9223372036854775808,
				0, -0.000000000000000000000000000001, 0, -0.5, 2.2250738585072014e-308,
				'', '', '', X'', X'FF', '[]', '0000-00-00',
				'0000-00-00 00:00:00', '1970-01-01 00:00:01', '-838:59:59', 0, b'0', b'0', 'a', '')`,
			`INSERT INTO %[1]s (id) VALUES (3)`,
			`INSERT INTO %[1]s (id, dt, dtt) VALUES (4, '2024-00-00', '2024-01-02 03:04:05')`,
		},
		Select: `SELECT ti, bo, si, i, bi, ubi, dec1, dec2, f, d, c, vc, tx, bl, vb, j, dt, dtt, ts, tod, y, b, b64, e, st,
			CHAR_LENGTH(vc) AS expr, i / 4 AS quarter FROM %[1]s ORDER BY id`,
		Columns: []sourcetest.Column{
			col("ti", exportd.TypeInt), col("bo", exportd.TypeInt), col("si", exportd.TypeInt), col("i", exportd.TypeInt),
			col("bi", exportd.TypeInt), col("ubi", exportd.TypeInt), col("dec1", exportd.TypeDecimal),
			col("dec2", exportd.TypeDecimal), col("f", exportd.TypeFloat), col("d", exportd.TypeFloat),
			col("c", exportd.TypeString), col("vc", exportd.TypeString), col("tx", exportd.TypeString),
			col("bl", exportd.TypeString), col("vb", exportd.TypeString), col("j", exportd.TypeString),
			col("dt", exportd.TypeDate), col("dtt", exportd.TypeDateTime), col("ts", exportd.TypeDateTime),
			col("tod", exportd.TypeString), col("y", exportd.TypeInt), col("b", exportd.TypeInt),
			col("b64", exportd.TypeInt), col("e", exportd.TypeString), col("st", exportd.TypeString),
			col("expr", exportd.TypeInt), col("quarter", exportd.TypeDecimal),
		},
		Rows: [][]exportd.Value{
			{i64(127), i64(1), i64(32767), i64(2147483647), i64(math.MaxInt64), dec("18446744073709551615"),
				dec("123456789012345678901234567890.123456789000000000000000000000"), dec("-12.50"), f64(0.1),
				f64(math.MaxFloat64), str("ab"), str(`김민준 😀 "q"`), str("line1\nline2"), str(`\x00ff`), str("hello"),
				str(`{"a": [1, 2]}`), date("2024-02-29"), naive("2024-01-02 03:04:05.123456"), kst("2024-01-02 12:04:05.123"),
				str("13:14:15"), i64(2024), i64(129), dec("18446744073709551615"), str("b"), str("x,y"), i64(9),
				dec("536870911.7500")},
			{i64(-128), i64(0), i64(-32768), i64(-2147483648), i64(math.MinInt64), i64(0),
				dec("-0.000000000000000000000000000001"), dec("0.00"), f64(-0.5), f64(2.2250738585072014e-308),
				str(""), str(""), str(""), str(""), str(`\xff`), str("[]"), null, null, kst("1970-01-01 09:00:01"),
				str("-838:59:59"), i64(0), i64(0), i64(0), str("a"), str(""), i64(0), dec("-536870912.0000")},
			nulls,
			append(append([]exportd.Value{}, nulls[:16]...), str("2024-00-00"), naive("2024-01-02 03:04:05"),
				null, null, null, null, null, null, null, null, null),
		},
	}
}

func fixture(t *testing.T, url string) sourcetest.Fixture {
	dsn, err := mysql.DSNFromURL(url)
	if err != nil {
		t.Fatal(err)
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	dsn += sep + "time_zone=%27%2B00%3A00%27"
	db := func(t *testing.T) *sql.DB {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	// One pool watches the process list for the whole test: a poll that
	// connected afresh each time would add its own connection set-up to
	// the time a cancelled query is seen gone.
	monitor := db(t)
	t.Cleanup(func() { monitor.Close() })
	return sourcetest.Fixture{
		Exec: func(t *testing.T, stmts ...string) {
			t.Helper()
			db := db(t)
			defer db.Close()
			for _, s := range stmts {
				if _, err := db.Exec(s); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
		},
		Types:        types(),
		DateTimeType: "DATETIME",
		// MariaDB's SEQUENCE engine streams its rows.
		Series: func(n int) string { return fmt.Sprintf("SELECT seq AS n FROM seq_1_to_%d", n) },
		// At row at, the scalar subquery returns two rows: error 1242.
		FailAt: func(at int) string {
			return fmt.Sprintf("SELECT s.seq + COALESCE((SELECT 0 FROM seq_1_to_2 AS x WHERE s.seq = %[1]d), 0) AS n FROM seq_1_to_%[1]d AS s", at)
		},
		Long: func(marker string) string { return fmt.Sprintf("SELECT SLEEP(30), '%s' AS marker", marker) },
		Running: func(t *testing.T, marker string) bool {
			t.Helper()
			var n int
			err := monitor.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM information_schema.PROCESSLIST
				WHERE ID <> CONNECTION_ID() AND INFO LIKE CONCAT('%', ?, '%')`, marker).Scan(&n)
			if err != nil {
				t.Fatal(err)
			}
			return n > 0
		},
	}
}

func TestSource(t *testing.T) {
	url := sourcetest.IntegrationURL(t, "EXPORTD_MYSQL_URL")
	sourcetest.Run(t, func(t *testing.T, opts exportd.SourceOptions) exportd.Source {
		src, err := mysql.Open(t.Context(), url, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		return src
	}, fixture(t, url))
}

func TestDSNFromURL(t *testing.T) {
	tests := []struct{ url, want string }{
		{"mysql://root@127.0.0.1:3306/test", "root@tcp(127.0.0.1:3306)/test"},
		{"mysql://u:p%40ss@db/shop?tls=true", "u:p@ss@tcp(db:3306)/shop?tls=true"},
		{"mysql://u@/shop?socket=/run/mysqld/mysqld.sock", "u@unix(/run/mysqld/mysqld.sock)/shop"},
	}
	for _, tt := range tests {
		got, err := mysql.DSNFromURL(tt.url)
		if err != nil || got != tt.want {
			t.Errorf("DSNFromURL(%q) = %q, %v; want %q", tt.url, got, err, tt.want)
		}
	}
	if _, err := mysql.DSNFromURL("postgres://x/y"); err == nil {
		t.Error("DSNFromURL accepts a postgres URL")
	}
}
