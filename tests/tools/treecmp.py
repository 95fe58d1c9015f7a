#!/usr/bin/python3
"""treecmp.py A B [--ignore NAME ...]: compare two directory trees exactly:
the same relative paths, the same bytes, the same mtimes (to the nanosecond) for messages in cur/ and new/.
Prints each difference; exit 1 if any."""
import os, sys

def walk(root, ignore):
    out = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in ignore]
        for f in files:
            if f in ignore:
                continue
            p = os.path.join(d, f)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_mtime_ns, p)
        for x in dirs:
            out.setdefault(os.path.relpath(os.path.join(d, x), root) + '/', (None, None))
    return out

def main():
    args = sys.argv[1:]
    ignore = set()
    while '--ignore' in args:
        i = args.index('--ignore')
        ignore.add(args[i + 1])
        del args[i:i + 2]
    a, b = walk(args[0], ignore), walk(args[1], ignore)
    bad = 0
    for k in sorted(set(a) | set(b)):
        if k not in a or k not in b:
            print(f'only in {args[0] if k in a else args[1]}: {k}')
            bad += 1
            continue
        if k.endswith('/'):
            continue
        (ma, pa), (mb, pb) = a[k], b[k]
        if open(pa, 'rb').read() != open(pb, 'rb').read():
            print(f'content differs: {k}')
            bad += 1
        elif ma != mb and os.path.basename(os.path.dirname(k)) in ('cur', 'new'):
            # messages' mtimes are their INTERNALDATE; control files are rewritten
            print(f'mtime differs: {k}: {ma} != {mb}')
            bad += 1
    print(f'{len(a)} entries compared, {bad} differences')
    sys.exit(1 if bad else 0)

main()
