#!/usr/bin/python3
"""Read an xlsxbench workbook back with openpyxl (read-only, row by row) and
compare every row with the standard dataset (../shared/BENCHMARKS.md).
Usage: /usr/bin/python3 bench/xlsxbench/readback.py FILE ROWS"""
import datetime, sys, time
import openpyxl

SURNAME = "김 이 박 최 정 강 조 윤 장 임 한 오 서 신 권 황 안 송 전 홍".split()
GIVEN1 = "민 서 지 하 도 예 수 시 주 현 유 은 채 윤 승 다".split()
GIVEN2 = "준 윤 호 연 아 린 원 진 우 빈 희 은 율 현 영 성".split()
CATEGORY = "standard silver gold platinum dormant".split()
EPOCH = datetime.datetime(2020, 1, 1)

def note(i):
    if i % 5 == 0: return None
    if i % 7 == 1: return "R&D, priority %d" % i
    if i % 11 == 2: return 'said "hi" #%d' % i
    if i % 13 == 3: return "line1\nline2 #%d" % i
    return "메모 %d" % i

def row(i):
    return (i + 1, SURNAME[i % 20] + GIVEN1[(i // 20) % 16] + GIVEN2[(i // 320) % 16],
            "user%d@example.com" % i, EPOCH + datetime.timedelta(minutes=i * 37),
            ((i * 7919) % 10000) / 100.0, (i * 31) % 5000, i % 3 != 0,
            ((i * 104729) % 10000000) / 100.0, note(i), CATEGORY[(i // 7) % 5])

start = time.time()
wb = openpyxl.load_workbook(sys.argv[1], read_only=True)
ws = wb["Sheet1"]
n, bad = 0, 0
for r in ws.iter_rows(min_row=2, values_only=True):
    want = row(n)
    got = tuple(r) + (None,) * (10 - len(r))
    if got != want:
        bad += 1
        if bad <= 5: print("row", n, got, "!=", want)
    n += 1
print("rows=%d mismatches=%d seconds=%.1f" % (n, bad, time.time() - start))
sys.exit(1 if bad or n != int(sys.argv[2]) else 0)
