package postgres_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/postgres"
	"github.com/exportd/exportd/sourcetest"
	"github.com/jackc/pgx/v5"
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
	nulls := make([]exportd.Value, 25)
	return sourcetest.TypeTable{
		Create: `CREATE TABLE %[1]s (id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, num numeric, num2 numeric(10,2),
			f4 float4, f8 float8, b bool, t text, vc varchar(20), ch char(5), u uuid, j json, jb jsonb,
			d date, ts timestamp, tstz timestamptz, by bytea, arr int[], tarr text[], iv interval, ip inet, tod time)`,
		Inserts: []string{
			`INSERT INTO %[1]s VALUES (1, 32767, 2147483647, 9223372036854775807, 123456789012345678901234567890.123456789, -12.5,
				0.1, 1.7976931348623157e308, true, '김민준 😀 "q"', 'abc', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
				'{"a": [1, 2]}', '{"b":1, "a":"x"}', '2024-02-29', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05+00',
				'\x00ff', '{1,2,NULL}', '{"a b","c,d",김}', '1 day 02:03:04', '192.168.0.1/24', '13:14:15')`,
			`INSERT INTO %[1]s VALUES (2, -32768, -2147483648, -9223372036854775808, 'NaN', 0,
				'NaN', '-Infinity', false, '', '', '', NULL, 'null', '[]', 'infinity', '-infinity', 'infinity',
				'', '{}', '{}', '0', '::1', '00:00:00')`,
			`INSERT INTO %[1]s (id) VALUES (3)`,
			`INSERT INTO %[1]s VALUES (4, 0, 0, 0, '-0.000000000000000000000000000001', 99999999.99,
				'-Infinity', 5e-324, NULL, 'line1
line2', NULL, NULL, NULL, NULL, NULL, '0044-03-15 BC', '1999-12-31 23:59:59.999999', '1999-12-31 23:59:59.999999-08',
				NULL, NULL, NULL, NULL, NULL, NULL)`,
			`INSERT INTO %[1]s (id, num, f8, tstz) VALUES (5, 'Infinity', 'Infinity', '-infinity')`,
		},
		Select: `SELECT i2, i4, i8, num, num2, f4, f8, b, t, vc, ch, u, j, jb, d, ts, tstz, by, arr, tarr, iv, ip, tod,
			length(t) AS expr, i4::numeric / 4 AS quarter FROM %[1]s ORDER BY id`,
		Columns: []sourcetest.Column{
			col("i2", exportd.TypeInt), col("i4", exportd.TypeInt), col("i8", exportd.TypeInt),
			col("num", exportd.TypeDecimal), col("num2", exportd.TypeDecimal), col("f4", exportd.TypeFloat),
			col("f8", exportd.TypeFloat), col("b", exportd.TypeBool), col("t", exportd.TypeString),
			col("vc", exportd.TypeString), col("ch", exportd.TypeString), col("u", exportd.TypeString),
			col("j", exportd.TypeString), col("jb", exportd.TypeString), col("d", exportd.TypeDate),
			col("ts", exportd.TypeDateTime), col("tstz", exportd.TypeDateTime), col("by", exportd.TypeString),
			col("arr", exportd.TypeString), col("tarr", exportd.TypeString), col("iv", exportd.TypeString),
			col("ip", exportd.TypeString), col("tod", exportd.TypeString), col("expr", exportd.TypeInt),
			col("quarter", exportd.TypeDecimal),
		},
		Rows: [][]exportd.Value{
			{i64(32767), i64(2147483647), i64(math.MaxInt64), dec("123456789012345678901234567890.123456789"), dec("-12.50"),
				f64(0.1), f64(math.MaxFloat64), exportd.Bool(true), str(`김민준 😀 "q"`), str("abc"), str("ab   "),
				str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), str(`{"a": [1, 2]}`), str(`{"a": "x", "b": 1}`),
				date("2024-02-29"), naive("2024-01-02 03:04:05.123456"), kst("2024-01-02 12:04:05"), str(`\x00ff`),
				str("{1,2,NULL}"), str(`{"a b","c,d",김}`), str("1 day 02:03:04"), str("192.168.0.1/24"), str("13:14:15"),
				i64(9), dec("536870911.75000000")},
			{i64(-32768), i64(-2147483648), i64(math.MinInt64), str("NaN"), dec("0.00"),
				f64(math.NaN()), f64(math.Inf(-1)), exportd.Bool(false), str(""), str(""), str("     "),
				null, str("null"), str("[]"), str("infinity"), str("-infinity"), str("infinity"), str(`\x`),
				str("{}"), str("{}"), str("00:00:00"), str("::1"), str("00:00:00"), i64(0), dec("-536870912.00000000")},
			nulls,
			{i64(0), i64(0), i64(0), dec("-0.000000000000000000000000000001"), dec("99999999.99"),
				f64(math.Inf(-1)), f64(5e-324), null, str("line1\nline2"), null, null, null, null, null,
				exportd.Date(time.Date(-43, 3, 15, 0, 0, 0, 0, time.UTC)), naive("1999-12-31 23:59:59.999999"),
				kst("2000-01-01 16:59:59.999999"), null, null, null, null, null, null, i64(11), dec("0.00000000000000000000")},
			{null, null, null, str("Infinity"), null, null, f64(math.Inf(1)), null, null, null, null, null, null, null,
				null, null, str("-infinity"), null, null, null, null, null, null, null, null},
		},
	}
}

func fixture(url string) sourcetest.Fixture {
	exec := func(t *testing.T, stmts ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
	return sourcetest.Fixture{
		Exec:         exec,
		Types:        types(),
		DateTimeType: "TIMESTAMP",
		Series:       func(n int) string { return fmt.Sprintf("SELECT generate_series(1, %d) AS n", n) },
		FailAt: func(at int) string {
			return fmt.Sprintf("SELECT n + 0 * (1 / (%[1]d - n)) AS n FROM (SELECT generate_series(1, %[1]d) AS n) AS g", at)
		},
		Long: func(marker string) string { return fmt.Sprintf("SELECT pg_sleep(30), '%s' AS marker", marker) },
		Running: func(t *testing.T, marker string) bool {
			t.Helper()
			conn, err := pgx.Connect(t.Context(), url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			var n int
			err = conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
				WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%' || $1 || '%'`, marker).Scan(&n)
			if err != nil {
				t.Fatal(err)
			}
			return n > 0
		},
	}
}

func TestSource(t *testing.T) {
	url := sourcetest.IntegrationURL(t, "EXPORTD_POSTGRES_URL")
	sourcetest.Run(t, func(t *testing.T, opts exportd.SourceOptions) exportd.Source {
		src, err := postgres.Open(t.Context(), url, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		return src
	}, fixture(url))
}
