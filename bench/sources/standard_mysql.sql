-- The standard benchmark dataset as a MariaDB table (uses the SEQUENCE
-- engine's seq_0_to_N tables); run with: sed "s/@N@/999999/" | mariadb test
DROP TABLE IF EXISTS bench_accounts;
CREATE TABLE bench_accounts (
  id BIGINT PRIMARY KEY, name VARCHAR(20) NOT NULL, email VARCHAR(64) NOT NULL,
  signup_at DATETIME NOT NULL, score_avg DOUBLE NOT NULL, visits INT NOT NULL,
  active BOOLEAN NOT NULL, balance DECIMAL(12, 2) NOT NULL, note TEXT, category VARCHAR(16) NOT NULL
) DEFAULT CHARSET = utf8mb4;
INSERT INTO bench_accounts
SELECT seq + 1,
       CONCAT(SUBSTRING('김이박최정강조윤장임한오서신권황안송전홍', seq % 20 + 1, 1),
              SUBSTRING('민서지하도예수시주현유은채윤승다', (seq DIV 20) % 16 + 1, 1),
              SUBSTRING('준윤호연아린원진우빈희은율현영성', (seq DIV 320) % 16 + 1, 1)),
       CONCAT('user', seq, '@example.com'),
       TIMESTAMP '2020-01-01 00:00:00' + INTERVAL (seq * 37) MINUTE,
       ((seq * 7919) % 10000) / 100e0,
       (seq * 31) % 5000,
       seq % 3 <> 0,
       ((seq * 104729) % 10000000) / 100,
       CASE WHEN seq % 5 = 0 THEN NULL
            WHEN seq % 7 = 1 THEN CONCAT('R&D, priority ', seq)
            WHEN seq % 11 = 2 THEN CONCAT('said "hi" #', seq)
            WHEN seq % 13 = 3 THEN CONCAT('line1\nline2 #', seq)
            ELSE CONCAT('메모 ', seq) END,
       ELT((seq DIV 7) % 5 + 1, 'standard', 'silver', 'gold', 'platinum', 'dormant')
  FROM seq_0_to_@N@;
