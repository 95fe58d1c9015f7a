#!/usr/bin/python3
"""treecmp.py A B [--ignore NAME] [--ignore-glob PATTERN] [--ignore-path PATTERN]
                [--uidlist-live] ...:
compare two directory trees exactly: the same relative paths, the same bytes,
the same mtimes (to the nanosecond) for messages in cur/ and new/.  --ignore
skips files and directories of that name, --ignore-glob those whose name
matches the shell pattern, --ignore-path files whose path relative to the
tree's root matches it.

--uidlist-live: A is a live Dovecot's store.  Dovecot appends records to a
dovecot-uidlist without rewriting its header, so N there may be stale, and
it keeps the records of expunged files until its next sync; B's
dovecot-uidlist must then have the same header fields, the same next UID
(max(N, last UID + 1)), and exactly A's records (UID, fields, file name as
written) of the files A's folder still has.  Prints each difference; exit 1
if any."""
import difflib, fnmatch, os, sys

def walk(root, ignore, globs, paths):
    def skipped(name):
        return name in ignore or any(fnmatch.fnmatchcase(name, g) for g in globs)
    out = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not skipped(x)]
        for f in files:
            if skipped(f):
                continue
            p = os.path.join(d, f)
            if any(fnmatch.fnmatchcase(os.path.relpath(p, root), g) for g in paths):
                continue
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_mtime_ns, p)
        for x in dirs:
            out.setdefault(os.path.relpath(os.path.join(d, x), root) + '/', (None, None))
    return out

def parse_uidlist(data):
    lines = data.decode('utf-8', 'surrogateescape').split('\n')
    assert lines[-1] == '', 'no final newline'
    head = lines[0].split(' ')
    assert head[0] == '3', 'not version 3'
    fields = {}
    for f in head[1:]:
        fields.setdefault(f[0], []).append(f[1:])
    recs = {}
    for line in lines[1:-1]:
        uid, rest = line.split(' ', 1)
        ext, name = ('', rest[1:]) if rest.startswith(':') else rest.split(' :', 1)
        recs[int(uid)] = (ext, name)
    n = int(fields.pop('N')[0])
    nextuid = max([n] + [u + 1 for u in recs])
    return fields, nextuid, recs


def uidlist_live_differs(pa, pb):
    """Why B's dovecot-uidlist is not A's as a live Dovecot would read it, or None."""
    fa, na, ra = parse_uidlist(open(pa, 'rb').read())
    fb, nb, rb = parse_uidlist(open(pb, 'rb').read())
    if fa != fb:
        return f'header fields {fa} != {fb}'
    if na != nb:
        return f'next uid {na} != {nb}'
    d = os.path.dirname(pa)
    present = set()
    for sub in ('cur', 'new'):
        for f in os.listdir(os.path.join(d, sub)) if os.path.isdir(os.path.join(d, sub)) else []:
            present.add(f.split(':', 1)[0])
    want = {u: r for u, r in ra.items() if r[1].split(':', 1)[0] in present}
    if want != rb:
        bad = sorted(set(want.items()) ^ set(rb.items()))[:4]
        return f'records differ, e.g. {bad}'
    return None


NAMED = 0


def main():
    args = sys.argv[1:]
    opts = {'--ignore': set(), '--ignore-glob': [], '--ignore-path': []}
    rest = []
    live = '--uidlist-live' in args
    args = [x for x in args if x != '--uidlist-live']
    i = 0
    while i < len(args):
        if args[i] in opts and i + 1 < len(args):
            v = opts[args[i]]
            v.add(args[i + 1]) if isinstance(v, set) else v.append(args[i + 1])
            i += 2
        else:
            rest.append(args[i])
            i += 1
    args = rest
    if len(args) != 2:
        sys.exit(__doc__)
    a = walk(args[0], opts['--ignore'], opts['--ignore-glob'], opts['--ignore-path'])
    b = walk(args[1], opts['--ignore'], opts['--ignore-glob'], opts['--ignore-path'])
    bad = 0
    for k in sorted(set(a) | set(b)):
        if k not in a or k not in b:
            print(f'only in {args[0] if k in a else args[1]}: {k}')
            bad += 1
            continue
        if k.endswith('/'):
            continue
        (ma, pa), (mb, pb) = a[k], b[k]
        da, db = open(pa, 'rb').read(), open(pb, 'rb').read()
        if live and os.path.basename(k) == 'dovecot-uidlist':
            global NAMED
            NAMED += sum(1 for r in parse_uidlist(da)[2].values() if ':' in r[1])
            why = uidlist_live_differs(pa, pb)
            if why:
                print(f'uidlist differs: {k}: {why}')
                bad += 1
        elif da != db:
            print(f'content differs: {k}')
            if os.path.basename(os.path.dirname(k)) not in ('cur', 'new') and max(len(da), len(db)) < 65536:
                # a control file: show how (the first lines of a diff)
                ld = list(difflib.unified_diff(da.decode('utf-8', 'replace').splitlines(),
                                               db.decode('utf-8', 'replace').splitlines(),
                                               lineterm='', n=0))
                for line in ld[2:12]:
                    print('      ' + line)
            bad += 1
        elif ma != mb and os.path.basename(os.path.dirname(k)) in ('cur', 'new'):
            # messages' mtimes are their INTERNALDATE; control files are rewritten
            print(f'mtime differs: {k}: {ma} != {mb}')
            bad += 1
    print(f'{len(a)} entries compared, {bad} differences' +
          (f'; {NAMED} dovecot-uidlist records name a file by its whole name' if live else ''))
    sys.exit(1 if bad else 0)

main()
