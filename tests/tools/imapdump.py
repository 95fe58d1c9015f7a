#!/usr/bin/python3
"""imapdump — canonical JSON dump of an IMAP account's visible state.

    imapdump.py HOST PORT USER PASSWORD [--no-body] [--folders-only]
                [--modseq] [-o FILE]
    imapdump.py --compare A.json B.json

The dump (sorted keys, UTF-8) is
    {"folders": {NAME: {"delimiter": "/", "attributes": [...],
                        "subscribed": bool, "exists": bool,
                        "uidvalidity": N, "uidnext": N,
                        ["highestmodseq": N,]
                        "messages": [{"uid": N, "flags": [...],
                                      "internaldate": "...", "size": N,
                                      "sha256": "..."}, ...]}}}
NAME is decoded from modified UTF-7. attributes are the LIST attributes
(special-use included; \\Subscribed, \\Marked, \\UnMarked not), sorted. subscribed comes from LSUB;
names that are subscribed but not listed appear with "exists": false and
no delimiter; "exists" is also false for \\NonExistent (implicit parents).
flags exclude \\Recent and are sorted. Selectable folders are opened with
EXAMINE, so nothing changes on the server.

--compare prints a readable difference and exits 1 if the dumps differ.
Plain TCP only (no TLS). Errors exit 2 with a message on stderr.

The small IMAP client here (ImapClient, mutf7_encode/decode) is also used by
populate.py.
"""
import base64
import hashlib
import json
import re
import socket
import sys


# LIST attributes left out of the dump: \\Subscribed is reported separately,
# \\Marked/\\UnMarked change merely by opening a folder (RFC 3501 7.2.2).
VOLATILE = {'\\subscribed', '\\marked', '\\unmarked'}


class ImapError(Exception):
    pass


# ---------------------------------------------------------------- mUTF-7

def mutf7_decode(name):
    """Modified UTF-7 (RFC 3501 5.1.3) bytes/str -> str."""
    if isinstance(name, bytes):
        name = name.decode('ascii', 'strict')
    out = []
    i = 0
    while i < len(name):
        c = name[i]
        if c != '&':
            out.append(c)
            i += 1
            continue
        j = name.find('-', i)
        if j < 0:
            raise ImapError('bad modified UTF-7 name %r' % name)
        chunk = name[i + 1:j]
        if chunk == '':
            out.append('&')
        else:
            b64 = chunk.replace(',', '/')
            b64 += '=' * (-len(b64) % 4)
            out.append(base64.b64decode(b64).decode('utf-16-be'))
        i = j + 1
    return ''.join(out)


def mutf7_encode(name):
    """str -> modified UTF-7 str."""
    out = []
    buf = []

    def flush():
        if buf:
            b = ''.join(buf).encode('utf-16-be')
            out.append('&' + base64.b64encode(b).decode().rstrip('=')
                       .replace('/', ',') + '-')
            buf.clear()
    for c in name:
        if 0x20 <= ord(c) <= 0x7e:
            flush()
            out.append('&-' if c == '&' else c)
        else:
            buf.append(c)
    flush()
    return ''.join(out)


# ---------------------------------------------------------------- parsing

class Literal(bytes):
    pass


def parse_tokens(data, pos=0, depth=0):
    """Parse IMAP data (with inlined literals) into a list of tokens:
    str atoms, bytes (quoted strings / Literal), None (NIL), lists."""
    out = []
    n = len(data)
    while pos < n:
        c = data[pos:pos + 1]
        if c == b' ':
            pos += 1
        elif c == b'(':
            sub, pos = parse_tokens(data, pos + 1, depth + 1)
            out.append(sub)
        elif c == b')':
            if depth == 0:
                raise ImapError('unbalanced ) in %r' % data[:200])
            return out, pos + 1
        elif c == b'"':
            pos += 1
            s = bytearray()
            while True:
                if pos >= n:
                    raise ImapError('unterminated string')
                ch = data[pos]
                if ch == 0x5c:
                    s.append(data[pos + 1])
                    pos += 2
                elif ch == 0x22:
                    pos += 1
                    break
                else:
                    s.append(ch)
                    pos += 1
            out.append(bytes(s))
        elif c == b'{':
            m = re.compile(rb'\{(\d+)\+?\}\r\n').match(data, pos)
            if not m:
                raise ImapError('bad literal at %r' % data[pos:pos + 20])
            ln = int(m.group(1))
            start = m.end()
            out.append(Literal(data[start:start + ln]))
            pos = start + ln
        elif c in (b'\r', b'\n'):
            pos += 1
        else:
            start = pos
            while pos < n:
                ch = data[pos:pos + 1]
                if ch in (b' ', b'(', b')', b'\r', b'\n'):
                    break
                if ch == b'[':
                    close = data.find(b']', pos)
                    if close < 0:
                        raise ImapError('unterminated [')
                    pos = close + 1
                    continue
                pos += 1
            atom = data[start:pos].decode('latin-1')
            out.append(None if atom.upper() == 'NIL' else atom)
    if depth:
        raise ImapError('unbalanced ( in %r' % data[:200])
    return out, pos


def quote(s):
    """Quoted string for a command argument (bytes or str)."""
    if isinstance(s, bytes):
        s = s.decode('latin-1')
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


# ---------------------------------------------------------------- client

def _tagged(line, tag):
    """(status, text) of the tagged response line of TAG."""
    rest = line[len(tag) + 1:].rstrip(b'\r\n').decode('utf-8', 'replace')
    status, _, text = rest.partition(' ')
    return status, text


class ImapClient:
    def __init__(self, host, port, timeout=60):
        try:
            self.sock = socket.create_connection((host, int(port)), timeout)
        except OSError as e:
            raise ImapError('cannot connect to %s:%s: %s' % (host, port, e))
        self.f = self.sock.makefile('rb')
        self.tagn = 0
        greet = self._readline()
        if not greet.startswith(b'* OK') and not greet.startswith(b'* PREAUTH'):
            raise ImapError('bad greeting: %r' % greet)
        self.caps = set()
        m = re.search(rb'\[CAPABILITY ([^\]]*)\]', greet)
        if m:
            self.caps = set(m.group(1).decode().upper().split())

    def _readline(self):
        line = self.f.readline()
        if not line:
            raise ImapError('connection closed by server')
        return line

    def _read_response(self):
        """One full response line with its literals inlined."""
        data = self._readline()
        while True:
            m = re.search(rb'\{(\d+)\}\r\n$', data)
            if not m:
                return data
            ln = int(m.group(1))
            lit = self.f.read(ln)
            if len(lit) != ln:
                raise ImapError('short literal')
            data += lit + self._readline()

    def command(self, cmd, literals=(), check=True):
        """Send CMD (str; '%L' placeholders are replaced by the literals in
        order). Returns (status, text, untagged) where untagged is a list of
        raw response bytes (without the '* ')."""
        self.tagn += 1
        tag = 'A%04d' % self.tagn
        parts = cmd.split('%L')
        if len(parts) != len(literals) + 1:
            raise ValueError('literal count mismatch')
        nonsync = 'LITERAL+' in self.caps
        untagged = []
        first = (tag + ' ' + parts[0]).encode('utf-8')
        if not literals:
            self.sock.sendall(first + b'\r\n')
        else:
            buf = first
            for lit, rest in zip(literals, parts[1:]):
                if nonsync:
                    buf += b'{%d+}\r\n' % len(lit) + lit
                else:
                    self.sock.sendall(buf + b'{%d}\r\n' % len(lit))
                    while True:
                        r = self._read_response()
                        if r.startswith(b'+'):
                            break
                        if r.startswith(tag.encode() + b' '):
                            raise ImapError('%s rejected: %r' % (cmd[:40], r))
                        untagged.append(r[2:])
                    buf = lit
                buf += rest.encode('utf-8')
            self.sock.sendall(buf + b'\r\n')
        while True:
            r = self._read_response()
            if r.startswith(b'* '):
                untagged.append(r[2:])
                m = re.match(rb'(?:OK \[)?CAPABILITY ([^\]\r\n]*)', r[2:])
                if m:
                    self.caps = set(m.group(1).decode().upper().split())
            elif r.startswith(b'+'):
                raise ImapError('unexpected continuation for %s' % cmd[:40])
            elif r.startswith(tag.encode() + b' '):
                status, text = _tagged(r, tag)
                if check and status != 'OK':
                    raise ImapError('%s failed: %s %s' % (cmd.split(' ')[0], status, text))
                m = re.match(r'\[CAPABILITY ([^\]]*)\]', text)
                if m:
                    self.caps = set(m.group(1).upper().split())
                return status, text, untagged
            else:
                raise ImapError('unexpected response %r' % r[:100])

    def pipeline(self, cmds):
        """Send every command of CMDS (str, no literals) at once, then read
        the answers: a list of (status, text, untagged) in CMDS' order."""
        tags = []
        buf = b''
        for cmd in cmds:
            self.tagn += 1
            tags.append('A%04d' % self.tagn)
            buf += (tags[-1] + ' ' + cmd + '\r\n').encode('utf-8')
        self.sock.sendall(buf)
        out = []
        untagged = []
        while len(out) < len(tags):
            r = self._read_response()
            if r.startswith(b'* '):
                untagged.append(r[2:])
            elif r.startswith(tags[len(out)].encode() + b' '):
                status, text = _tagged(r, tags[len(out)])
                out.append((status, text, untagged))
                untagged = []
            else:
                raise ImapError('unexpected response %r' % r[:100])
        return out

    def login(self, user, password):
        self.command('LOGIN %s %s' % (quote(user), quote(password)))
        if not self.caps or 'IMAP4REV1' not in self.caps:
            _, _, unt = self.command('CAPABILITY')

    def logout(self):
        try:
            self.command('LOGOUT', check=False)
        except ImapError:
            pass
        self.sock.close()

    def list(self, cmd='LIST "" "*"', verb='LIST'):
        """[(raw_name_bytes, delimiter, [attributes])]"""
        _, _, unt = self.command(cmd)
        res = []
        for u in unt:
            if not u.upper().startswith(verb.encode() + b' '):
                continue
            toks, _ = parse_tokens(u)
            attrs, delim, name = toks[1], toks[2], toks[3]
            if isinstance(name, str):
                name = name.encode('latin-1')
            if isinstance(delim, bytes):
                delim = delim.decode()
            res.append((bytes(name), delim, [a for a in attrs]))
        return res

    def select(self, raw_name, examine=True):
        """EXAMINE/SELECT; returns dict of uidvalidity, uidnext, exists,
        highestmodseq (if any)."""
        verb = 'EXAMINE' if examine else 'SELECT'
        _, text, unt = self.command('%s %s' % (verb, quote(raw_name)))
        info = {}
        for u in unt:
            m = re.match(rb'OK \[(UIDVALIDITY|UIDNEXT|HIGHESTMODSEQ) (\d+)\]', u)
            if m:
                info[m.group(1).decode().lower()] = int(m.group(2))
            m = re.match(rb'(\d+) EXISTS', u)
            if m:
                info['exists'] = int(m.group(1))
        return info

    def fetch(self, uidset, items):
        """UID FETCH; returns {uid: {ITEM: value}}."""
        _, _, unt = self.command('UID FETCH %s (%s)' % (uidset, items))
        res = {}
        for u in unt:
            m = re.match(rb'\d+ FETCH ', u)
            if not m:
                continue
            toks, _ = parse_tokens(u[m.end():])
            lst = toks[0]
            d = {}
            for k, v in zip(lst[0::2], lst[1::2]):
                d[k.upper()] = v
            if 'UID' not in d:
                raise ImapError('FETCH response without UID')
            uid = int(d['UID'])
            res.setdefault(uid, {}).update(d)
        return res


# ---------------------------------------------------------------- dump

def _ensure_bytes(v):
    if v is None:
        return b''
    if isinstance(v, str):
        return v.encode('latin-1')
    return bytes(v)


def dump(host, port, user, password, body=True, folders_only=False,
         modseq=False):
    c = ImapClient(host, port)
    c.login(user, password)
    if modseq and 'CONDSTORE' in c.caps:
        c.command('ENABLE CONDSTORE')  # EXAMINE then reports HIGHESTMODSEQ
    listcmd = 'LIST "" "*"'
    if 'SPECIAL-USE' in c.caps and 'LIST-EXTENDED' in c.caps:
        listcmd = 'LIST "" "*" RETURN (CHILDREN SPECIAL-USE)'
    listed = c.list(listcmd)
    subs = {bytes(n) for n, _, _ in c.list('LSUB "" "*"', 'LSUB')}
    folders = {}
    for raw, delim, attrs in listed:
        name = mutf7_decode(raw)
        attrs = sorted({a for a in attrs if a.lower() not in VOLATILE},
                       key=str.lower)
        exists = '\\nonexistent' not in [a.lower() for a in attrs]
        folders[name] = {'raw': raw, 'delimiter': delim, 'attributes': attrs,
                         'subscribed': raw in subs, 'exists': exists}
    for raw in subs:
        name = mutf7_decode(raw)
        if name not in folders:
            folders[name] = {'raw': raw, 'delimiter': None, 'attributes': [],
                             'subscribed': True, 'exists': False}
    if not folders_only:
        for name, f in sorted(folders.items()):
            low = [a.lower() for a in f['attributes']]
            if not f['exists'] or '\\noselect' in low or '\\nonexistent' in low:
                continue
            info = c.select(f['raw'])
            f['uidvalidity'] = info.get('uidvalidity')
            f['uidnext'] = info.get('uidnext')
            if modseq:
                f['highestmodseq'] = info.get('highestmodseq')
            msgs = []
            if info.get('exists', 0) > 0:
                items = 'UID FLAGS INTERNALDATE RFC822.SIZE'
                if body:
                    items += ' BODY.PEEK[]'
                got = c.fetch('1:*', items)
                for uid in sorted(got):
                    d = got[uid]
                    flags = sorted((x for x in d.get('FLAGS', [])
                                    if x.lower() != '\\recent'), key=str.lower)
                    m = {'uid': uid, 'flags': flags,
                         'internaldate': _ensure_bytes(d.get('INTERNALDATE')).decode(),
                         'size': int(d['RFC822.SIZE'])}
                    if body:
                        m['sha256'] = hashlib.sha256(_ensure_bytes(d.get('BODY[]'))).hexdigest()
                    msgs.append(m)
                if len(msgs) != info['exists']:
                    raise ImapError('%s: EXISTS %d but fetched %d messages'
                                    % (name, info['exists'], len(msgs)))
            f['messages'] = msgs
    c.logout()
    for f in folders.values():
        del f['raw']
    return {'folders': folders}


def canonical(d):
    return json.dumps(d, sort_keys=True, indent=1, ensure_ascii=False) + '\n'


# ---------------------------------------------------------------- compare

def compare(a, b, limit=20):
    """Returns a list of human-readable difference lines."""
    out = []
    fa, fb = a.get('folders', {}), b.get('folders', {})
    for name in sorted(set(fa) - set(fb)):
        out.append('folder only in A: %s' % name)
    for name in sorted(set(fb) - set(fa)):
        out.append('folder only in B: %s' % name)
    for name in sorted(set(fa) & set(fb)):
        x, y = fa[name], fb[name]
        for k in sorted(set(x) | set(y)):
            if k == 'messages':
                continue
            if x.get(k) != y.get(k):
                out.append('%s: %s %r != %r' % (name, k, x.get(k), y.get(k)))
        mx = {m['uid']: m for m in x.get('messages', [])}
        my = {m['uid']: m for m in y.get('messages', [])}
        if 'messages' in x and 'messages' in y:
            n = 0
            only_a = sorted(set(mx) - set(my))
            only_b = sorted(set(my) - set(mx))
            if only_a:
                out.append('%s: %d UIDs only in A: %s' % (name, len(only_a), _uids(only_a)))
            if only_b:
                out.append('%s: %d UIDs only in B: %s' % (name, len(only_b), _uids(only_b)))
            for uid in sorted(set(mx) & set(my)):
                for k in sorted(set(mx[uid]) | set(my[uid])):
                    if mx[uid].get(k) != my[uid].get(k):
                        n += 1
                        if n <= limit:
                            out.append('%s: uid %d %s %r != %r' % (
                                name, uid, k, mx[uid].get(k), my[uid].get(k)))
            if n > limit:
                out.append('%s: ... %d more message differences' % (name, n - limit))
        elif ('messages' in x) != ('messages' in y):
            out.append('%s: messages listed in only one dump' % name)
    return out


def _uids(lst):
    s = ' '.join(map(str, lst[:20]))
    return s + (' ...' if len(lst) > 20 else '')


# ---------------------------------------------------------------- main

def main(argv):
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--compare', nargs=2, metavar=('A', 'B'))
    p.add_argument('--no-body', action='store_true')
    p.add_argument('--folders-only', action='store_true')
    p.add_argument('--modseq', action='store_true',
                   help='also record HIGHESTMODSEQ per folder')
    p.add_argument('-o', '--output')
    p.add_argument('args', nargs='*', metavar='HOST PORT USER PASSWORD')
    o = p.parse_args(argv)
    try:
        if o.compare:
            docs = []
            for fn in o.compare:
                with open(fn, encoding='utf-8') as f:
                    docs.append(json.load(f))
            diff = compare(*docs)
            for line in diff:
                print(line)
            if diff:
                print('dumps differ: %d difference(s)' % len(diff))
                return 1
            return 0
        if len(o.args) != 4:
            p.error('need HOST PORT USER PASSWORD (or --compare A B)')
        host, port, user, password = o.args
        d = dump(host, port, user, password, body=not o.no_body,
                 folders_only=o.folders_only, modseq=o.modseq)
        text = canonical(d)
        if o.output:
            with open(o.output, 'w', encoding='utf-8') as f:
                f.write(text)
        else:
            sys.stdout.write(text)
        return 0
    except (ImapError, OSError, ValueError, KeyError, IndexError,
            UnicodeError) as e:
        print('imapdump: error: %s: %s' % (type(e).__name__, e), file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
