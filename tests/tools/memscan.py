#!/usr/bin/env python3
"""memscan.py PID FILE OFFSET LEN: exit 0 if the LEN bytes at OFFSET of FILE
appear anywhere in the readable memory of process PID, 1 if not, 2 on error.
(Used to show that arcad's listener never held the ingest key while the
store does.)"""
import re
import sys

pid, path, off, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
needle = open(path, 'rb').read()[off:off + n]
if len(needle) != n:
    sys.exit(2)
found = False
with open(f'/proc/{pid}/maps') as maps, open(f'/proc/{pid}/mem', 'rb', 0) as mem:
    for line in maps:
        m = re.match(r'([0-9a-f]+)-([0-9a-f]+) (\S+)', line)
        lo, hi, perms = int(m.group(1), 16), int(m.group(2), 16), m.group(3)
        if 'r' not in perms or hi - lo > (1 << 32):
            continue
        try:
            mem.seek(lo)
            chunk = mem.read(hi - lo)
        except (OSError, ValueError, OverflowError):
            continue
        if needle in chunk:
            found = True
            break
sys.exit(0 if found else 1)
