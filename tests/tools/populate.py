#!/usr/bin/python3
"""populate — fill accounts on a running Dovecot with a realistic, seeded state.

    populate.py --host 127.0.0.1 --imap-port P --lmtp-port P
                [--sieve-port P] --master-user admin --master-password masterpw
                --accounts alice@example.test,bob@example.test
                --messages-dir DIR --count N --seed S

For each account (all choices come from random.Random("SEED:ACCOUNT"), so the
same arguments on a fresh server give the same mailboxes, UIDs, flags and
keywords; only LMTP delivery dates differ):
 1. delivers N messages (.eml files from DIR) over LMTP (RFC 2033); the first
    3 are shared by all accounts (one transaction, several RCPT TO);
 2. logs in over IMAP as ACCOUNT*MASTER and creates a folder tree with nested
    and non-ASCII names (Archiv/2019/Übersicht, Projets/Été, Work/Projects/Q1
    whose parent Work/Projects is never created, Family & Friends, 日本語)
    plus the special-use folders Drafts Sent Trash Junk Archive;
 3. subscribes some folders, not all, and one that does not exist (Old/Gone);
 4. copies and moves messages into folders, APPENDs a few with fixed
    INTERNALDATEs (Sent, Drafts, Archiv/2019/Übersicht, Archive);
 5. sets \\Seen \\Answered \\Flagged \\Draft and \\Deleted (not expunged) on
    some messages and the keywords $Forwarded $MDNSent Work custom_kw $label1
    (5 in INBOX) and $Junk (in Junk); leaves some messages unread;
 6. expunges some messages so UIDs have gaps;
 7. with --sieve-port, installs and activates a Sieve script over
    ManageSieve (PUTSCRIPT + SETACTIVE).
Folder names are joined with the server's own hierarchy separator.
Prints a one-line summary per account; exits non-zero on any error.
"""
import argparse
import base64
import os
import random
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imapdump import ImapClient, ImapError, mutf7_encode, quote  # noqa: E402

SHARED = 3

FOLDERS = [  # created in this order; Work/Projects is left implicit
    ('Archiv',), ('Archiv', '2019'), ('Archiv', '2019', 'Übersicht'),
    ('Projets',), ('Projets', 'Été'),
    ('Work',), ('Work', 'Projects', 'Q1'), ('Work', 'Projects', 'Q2'),
    ('Family & Friends',), ('日本語',),
    ('Drafts',), ('Sent',), ('Trash',), ('Junk',), ('Archive',),
]
SUBSCRIBE = [
    ('INBOX',), ('Sent',), ('Drafts',), ('Archiv',),
    ('Archiv', '2019', 'Übersicht'), ('Projets', 'Été'),
    ('Work', 'Projects', 'Q1'), ('日本語',), ('Old', 'Gone'),
]
SIEVE_SCRIPT = b'''require ["fileinto"];
# installed by tests/tools/populate.py
if header :contains "Subject" "[arca-sieve]" {
  fileinto "Work";
  stop;
}
'''


class PopulateError(Exception):
    pass


def crlf(data):
    """LF or CRLF line ends -> CRLF (lone CRs are left alone)."""
    data = re.sub(rb'\r?\n', b'\r\n', data)
    if not data.endswith(b'\r\n'):
        data += b'\r\n'
    return data


# ---------------------------------------------------------------- LMTP

class Lmtp:
    def __init__(self, host, port):
        try:
            self.sock = socket.create_connection((host, int(port)), 60)
        except OSError as e:
            raise PopulateError('LMTP connect %s:%s: %s' % (host, port, e))
        self.f = self.sock.makefile('rb')
        self.expect(220)
        self.cmd(b'LHLO populate.example.test', 250)

    def reply(self):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                raise PopulateError('LMTP connection closed')
            lines.append(line.decode('utf-8', 'replace').rstrip())
            if line[3:4] != b'-':
                return int(line[:3]), lines

    def expect(self, code):
        got, lines = self.reply()
        if got != code:
            raise PopulateError('LMTP: expected %d, got %s' % (code, ' | '.join(lines)))
        return lines

    def cmd(self, line, code):
        self.sock.sendall(line + b'\r\n')
        return self.expect(code)

    def deliver(self, data, rcpts, sender='populate@example.test'):
        self.cmd(b'MAIL FROM:<%s>' % sender.encode(), 250)
        for r in rcpts:
            self.cmd(b'RCPT TO:<%s>' % r.encode(), 250)
        self.cmd(b'DATA', 354)
        body = crlf(data)
        body = re.sub(rb'(^|\r\n)\.', rb'\1..', body)  # dot-stuffing
        self.sock.sendall(body + b'.\r\n')
        for _ in rcpts:   # one reply per recipient (RFC 2033)
            self.expect(250)

    def close(self):
        try:
            self.sock.sendall(b'QUIT\r\n')
            self.reply()
        except (OSError, PopulateError):
            pass
        self.sock.close()


# ---------------------------------------------------------------- ManageSieve

def sieve_install(host, port, login, password, name, script):
    s = socket.create_connection((host, int(port)), 30)
    f = s.makefile('rb')

    def resp():
        while True:
            line = f.readline()
            if not line:
                raise PopulateError('ManageSieve connection closed')
            u = line.upper()
            if u.startswith(b'OK'):
                return
            if u.startswith(b'NO') or u.startswith(b'BYE'):
                raise PopulateError('ManageSieve: %s' % line.decode().strip())
    resp()  # capabilities greeting
    tok = base64.b64encode(b'\0' + login.encode() + b'\0' + password.encode())
    s.sendall(b'AUTHENTICATE "PLAIN" "' + tok + b'"\r\n')
    resp()
    s.sendall(b'PUTSCRIPT "%s" {%d+}\r\n' % (name.encode(), len(script)) + script + b'\r\n')
    resp()
    s.sendall(b'SETACTIVE "%s"\r\n' % name.encode())
    resp()
    s.sendall(b'LOGOUT\r\n')
    try:
        resp()
    except PopulateError:
        pass
    s.close()


# ---------------------------------------------------------------- IMAP helpers

def uids_of(c, mbox):
    c.select(mbox, examine=False)
    _, _, unt = c.command('UID SEARCH ALL')
    for u in unt:
        if u.startswith(b'SEARCH'):
            return [int(x) for x in u.split()[1:]]
    return []


def uidset(uids):
    return ','.join(str(u) for u in sorted(uids))


def some(rng, seq, frac, minimum=1):
    seq = sorted(seq)
    n = min(len(seq), max(minimum, int(round(frac * len(seq)))))
    return sorted(rng.sample(seq, n))


def store(c, uids, flags):
    if uids:
        c.command('UID STORE %s +FLAGS.SILENT (%s)' % (uidset(uids), ' '.join(flags)))


def append(c, mbox, data, flags, date):
    c.command('APPEND %s (%s) "%s" %%L' % (quote(mbox), ' '.join(flags), date),
              [crlf(data)])


def populate_account(o, acct, files, delim):
    rng = random.Random('%s:%s' % (o.seed, acct))

    def mb(parts):
        return mutf7_encode(delim.join(parts)) if parts != ('INBOX',) else 'INBOX'

    c = ImapClient(o.host, o.imap_port)
    c.login('%s*%s' % (acct, o.master_user), o.master_password)
    for parts in FOLDERS:
        c.command('CREATE %s' % quote(mb(parts)))
    # Dovecot refuses to SUBSCRIBE a missing mailbox: create Old/Gone,
    # subscribe, delete it (the subscription stays, as after a real DELETE).
    c.command('CREATE %s' % quote(mb(('Old', 'Gone'))))
    for parts in SUBSCRIBE:
        c.command('SUBSCRIBE %s' % quote(mb(parts)))
    c.command('DELETE %s' % quote(mb(('Old', 'Gone'))))
    _, _, unt = c.command('LIST "" %s' % quote(mb(('Old',))))
    if unt and b'\\NonExistent' not in unt[0] and b'\\Noselect' not in unt[0]:
        c.command('DELETE %s' % quote(mb(('Old',))))

    inbox = uids_of(c, 'INBOX')
    if len(inbox) < 4:
        raise PopulateError('%s: only %d messages in INBOX' % (acct, len(inbox)))
    # copies and moves
    c.command('UID COPY %s %s' % (uidset(some(rng, inbox, 0.10)),
                                  quote(mb(('Archiv', '2019', 'Übersicht')))))
    rest = list(inbox)
    moved = {}
    for parts, frac in ((('Work', 'Projects', 'Q1'), 0.15),
                        (('Projets', 'Été'), 0.08),
                        (('Junk',), 0.05), (('Archive',), 0.04)):
        if len(rest) < 8:
            break
        sel = some(rng, rest, frac)
        c.command('UID MOVE %s %s' % (uidset(sel), quote(mb(parts))))
        moved[parts] = sel
        rest = [u for u in rest if u not in sel]
    c.command('UID COPY %s %s' % (uidset(some(rng, rest, 0.04)), quote(mb(('Trash',)))))

    # flags and keywords in INBOX; ~30% stay unread
    store(c, some(rng, rest, 0.70), ['\\Seen'])
    store(c, some(rng, rest, 0.10), ['\\Answered'])
    store(c, some(rng, rest, 0.10), ['\\Flagged'])
    store(c, some(rng, rest, 0.03), ['\\Draft'])
    for kw, frac in (('$Forwarded', 0.10), ('$MDNSent', 0.05), ('Work', 0.12),
                     ('custom_kw', 0.10), ('$label1', 0.05)):
        store(c, some(rng, rest, frac), [kw])
    # \Deleted: expunge half of them (UID gaps), keep the others
    deleted = some(rng, rest, 0.12, minimum=4)
    store(c, deleted, ['\\Deleted'])
    gone = deleted[:len(deleted) // 2]
    if 'UIDPLUS' in c.caps:
        c.command('UID EXPUNGE %s' % uidset(gone))
    else:  # pragma: no cover
        raise PopulateError('server lacks UIDPLUS')

    # the other folders
    q1 = uids_of(c, mb(('Work', 'Projects', 'Q1')))
    store(c, q1, ['\\Seen'])
    store(c, some(rng, q1, 0.5), ['Work'])
    if len(q1) >= 3:
        dq = some(rng, q1, 0.2)
        store(c, dq, ['\\Deleted'])
        c.command('UID EXPUNGE %s' % uidset(dq))
    junk = uids_of(c, mb(('Junk',)))
    store(c, junk, ['$Junk'])
    ete = uids_of(c, mb(('Projets', 'Été')))
    store(c, some(rng, ete, 0.5), ['\\Seen', '\\Flagged'])
    trash = uids_of(c, mb(('Trash',)))
    store(c, trash, ['\\Seen', '\\Deleted'])

    # APPENDs with fixed dates (the server keeps them as INTERNALDATE)
    pool = rng.sample(files, 9)
    k = 0
    for parts, n, flags, dates in (
            (('Sent',), 3, ['\\Seen'], '%02d-Mar-2019 10:%02d:00 +0100'),
            (('Drafts',), 1, ['\\Draft', '\\Seen'], '%02d-Apr-2021 08:%02d:30 +0000'),
            (('Archiv', '2019', 'Übersicht'), 3, ['\\Seen', '$Forwarded'],
             '%02d-Dec-2019 23:%02d:59 -0500'),
            (('Archive',), 2, [], '%02d-Jan-2003 00:%02d:01 +0000')):
        for i in range(n):
            with open(pool[k], 'rb') as f:
                data = f.read()
            k += 1
            append(c, mb(parts), data, flags, dates % (i + 1, rng.randrange(60)))
    c.logout()

    if o.sieve_port:
        sieve_install(o.host, o.sieve_port, '%s*%s' % (acct, o.master_user),
                      o.master_password, 'arca', SIEVE_SCRIPT)
    return len(inbox), len(gone)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--imap-port', type=int, required=True)
    p.add_argument('--lmtp-port', type=int, required=True)
    p.add_argument('--sieve-port', type=int, default=0)
    p.add_argument('--master-user', default='admin')
    p.add_argument('--master-password', default='masterpw')
    p.add_argument('--accounts', required=True)
    p.add_argument('--messages-dir', required=True)
    p.add_argument('--count', type=int, default=50)
    p.add_argument('--seed', default='1')
    p.add_argument('--lmtp-only', action='store_true',
                   help='only deliver (no folders, flags or expunges)')
    o = p.parse_args(argv)
    try:
        accounts = [a for a in o.accounts.split(',') if a]
        files = sorted(os.path.join(o.messages_dir, f)
                       for f in os.listdir(o.messages_dir) if f.endswith('.eml'))
        if len(files) < o.count + 9:
            raise PopulateError('need at least %d .eml files in %s, found %d'
                                % (o.count + 9, o.messages_dir, len(files)))
        if o.count < 10:
            raise PopulateError('--count must be at least 10')
        rng = random.Random('%s:shared' % o.seed)
        shared = rng.sample(files, SHARED)
        # 1. LMTP deliveries
        lm = Lmtp(o.host, o.lmtp_port)
        for path in shared:
            with open(path, 'rb') as f:
                lm.deliver(f.read(), accounts)
        for acct in accounts:
            arng = random.Random('%s:%s:lmtp' % (o.seed, acct))
            own = arng.sample([f for f in files if f not in shared], o.count - SHARED)
            for path in own:
                with open(path, 'rb') as f:
                    lm.deliver(f.read(), [acct])
        lm.close()
        if o.lmtp_only:
            return 0
        # 2.. IMAP state
        c = ImapClient(o.host, o.imap_port)
        c.login('%s*%s' % (accounts[0], o.master_user), o.master_password)
        delim = c.list('LIST "" ""')[0][1] or '/'
        c.logout()
        for acct in accounts:
            n, gone = populate_account(o, acct, files, delim)
            print('populate: %s: %d delivered, %d expunged from INBOX, separator %r%s'
                  % (acct, n, gone, delim, ', sieve active' if o.sieve_port else ''))
        return 0
    except (PopulateError, ImapError, OSError, ValueError) as e:
        print('populate: error: %s: %s' % (type(e).__name__, e), file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
