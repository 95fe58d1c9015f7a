#!/usr/bin/python3
"""imapstep — one change to a live account, for the pull tests.

    imapstep.py --port IMAP_PORT --user 'alice@example.test*admin' --password masterpw STEP ARGS...

STEP is one of
    flags FOLDER FRACTION SEED FLAG...   add FLAGs (e.g. \\Seen '$Work') to that
                                         share of the folder's messages
    unflag FOLDER FRACTION SEED FLAG...  remove them
    expunge FOLDER FRACTION SEED         \\Deleted + UID EXPUNGE on that share
    move FROM TO FRACTION SEED           UID MOVE that share
    rename OLD NEW                       RENAME a folder (children follow)
    delete FOLDER                        DELETE (its messages go with it)
    create FOLDER                        CREATE
    subscribe FOLDER / unsubscribe FOLDER
    wipe                                 expunge every message of every folder
    deliver LMTP_PORT RCPT SUBJECT COUNT SEED   COUNT small messages over LMTP
                                         (Sieve on the server files them)
Folder names are UTF-8 with '/' between levels; they are sent with the
server's own separator, modified-UTF-7 encoded.
"""
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imapdump import ImapClient, mutf7_encode, quote  # noqa: E402
from populate import Lmtp, uids_of, some, uidset  # noqa: E402


def separator(c):
    _, _, unt = c.command('LIST "" ""')
    for u in unt:
        if u.startswith(b'LIST'):
            parts = u.split(b'"')
            if len(parts) >= 3 and len(parts[1]) == 1:
                return parts[1].decode()
    return '/'


def raw(name, sep):
    return mutf7_encode(name.replace('/', sep))


def wire(name, sep):
    return quote(raw(name, sep))


def folders(c):
    _, _, unt = c.command('LIST "" "*"')
    out = []
    for u in unt:
        m = re.match(rb'LIST \((.*?)\) (?:NIL|"(?:[^"\\]|\\.)*") (.*)$', u)
        if not m or b'\\Noselect' in m.group(1) or b'\\NonExistent' in m.group(1):
            continue
        name = m.group(2).strip()
        if name.startswith(b'"'):
            name = name[1:-1].replace(b'\\"', b'"').replace(b'\\\\', b'\\')
        out.append(name.decode())
    return out


def main(argv):
    a = argv[1:]
    opts = {}
    while a and a[0].startswith('--'):
        opts[a[0][2:]] = a[1]
        a = a[2:]
    step, args = a[0], a[1:]
    if step == 'deliver':
        port, rcpt, subject, count, seed = args[0], args[1], args[2], int(args[3]), args[4]
        rng = random.Random(seed)
        l = Lmtp('127.0.0.1', port)
        for i in range(count):
            body = ' '.join(rng.choice(['alpha', 'beta', 'gamma', 'delta', 'vault', 'mail'])
                            for _ in range(rng.randint(20, 200)))
            msg = ('From: step@example.test\nTo: %s\nSubject: %s %d\n'
                   'Message-ID: <%s.%d.%s@step.test>\n\n%s\n' % (rcpt, subject, i, seed, i, rng.random(), body))
            l.deliver(msg.encode(), [rcpt])
        l.close()
        return 0
    c = ImapClient('127.0.0.1', opts['port'])
    c.command('LOGIN %s %s' % (quote(opts['user']), quote(opts['password'])))
    sep = separator(c)
    if step in ('flags', 'unflag', 'expunge', 'move'):
        folder = args[0]
        if step == 'move':
            dest, frac, seed = args[1], float(args[2]), args[3]
        else:
            frac, seed = float(args[1]), args[2]
        uids = uids_of(c, raw(folder, sep))
        pick = some(random.Random(seed), uids, frac) if uids else []
        if pick:
            s = uidset(pick)
            if step == 'flags':
                c.command('UID STORE %s +FLAGS.SILENT (%s)' % (s, ' '.join(args[3:])))
            elif step == 'unflag':
                c.command('UID STORE %s -FLAGS.SILENT (%s)' % (s, ' '.join(args[3:])))
            elif step == 'expunge':
                c.command('UID STORE %s +FLAGS.SILENT (\\Deleted)' % s)
                c.command('UID EXPUNGE %s' % s)
            else:
                c.command('UID MOVE %s %s' % (s, wire(dest, sep)))
        print('%s %s: %d of %d messages' % (step, folder, len(pick), len(uids)))
    elif step == 'rename':
        c.command('RENAME %s %s' % (wire(args[0], sep), wire(args[1], sep)))
    elif step == 'delete':
        c.command('DELETE %s' % wire(args[0], sep))
    elif step == 'create':
        c.command('CREATE %s' % wire(args[0], sep))
    elif step == 'subscribe':
        c.command('SUBSCRIBE %s' % wire(args[0], sep))
    elif step == 'unsubscribe':
        c.command('UNSUBSCRIBE %s' % wire(args[0], sep))
    elif step == 'wipe':
        n = 0
        for f in folders(c):
            uids = uids_of(c, f)
            if uids:
                c.command('UID STORE 1:* +FLAGS.SILENT (\\Deleted)')
                c.command('EXPUNGE')
                n += len(uids)
        print('wiped %d messages' % n)
    else:
        print('imapstep: unknown step %s' % step, file=sys.stderr)
        return 2
    c.command('LOGOUT', check=False)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
