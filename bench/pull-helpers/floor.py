#!/usr/bin/python3
"""floor — the least an IMAP client can do to learn that nothing changed.

    floor.py --host 127.0.0.1 --imap-port P --master-user admin
             --master-password masterpw --accounts FILE [--jobs 4]

Per account: connect, LOGIN ACCOUNT*MASTER, one
LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))
(LIST-STATUS, RFC 5819), LOGOUT; JOBS accounts at a time.  Nothing is
written.  Its time is the floor that Dovecot sets for a no-change pull of
these accounts (logins, process starts, one status per folder).
"""
import argparse
import concurrent.futures
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'tests', 'tools'))
from imapdump import ImapClient, ImapError  # noqa: E402


def one(o, acct):
    c = ImapClient(o.host, o.imap_port)
    c.login('%s*%s' % (acct, o.master_user), o.master_password)
    _, _, unt = c.command('LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))')
    c.logout()
    return sum(1 for u in unt if u.startswith(b'STATUS '))


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--imap-port', required=True)
    ap.add_argument('--master-user', default='admin')
    ap.add_argument('--master-password', default='masterpw')
    ap.add_argument('--accounts', required=True)
    ap.add_argument('--jobs', type=int, default=4)
    o = ap.parse_args(argv)
    accts = [a.strip() for a in open(o.accounts) if a.strip()]
    try:
        with concurrent.futures.ThreadPoolExecutor(max(1, o.jobs)) as ex:
            n = sum(ex.map(lambda a: one(o, a), accts))
    except (ImapError, OSError) as e:
        print('floor: error: %s: %s' % (type(e).__name__, e), file=sys.stderr)
        return 2
    print('%d accounts, %d folder statuses' % (len(accts), n))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
