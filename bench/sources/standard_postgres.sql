-- The standard benchmark dataset (../../../shared/BENCHMARKS.md) as a
-- PostgreSQL table; psql -v n=1000000 -f standard_postgres.sql
DROP TABLE IF EXISTS bench_accounts;
CREATE TABLE bench_accounts AS
SELECT i + 1 AS id,
       substr('김이박최정강조윤장임한오서신권황안송전홍', (i % 20)::int + 1, 1) ||
       substr('민서지하도예수시주현유은채윤승다', ((i / 20) % 16)::int + 1, 1) ||
       substr('준윤호연아린원진우빈희은율현영성', ((i / 320) % 16)::int + 1, 1) AS name,
       'user' || i || '@example.com' AS email,
       timestamp '2020-01-01 00:00:00' + (i * 37) * interval '1 minute' AS signup_at,
       ((i * 7919) % 10000) / 100.0::float8 AS score_avg,
       ((i * 31) % 5000)::int AS visits,
       i % 3 <> 0 AS active,
       (((i * 104729) % 10000000) / 100.0)::numeric(12, 2) AS balance,
       CASE WHEN i % 5 = 0 THEN NULL
            WHEN i % 7 = 1 THEN 'R&D, priority ' || i
            WHEN i % 11 = 2 THEN 'said "hi" #' || i
            WHEN i % 13 = 3 THEN E'line1\nline2 #' || i
            ELSE '메모 ' || i END AS note,
       (ARRAY['standard', 'silver', 'gold', 'platinum', 'dormant'])[((i / 7) % 5)::int + 1] AS category
  FROM generate_series(0::bigint, :n - 1) AS i;
ALTER TABLE bench_accounts ADD PRIMARY KEY (id);
ANALYZE bench_accounts;
