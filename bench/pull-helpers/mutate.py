#!/usr/bin/python3
"""mutate — change about PCT% of every account's messages on a live Dovecot.

    mutate.py --host 127.0.0.1 --imap-port P --lmtp-port P
              --master-user admin --master-password masterpw
              --accounts FILE --pct 1 [--seed 1] [--jobs 4]

For each account (one per line in FILE), over all its selectable folders,
with k = round(PCT% of its messages), at least 1:
  - 40% of k: flag changes over IMAP (toggles one of \\Seen \\Flagged
    \\Answered $label1 on a message: added if absent, removed if present);
  - 10% of k, at least 1: expunges (UID STORE +FLAGS \\Deleted, UID EXPUNGE);
  - the rest: new messages delivered to INBOX over LMTP: copies of random
    messages of the account (real sizes) with a new Message-ID and Subject.
Choices come from random.Random("SEED:ACCOUNT"). Logs in as ACCOUNT*MASTER.
Prints one summary line; exits non-zero on any error.
"""
import argparse
import concurrent.futures
import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'tests', 'tools'))
from imapdump import ImapClient, ImapError, quote  # noqa: E402
from populate import Lmtp, PopulateError  # noqa: E402

TOGGLES = ['\\Seen', '\\Flagged', '\\Answered', '$label1']


def uidset(uids):
    return ','.join(str(u) for u in sorted(uids))


def as_bytes(v):
    if isinstance(v, str):
        return v.encode('latin-1')
    return bytes(v or b'')


def mutate_account(o, acct):
    rng = random.Random('%s:%s' % (o.seed, acct))
    c = ImapClient(o.host, o.imap_port)
    c.login('%s*%s' % (acct, o.master_user), o.master_password)
    folders = []
    for name, _delim, attrs in c.list():
        if any(a.upper() == '\\NOSELECT' for a in attrs if isinstance(a, str)):
            continue
        folders.append(name.decode('latin-1'))
    folders.sort()
    pairs = []  # (folder, uid)
    for f in folders:
        c.select(f, examine=True)
        _, _, unt = c.command('UID SEARCH ALL')
        for u in unt:
            if u.startswith(b'SEARCH'):
                pairs.extend((f, int(x)) for x in u.split()[1:])
    total = len(pairs)
    k = max(1, int(round(total * o.pct / 100.0))) if total else 0
    n_exp = max(1, int(round(k * 0.1))) if k >= 2 else 0
    n_flag = int(round(k * 0.4))
    n_new = max(0, k - n_exp - n_flag)
    chosen = rng.sample(pairs, min(total, n_flag + n_exp))
    flag_set, exp_set = chosen[:n_flag], chosen[n_flag:]
    templates = [rng.choice(pairs) for _ in range(n_new)] if pairs else []

    by_folder = {}
    for f, u in flag_set:
        by_folder.setdefault(f, [[], []])[0].append(u)
    for f, u in exp_set:
        by_folder.setdefault(f, [[], []])[1].append(u)
    for f, u in templates:
        by_folder.setdefault(f, [[], []])
    bodies = []
    for f in sorted(by_folder):
        flags_uids, exp_uids = by_folder[f]
        tpl_uids = [u for g, u in templates if g == f]
        c.select(f, examine=False)
        if tpl_uids:
            got = c.fetch(uidset(set(tpl_uids)), 'BODY.PEEK[]')
            for u in tpl_uids:
                bodies.append(as_bytes(got[u].get('BODY[]')))
        if flags_uids:
            cur = c.fetch(uidset(flags_uids), 'FLAGS')
            for u in sorted(flags_uids):
                have = [x.lower() for x in cur[u].get('FLAGS', []) if isinstance(x, str)]
                t = rng.choice(TOGGLES)
                op = '-' if t.lower() in have else '+'
                c.command('UID STORE %d %sFLAGS.SILENT (%s)' % (u, op, t))
        if exp_uids:
            c.command('UID STORE %s +FLAGS.SILENT (\\Deleted)' % uidset(exp_uids))
            c.command('UID EXPUNGE %s' % uidset(exp_uids))
    c.logout()
    if bodies:
        lm = Lmtp(o.host, o.lmtp_port)
        for i, b in enumerate(bodies):
            head, sep, rest = b.partition(b'\r\n\r\n')
            if not sep:
                head, sep, rest = b.partition(b'\n\n')
            head = re.sub(rb'(?im)^(message-id|delivered-to|return-path):.*(\r?\n[ \t].*)*\r?\n?', b'', head)
            mid = b'<mutate.%d.%d.%s>' % (o.seed, i, acct.encode())
            head = (b'Message-ID: ' + mid + b'\r\n' +
                    re.sub(rb'(?im)^subject:', b'Subject: [new]', head, count=1))
            lm.deliver(head + (sep or b'\r\n\r\n') + rest, [acct])
        lm.close()
    return total, len(flag_set), len(exp_set), len(bodies)


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--imap-port', required=True)
    ap.add_argument('--lmtp-port', required=True)
    ap.add_argument('--master-user', default='admin')
    ap.add_argument('--master-password', default='masterpw')
    ap.add_argument('--accounts', required=True)
    ap.add_argument('--pct', type=float, default=1.0)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--jobs', type=int, default=4)
    o = ap.parse_args(argv)
    accts = [a.strip() for a in open(o.accounts) if a.strip()]
    sums = [0, 0, 0, 0]
    try:
        with concurrent.futures.ThreadPoolExecutor(max(1, o.jobs)) as ex:
            for r in ex.map(lambda a: mutate_account(o, a), accts):
                sums = [x + y for x, y in zip(sums, r)]
    except (ImapError, PopulateError, OSError, KeyError, ValueError) as e:
        print('mutate: error: %s: %s' % (type(e).__name__, e), file=sys.stderr)
        return 2
    print('%d accounts, %d messages before: %d flag changes, %d expunged, %d delivered'
          % (len(accts), sums[0], sums[1], sums[2], sums[3]))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
