#!/usr/bin/env bash
# Sources benchmark: the standard dataset (N rows, default 1,000,000) exported
# from PostgreSQL, MariaDB and SQLite by exportd, side by side with each
# database's own client writing the same rows to a file: psql's \copy … csv,
# `mariadb --quick --batch` (TSV) and `sqlite3 -csv`. Whole-process wall time
# CPU time (user + system) and peak RSS (/usr/bin/time); the runs are interleaved (round r runs every
# command once, R rounds, default 5), so that load from other processes falls
# on all of them alike. Prints a Markdown table: the minimum and the median
# wall time of each command, its median CPU time, its largest peak RSS, and
# its ratio to its own database's client (minimum to minimum, median to
# median, and paired: the median of each round's ratio to the same round's
# client, which holds best when the machine's speed drifts between rounds).
#
#   bench/sources/run.sh [N [R]]
#   EXPORTD_BASELINE=/path/to/old/exportd bench/sources/run.sh   # adds the old binary's runs, for before/after
#   SOURCES="mysql sqlite" bench/sources/run.sh                   # only these (default: pg mysql sqlite)
#
# Needs EXPORTD_POSTGRES_URL and EXPORTD_MYSQL_URL (see README) and psql,
# mariadb and sqlite3 (installed with apt-get when missing and run as root).
# The tables are created once (bench_accounts) and reused.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000000}
R=${2:-5}
SOURCES=" ${SOURCES:-pg mysql sqlite} "
want() { [[ $SOURCES == *" $1 "* ]]; }
PG=${EXPORTD_POSTGRES_URL:-}
MY=${EXPORTD_MYSQL_URL:-}
want pg && : "${PG:?set EXPORTD_POSTGRES_URL}"
want mysql && : "${MY:?set EXPORTD_MYSQL_URL}"
BASE=${EXPORTD_BASELINE:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if want sqlite && ! command -v sqlite3 >/dev/null; then
	echo "installing the sqlite3 CLI (the reference for SQLite)…" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sqlite3 >/dev/null
fi

CGO_ENABLED=0 go build -o "$work/exportd" ./cmd/exportd

# mysql://user:pass@host:port/db → mariadb client flags
my_rest=${MY#mysql://}; my_cred=${my_rest%%@*}; my_hostdb=${my_rest#*@}
my_user=${my_cred%%:*}; my_pass=""; [[ $my_cred == *:* ]] && my_pass=${my_cred#*:}
my_host=${my_hostdb%%/*}; my_db=${my_hostdb#*/}; my_db=${my_db%%\?*}
my_port=3306; [[ $my_host == *:* ]] && my_port=${my_host##*:}
mysqlc() { mariadb -h"${my_host%%:*}" -P"$my_port" -u"$my_user" ${my_pass:+-p"$my_pass"} --default-character-set=utf8mb4 "$my_db" "$@"; }

if want pg && [[ $(psql "$PG" -Atc "SELECT count(*) FROM bench_accounts" 2>/dev/null || echo 0) != "$N" ]]; then
	echo "creating bench_accounts ($N rows) in PostgreSQL…" >&2
	psql "$PG" -q -v n="$N" -f bench/sources/standard_postgres.sql >/dev/null 2>&1
fi
if want mysql && [[ $(mysqlc -N -e "SELECT count(*) FROM bench_accounts" 2>/dev/null || echo 0) != "$N" ]]; then
	echo "creating bench_accounts ($N rows) in MariaDB…" >&2
	sed "s/@N@/$((N - 1))/" bench/sources/standard_mysql.sql | mysqlc
fi
DB="$work/demo/demo.db"
if want sqlite; then
	echo "creating the SQLite demo ($N account rows)…" >&2
	"$work/exportd" demo --no-serve --dir "$work/demo" --rows "$N" >/dev/null
fi

Q="SELECT id, name, email, signup_at, score_avg, visits, active, balance, note, category FROM bench_accounts ORDER BY id"
QS="SELECT id, name, email, signup_at, score_avg, visits, active, balance, note, category FROM accounts ORDER BY id"

# The commands, by name; each writes $work/out.
declare -A cmd
names=()
add() { names+=("$1"); cmd[$1]=$2; }
# Each database's client runs right before the exports of its database,
# so that a round's paired ratios compare runs seconds apart.
exports() { # exports SOURCE DB QUERY: the old binary's exports, then this one's
	local p b
	for p in ${BASE:+before-} ""; do
		b="$work/exportd"
		[[ -n $p ]] && b=$BASE
		add "$p$1-xlsx" "'$b' export -q --db '$2' --query '$3' -o '$work/out' --format xlsx"
		add "$p$1-csv" "'$b' export -q --db '$2' --query '$3' -o '$work/out' --format csv"
	done
}
if want pg; then
	add psql-csv "psql '$PG' -c \"\\copy ($Q) to '$work/out' csv\""
	exports pg "$PG" "$Q"
fi
if want mysql; then
	add mariadb-batch "mariadb -h'${my_host%%:*}' -P'$my_port' -u'$my_user' ${my_pass:+-p'$my_pass'} --default-character-set=utf8mb4 --quick --batch -e '$Q' '$my_db' > '$work/out'"
	exports mysql "$MY" "$Q"
fi
if want sqlite; then
	add sqlite3-csv "sqlite3 -csv '$DB' '$QS' > '$work/out'"
	exports sqlite "sqlite:$DB" "$QS"
fi

ref() { case $1 in *pg-*) echo psql-csv ;; *mysql-*) echo mariadb-batch ;; *sqlite-*) echo sqlite3-csv ;; *) echo "$1" ;; esac; }
declare -A runs wall rss size cpu round paired
echo "measuring ($N rows, $R interleaved rounds)…" >&2
for ((r = 1; r <= R; r++)); do
	for k in "${names[@]}"; do
		rm -f "$work/out"
		/usr/bin/time -f "%e %M %U %S" -o "$work/time" sh -c "${cmd[$k]}" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
		read -r e m u sy <"$work/time"
		runs[$k]+="$e $m $(stat -c %s "$work/out") $(awk -v u="$u" -v s="$sy" 'BEGIN { printf "%.2f", u + s }')"$'\n'
		round[$k]=$e
	done
	for k in "${names[@]}"; do # this round's ratio to the same round's client
		paired[$k]+="$(awk -v a="${round[$k]}" -v b="${round[$(ref "$k")]}" 'BEGIN { printf "%.3f", a / b }')"$'\n'
	done
	echo "  round $r done (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
done
declare -A wmin
for k in "${names[@]}"; do
	med=$(printf '%s' "${runs[$k]}" | sort -n | sed -n "$(((R + 1) / 2))p")
	read -r wall[$k] kib size[$k] _ <<<"$med"
	wmin[$k]=$(printf '%s' "${runs[$k]}" | sort -n | head -1 | cut -d' ' -f1)
	rss[$k]=$(($(printf '%s' "${runs[$k]}" | cut -d' ' -f2 | sort -n | tail -1) / 1024))
	cpu[$k]=$(printf '%s' "${runs[$k]}" | cut -d' ' -f4 | sort -n | sed -n "$(((R + 1) / 2))p")
	echo "  $k: $(printf '%s' "${runs[$k]}" | cut -d' ' -f1 | tr '\n' ' ')s → median ${wall[$k]} s" >&2
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "| export ($N rows, $R rounds) | wall s, min | wall s, median | CPU s (client), median | rows/s (median) | peak RSS MiB (max) | size MiB | vs its database's client, min / median / paired |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for k in "${names[@]}"; do
	r=$(ref "$k")
	pmed=$(printf '%s' "${paired[$k]}" | sort -n | sed -n "$(((R + 1) / 2))p")
	printf '| %s | %s | %s | %s | %s | %s | %s | %s× / %s× / %.2f× |\n' "$k" "${wmin[$k]}" "${wall[$k]}" "${cpu[$k]}" \
		"$(awk -v n="$N" -v s="${wall[$k]}" 'BEGIN { printf "%d", n / s }')" "${rss[$k]}" \
		"$(awk -v b="${size[$k]}" 'BEGIN { printf "%.1f", b / 1048576 }')" \
		"$(ratio "${wmin[$k]}" "${wmin[$r]}")" "$(ratio "${wall[$k]}" "${wall[$r]}")" "$pmed"
done
