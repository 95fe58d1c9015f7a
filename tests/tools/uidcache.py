#!/usr/bin/env python3
"""A scripted IMAP client that caches messages by UID, as offline clients do.

  uidcache.py save  HOST PORT USER PASS CACHE   mirror every folder into CACHE
  uidcache.py check HOST PORT USER PASS CACHE   resync against CACHE and report

`save` records, per folder, UIDVALIDITY and for every UID its flags and the
SHA-256 of BODY.PEEK[].  `check` behaves as a client reconnecting with that
cache: per folder it compares UIDVALIDITY (a change would make a real client
throw its copy away), lists the server's UIDs and flags, and would download
only UIDs it doesn't have.  It prints one JSON line:

  {"uidvalidity_changed": [...], "missing_folders": [...],
   "would_download": N, "would_delete": N, "flag_changes": N,
   "bytes_checked": N, "bytes_differ": [...]}

and exits 0 when the server holds exactly the cache (with --allow-new N:
exactly N new messages besides), 1 otherwise.  Bytes of up to --sample
messages per folder are fetched again and compared with the cache.
"""
import argparse
import hashlib
import imaplib
import json
import re
import sys

LIST_RE = re.compile(rb'\((?P<attrs>[^)]*)\) (?:"(?P<sep>[^"]*)"|NIL) (?P<name>.*)$')


def unquote(name):
    name = name.strip()
    if name.startswith(b'"') and name.endswith(b'"'):
        name = name[1:-1].replace(b'\\"', b'"').replace(b'\\\\', b'\\')
    return name.decode()


def folders(c):
    typ, data = c.list('""', '*')
    if typ != 'OK':
        raise SystemExit('LIST failed')
    out = []
    for line in data:
        if isinstance(line, tuple):   # a literal name
            attrs = LIST_RE.match(line[0].rstrip(b'{0123456789}').rstrip() + b' x')
            name = line[1].decode()
            if attrs and b'\\Noselect' in attrs.group('attrs'):
                continue
            out.append(name)
            continue
        m = LIST_RE.match(line)
        if not m:
            continue
        if b'\\Noselect' in m.group('attrs') or b'\\NonExistent' in m.group('attrs'):
            continue
        out.append(unquote(m.group('name')))
    return sorted(out)


def q(name):
    return '"' + name.replace('\\', '\\\\').replace('"', '\\"') + '"'


FETCH_RE = re.compile(rb'UID (\d+).*FLAGS \(([^)]*)\)|FLAGS \(([^)]*)\).*UID (\d+)')


def state(c, name):
    typ, _ = c.select(q(name), readonly=True)
    if typ != 'OK':
        raise SystemExit('SELECT %s failed' % name)
    uidv = int(c.untagged_responses.get('UIDVALIDITY', [b'0'])[-1])
    typ, data = c.uid('FETCH', '1:*', '(UID FLAGS)')
    msgs = {}
    for item in data or []:
        if item is None:
            continue
        line = item[0] if isinstance(item, tuple) else item
        m = FETCH_RE.search(line)
        if not m:
            continue
        uid = int(m.group(1) or m.group(4))
        flags = (m.group(2) if m.group(2) is not None else m.group(3)).decode()
        msgs[uid] = ' '.join(sorted(f for f in flags.split() if f != '\\Recent'))
    return uidv, msgs


def body_hash(c, uid):
    typ, data = c.uid('FETCH', str(uid), '(BODY.PEEK[])')
    for item in data or []:
        if isinstance(item, tuple):
            return hashlib.sha256(item[1]).hexdigest()
    return None


def connect(o):
    c = imaplib.IMAP4(o.host, o.port)
    c.login(o.user, o.password)
    return c


def save(o):
    c = connect(o)
    cache = {}
    for name in folders(c):
        uidv, msgs = state(c, name)
        cache[name] = {'uidvalidity': uidv,
                       'messages': {str(u): {'flags': f, 'sha256': body_hash(c, u)}
                                    for u, f in msgs.items()}}
    c.logout()
    with open(o.cache, 'w') as f:
        json.dump(cache, f, indent=1, sort_keys=True)
    print(json.dumps({'folders': len(cache),
                      'messages': sum(len(v['messages']) for v in cache.values())}))
    return 0


def check(o):
    with open(o.cache) as f:
        cache = json.load(f)
    c = connect(o)
    have = set(folders(c))
    rep = {'uidvalidity_changed': [], 'missing_folders': [], 'would_download': 0,
           'would_delete': 0, 'flag_changes': 0, 'bytes_checked': 0, 'bytes_differ': []}
    for name, cf in sorted(cache.items()):
        if name not in have:
            rep['missing_folders'].append(name)
            continue
        uidv, msgs = state(c, name)
        if uidv != cf['uidvalidity']:
            rep['uidvalidity_changed'].append('%s: %d -> %d' % (name, cf['uidvalidity'], uidv))
            continue
        cached = {int(u): m for u, m in cf['messages'].items()}
        rep['would_download'] += len(set(msgs) - set(cached))
        rep['would_delete'] += len(set(cached) - set(msgs))
        rep['flag_changes'] += sum(1 for u in set(msgs) & set(cached)
                                   if msgs[u] != cached[u]['flags'])
        for u in sorted(set(msgs) & set(cached))[:o.sample]:
            rep['bytes_checked'] += 1
            if body_hash(c, u) != cached[u]['sha256']:
                rep['bytes_differ'].append('%s/%d' % (name, u))
    c.logout()
    print(json.dumps(rep, sort_keys=True))
    ok = (not rep['uidvalidity_changed'] and not rep['missing_folders'] and
          rep['would_download'] == o.allow_new and rep['would_delete'] == 0 and
          rep['flag_changes'] == 0 and not rep['bytes_differ'])
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('mode', choices=['save', 'check'])
    p.add_argument('host')
    p.add_argument('port', type=int)
    p.add_argument('user')
    p.add_argument('password')
    p.add_argument('cache')
    p.add_argument('--sample', type=int, default=10)
    p.add_argument('--allow-new', type=int, default=0)
    o = p.parse_args()
    return save(o) if o.mode == 'save' else check(o)


if __name__ == '__main__':
    sys.exit(main())
