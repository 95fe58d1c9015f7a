#!/usr/bin/env python3
"""compare.py SRC DST — is a restored Maildir tree the same as its source?

Prints one line of verdicts and exits 0 when every message is byte-identical.
Checks, over every Maildir message file (in cur/ or new/):
  messages  same set of (folder, base name) with the same bytes
  names     same full file names (flags after ':2,') and same cur/new placement
  mtimes    same mtime in whole seconds (IMAP INTERNALDATE)
and over every other file (dovecot-uidlist, dovecot-keywords, subscriptions,
maildirfolder): whether each is byte-identical (Arca may legitimately write an
equivalent uidlist rather than the same bytes; this is reported, not failed).
"""
import hashlib
import json
import os
import sys


def scan(root):
    msgs, names, others = {}, {}, {}
    for d, dirs, files in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(d, root)
        leaf = os.path.basename(d)
        for f in files:
            p = os.path.join(d, f)
            st = os.lstat(p)
            with open(p, 'rb') as fh:
                h = hashlib.sha256(fh.read()).hexdigest()
            if leaf in ('cur', 'new'):
                folder = os.path.dirname(rel)
                base = f.split(':2,')[0]
                msgs[(folder, base)] = (h, int(st.st_mtime))
                names[(folder, base)] = leaf + '/' + f
            else:
                others[os.path.join(rel, f)] = h
    return msgs, names, others


def main():
    src, dst = sys.argv[1], sys.argv[2]
    sm, sn, so = scan(src)
    dm, dn, do = scan(dst)
    missing = [k for k in sm if k not in dm]
    extra = [k for k in dm if k not in sm]
    diff = [k for k in sm if k in dm and sm[k][0] != dm[k][0]]
    badt = [k for k in sm if k in dm and sm[k][1] != dm[k][1]]
    badn = [k for k in sm if k in dn and sn[k] != dn[k]]
    oth = [k for k in so if do.get(k) != so[k]]
    ok = not missing and not extra and not diff
    res = {
        'messages': len(sm), 'identical': ok, 'missing': len(missing), 'extra': len(extra),
        'content_differs': len(diff), 'mtime_differs': len(badt), 'name_differs': len(badn),
        'other_files': len(so), 'other_files_differ': len(oth),
    }
    line = ('%s: %d messages %s; missing %d, extra %d, bytes differ %d; names differ %d; '
            'mtimes differ %d; other files differ %d/%d' % (
                'OK' if ok else 'MISMATCH', len(sm), 'byte-identical' if ok else 'NOT identical',
                len(missing), len(extra), len(diff), len(badn), len(badt), len(oth), len(so)))
    print(line)
    for k in (missing + extra + diff)[:5]:
        print('  e.g. %s/%s' % k)
    for k in oth[:3]:
        print('  other file differs: %s' % k)
    if len(sys.argv) > 3:
        with open(sys.argv[3], 'w') as f:
            json.dump(res, f)
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
