#!/usr/bin/env bash
# Sources benchmark: the standard dataset (N rows, default 1,000,000) exported
# from PostgreSQL, MariaDB and SQLite by exportd, side by side with psql's
# \copy … csv of the same rows. Whole-process wall time and peak RSS
# (/usr/bin/time), median of 3 runs. Prints a Markdown table.
#
#   bench/sources/run.sh [N]
#
# Needs EXPORTD_POSTGRES_URL and EXPORTD_MYSQL_URL (see README) and psql,
# mariadb. The tables are created once (bench_accounts) and reused.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000000}
PG=${EXPORTD_POSTGRES_URL:?set EXPORTD_POSTGRES_URL}
MY=${EXPORTD_MYSQL_URL:?set EXPORTD_MYSQL_URL}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

CGO_ENABLED=0 go build -o "$work/exportd" ./cmd/exportd

# mysql://user:pass@host:port/db → mariadb client flags
my_rest=${MY#mysql://}; my_cred=${my_rest%%@*}; my_hostdb=${my_rest#*@}
my_user=${my_cred%%:*}; my_pass=""; [[ $my_cred == *:* ]] && my_pass=${my_cred#*:}
my_host=${my_hostdb%%/*}; my_db=${my_hostdb#*/}; my_db=${my_db%%\?*}
mysqlc() { mariadb -h"${my_host%%:*}" -P"${my_host##*:}" -u"$my_user" ${my_pass:+-p"$my_pass"} --default-character-set=utf8mb4 "$my_db" "$@"; }

if [[ $(psql "$PG" -Atc "SELECT count(*) FROM bench_accounts" 2>/dev/null || echo 0) != "$N" ]]; then
	echo "creating bench_accounts ($N rows) in PostgreSQL…" >&2
	psql "$PG" -q -v n="$N" -f bench/sources/standard_postgres.sql >/dev/null 2>&1
fi
if [[ $(mysqlc -N -e "SELECT count(*) FROM bench_accounts" 2>/dev/null || echo 0) != "$N" ]]; then
	echo "creating bench_accounts ($N rows) in MariaDB…" >&2
	sed "s/@N@/$((N - 1))/" bench/sources/standard_mysql.sql | mysqlc
fi
sqlite_dir="$work/demo"
echo "creating the SQLite demo ($N account rows)…" >&2
"$work/exportd" demo --no-serve --dir "$sqlite_dir" --rows "$N" >/dev/null

Q="SELECT id, name, email, signup_at, score_avg, visits, active, balance, note, category FROM bench_accounts ORDER BY id"
QS="SELECT id, name, email, signup_at, score_avg, visits, active, balance, note, category FROM accounts ORDER BY id"

# measure NAME CMD… : runs CMD 3 times, records the median wall time and its peak RSS.
declare -A wall rss size
measure() {
	local name=$1; shift
	local runs=()
	for i in 1 2 3; do
		/usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
		runs+=("$(cat "$work/time") $(stat -c %s "$work/out" 2>/dev/null || echo 0)")
	done
	local med
	med=$(printf '%s\n' "${runs[@]}" | sort -n | sed -n 2p)
	read -r wall[$name] kib size[$name] <<<"$med"
	rss[$name]=$((kib / 1024))
	echo "  $name: ${wall[$name]} s, ${rss[$name]} MiB, ${size[$name]} bytes" >&2
}

echo "measuring ($N rows, median of 3)…" >&2
measure psql-csv sh -c "psql '$PG' -c \"\\copy ($Q) to '$work/out' csv\""
measure pg-xlsx "$work/exportd" export -q --db "$PG" --query "$Q" -o "$work/out" --format xlsx
measure pg-csv "$work/exportd" export -q --db "$PG" --query "$Q" -o "$work/out" --format csv
measure mysql-xlsx "$work/exportd" export -q --db "$MY" --query "$Q" -o "$work/out" --format xlsx
measure mysql-csv "$work/exportd" export -q --db "$MY" --query "$Q" -o "$work/out" --format csv
measure sqlite-xlsx "$work/exportd" export -q --db "sqlite:$sqlite_dir/demo.db" --query "$QS" -o "$work/out" --format xlsx
measure sqlite-csv "$work/exportd" export -q --db "sqlite:$sqlite_dir/demo.db" --query "$QS" -o "$work/out" --format csv

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "| export ($N rows) | wall s | rows/s | peak RSS MiB | size MiB | vs psql \\copy csv |"
echo "|---|---:|---:|---:|---:|---:|"
for k in psql-csv pg-xlsx pg-csv mysql-xlsx mysql-csv sqlite-xlsx sqlite-csv; do
	printf '| %s | %s | %s | %s | %s | %s× |\n' "$k" "${wall[$k]}" \
		"$(awk -v n="$N" -v s="${wall[$k]}" 'BEGIN { printf "%d", n / s }')" "${rss[$k]}" \
		"$(awk -v b="${size[$k]}" 'BEGIN { printf "%.1f", b / 1048576 }')" "$(ratio "${wall[$k]}" "${wall[psql-csv]}")"
done
