#!/usr/bin/python3
"""count — check that a tool's mirror holds what Dovecot holds, per account.

    count.py expect STATUS_TSV DELETED_TSV SEEN_TSV SEEN_DELETED_TSV OUT
        STATUS_TSV: `doveadm -f tab mailbox status -A messages '*'`
        DELETED_TSV: `doveadm -f tab search -A deleted` (SEEN_TSV: seen,
        SEEN_DELETED_TSV: seen deleted)
        writes OUT: account, messages, flagged \\Deleted, \\Seen, both

    count.py check EXPECT ACCOUNTS maildir DIR_PATTERN [nodeleted]
        counts the files in every cur/ and new/ under DIR_PATTERN (%u = the
        account), and those with the S (\\Seen) flag, and compares with
        EXPECT; with "nodeleted" the messages flagged \\Deleted are left out
        of the expectation (mbsync does not copy them).
    count.py check EXPECT ACCOUNTS arca SNAPSHOTS_JSON
        uses each account's latest snapshot in `arca snapshots --json`.

Prints "ok: N accounts, M messages" or the first mismatches; exit 1 on any.
"""
import json
import os
import sys


def expect(status, deleted, seen, seendel, out):
    tot, dele, sn, sd = {}, {}, {}, {}
    for path, d, col in ((status, tot, 2), (deleted, dele, None), (seen, sn, None), (seendel, sd, None)):
        with open(path) as f:
            next(f, None)  # header
            for line in f:
                p = line.rstrip('\n').split('\t')
                if len(p) < 2:
                    continue
                d[p[0]] = d.get(p[0], 0) + (int(p[col]) if col is not None else 1)
    with open(out, 'w') as f:
        for a in sorted(tot):
            f.write('%s\t%d\t%d\t%d\t%d\n' % (a, tot[a], dele.get(a, 0), sn.get(a, 0), sd.get(a, 0)))
    print('%d accounts, %d messages (%d \\Seen, %d flagged \\Deleted)'
          % (len(tot), sum(tot.values()), sum(sn.values()), sum(dele.values())))
    return 0


def maildir_count(root):
    n = seen = 0
    for dirpath, dirnames, filenames in os.walk(root):
        if os.path.basename(dirpath) in ('cur', 'new'):
            n += len(filenames)
            for f in filenames:
                _, sep, flags = f.rpartition(':2,')
                if sep and 'S' in flags:
                    seen += 1
            dirnames[:] = []
    return n, seen


def check(exp_path, accts_path, mode, arg, nodeleted=False):
    exp = {}
    with open(exp_path) as f:
        for line in f:
            a, t, d, sn, sd = line.rstrip('\n').split('\t')
            exp[a] = (int(t), int(d), int(sn), int(sd))
    accts = [a.strip() for a in open(accts_path) if a.strip()]
    got = {}
    if mode == 'maildir':
        for a in accts:
            got[a] = maildir_count(arg.replace('%u', a))
    elif mode == 'arca':
        snaps = json.load(open(arg))
        if isinstance(snaps, dict):
            snaps = snaps.get('snapshots', [])
        best = {}
        for s in snaps:
            a = s.get('account')
            k = (s.get('seq', 0), s.get('time', ''))
            if a is not None and (a not in best or k >= best[a][0]):
                best[a] = (k, (int(s.get('messages', 0)), None))
        got = {a: v[1] for a, v in best.items()}
    else:
        print('unknown mode %s' % mode)
        return 2
    bad = []
    total = tseen = 0
    for a in accts:
        t, d, sn, sd = exp.get(a, (0, 0, 0, 0))
        want = (t - d, sn - sd) if nodeleted else (t, sn)
        g = got.get(a)
        if g is None:
            bad.append('%s: missing' % a)
            continue
        total += g[0]
        tseen += g[1] or 0
        if g[0] != want[0] or (g[1] is not None and g[1] != want[1]):
            bad.append('%s: %d messages (%s \\Seen), Dovecot %d (%d)'
                       % (a, g[0], '-' if g[1] is None else g[1], want[0], want[1]))
    if bad:
        print('MISMATCH in %d of %d accounts (%s)' % (len(bad), len(accts), '; '.join(bad[:3])))
        return 1
    print('ok: %d accounts, %d messages%s%s' % (
        len(accts), total, ', %d \\Seen' % tseen if mode == 'maildir' else ' (counts only)',
        ' (messages flagged \\Deleted not copied)' if nodeleted else ''))
    return 0


def main(argv):
    if len(argv) == 6 and argv[0] == 'expect':
        return expect(*argv[1:])
    if len(argv) in (5, 6) and argv[0] == 'check':
        return check(argv[1], argv[2], argv[3], argv[4], len(argv) == 6 and argv[5] == 'nodeleted')
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
