#!/usr/bin/python3
"""floor — the least an IMAP client can do to learn what changed.

    floor.py --host 127.0.0.1 --imap-port P --master-user admin
             --master-password masterpw --accounts FILE [--jobs 4]
             [--state FILE [--record]]

Per account: connect; LOGIN ACCOUNT*MASTER, ENABLE QRESYNC and one
LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))
(LIST-STATUS, RFC 5819), sent together (one round trip).  Without --state
that is all, then LOGOUT: the floor Dovecot sets for a no-change pull.

With --state, the statuses of the last run are remembered in FILE, and every
folder whose status differs is opened in a second round trip, again all
commands at once: EXAMINE with QRESYNC (RFC 7162: the server answers with
the flags of every message changed since the remembered HIGHESTMODSEQ and
the UIDs that vanished) and UID FETCH of the bodies of the UIDs from the
remembered UIDNEXT on; a folder new since the last run is read whole.
Nothing is kept but FILE: it is the least any client pays, on this server,
to learn and fetch what changed.  --record only writes FILE (no folder is
opened): run it once after the first pull.

JOBS accounts at a time.  Prints one summary line.
"""
import argparse
import concurrent.futures
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'tests', 'tools'))
from imapdump import ImapClient, ImapError, parse_tokens, quote  # noqa: E402

LIST_STATUS = 'LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))'


def statuses(untagged):
    """{wire folder name: {ITEM: value}} from the STATUS answers."""
    st = {}
    for u in untagged:
        if not u.startswith(b'STATUS '):
            continue
        toks, _ = parse_tokens(u)
        name, items = toks[1], toks[2]
        if isinstance(name, bytes):
            name = name.decode('latin-1')
        st[name] = {items[i].upper(): int(items[i + 1]) for i in range(0, len(items) - 1, 2)}
    return st


def one(o, acct, old, record):
    c = ImapClient(o.host, o.imap_port)
    try:
        first = c.pipeline(['LOGIN %s %s' % (quote('%s*%s' % (acct, o.master_user)), quote(o.master_password)),
                            'ENABLE QRESYNC', LIST_STATUS])
        for (status, text, _), what in zip(first, ('LOGIN', 'ENABLE', 'LIST')):
            if status != 'OK':
                raise ImapError('%s: %s failed: %s %s' % (acct, what, status, text))
        st = statuses(first[2][2])
        cmds = []
        if old is not None and not record:
            for name, v in st.items():
                was = old.get(name)
                if was == v:
                    continue
                if was and was['UIDVALIDITY'] == v['UIDVALIDITY']:
                    cmds.append('EXAMINE %s (QRESYNC (%d %d))' % (quote(name), was['UIDVALIDITY'], was['HIGHESTMODSEQ']))
                    cmds.append('UID FETCH %d:* (UID BODY.PEEK[])' % was['UIDNEXT'])
                else:
                    cmds.append('EXAMINE %s' % quote(name))
                    cmds.append('UID FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[])')
        opened = len(cmds) // 2
        for status, text, _ in c.pipeline(cmds + ['LOGOUT']):
            if status != 'OK':
                raise ImapError('%s: %s %s' % (acct, status, text))
        return st, opened
    finally:
        c.sock.close()


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--imap-port', required=True)
    ap.add_argument('--master-user', default='admin')
    ap.add_argument('--master-password', default='masterpw')
    ap.add_argument('--accounts', required=True)
    ap.add_argument('--jobs', type=int, default=4)
    ap.add_argument('--state')
    ap.add_argument('--record', action='store_true')
    o = ap.parse_args(argv)
    accts = [a.strip() for a in open(o.accounts) if a.strip()]
    state = None
    if o.state:
        state = {}
        if os.path.exists(o.state):
            with open(o.state) as f:
                state = json.load(f)
    try:
        with concurrent.futures.ThreadPoolExecutor(max(1, o.jobs)) as ex:
            res = list(ex.map(lambda a: one(o, a, None if state is None else state.get(a, {}), o.record), accts))
    except (ImapError, OSError) as e:
        print('floor: error: %s: %s' % (type(e).__name__, e), file=sys.stderr)
        return 2
    if o.state:
        for a, (st, _) in zip(accts, res):
            state[a] = st
        tmp = o.state + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(state, f)
        os.replace(tmp, o.state)
    print('%d accounts, %d folder statuses, %d folders opened' %
          (len(accts), sum(len(st) for st, _ in res), sum(n for _, n in res)))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
