#!/usr/bin/python3
"""mkmaildir.py OUT --messages N [--seed S] [--big K] [--layout maildir++|fs]

Writes a deterministic Dovecot-style Maildir for tests: INBOX plus nested
folders (one with a non-ASCII name, mUTF-7 on disk), files in cur/ and new/,
flags and keyword letters, dovecot-uidlist v3 (with a gap, some records by
whole name), dovecot-keywords,
subscriptions, mtimes in the past, K messages over 1 MiB (chunked path), and
a few bodies with invalid UTF-8 bytes.  If $ARCA_CORPUS_DIR holds .eml files
their bytes are used as message bodies.
"""
import argparse, os, random, glob

def mutf7(name):
    out, buf = [], ''
    def flush():
        nonlocal buf
        if buf:
            import base64
            b = base64.b64encode(buf.encode('utf-16-be')).decode().rstrip('=').replace('/', ',')
            out.append('&' + b + '-')
            buf = ''
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append('&-' if ch == '&' else ch)
        else:
            buf += ch
    flush()
    return ''.join(out)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--messages', type=int, default=100)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--big', type=int, default=2)
    ap.add_argument('--layout', default='maildir++')
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    corpus = sorted(glob.glob(os.path.join(os.environ.get('ARCA_CORPUS_DIR', '/nonexistent'), '*.eml')))
    folders = ['INBOX', 'Sent', 'Archive/2019', 'Archive/2020', 'Projets/Été']
    def fdir(name):
        if name == 'INBOX':
            return a.out
        if a.layout == 'fs':
            return os.path.join(a.out, *[mutf7(p) for p in name.split('/')])
        return os.path.join(a.out, '.' + '.'.join(mutf7(p) for p in name.split('/')))
    kwnames = ['$Forwarded', 'Work', '$Junk', 'custom_kw']
    t0 = 1500000000
    per = max(1, a.messages // len(folders))
    n = 0
    for fi, name in enumerate(folders):
        d = fdir(name)
        for sub in ('cur', 'new', 'tmp'):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        if name != 'INBOX' and a.layout != 'fs':
            open(os.path.join(d, 'maildirfolder'), 'w').close()
        recs = []
        uid = 1
        for i in range(per):
            n += 1
            if corpus:
                body = open(corpus[(a.seed * 7919 + n) % len(corpus)], 'rb').read()
            else:
                words = ' '.join(rnd.choice(['mail', 'vault', 'restore', 'dovecot', 'über', 'the', 'a', 'of'])
                                 for _ in range(rnd.randint(20, 400)))
                body = (f'From: a{n}@example.test\nTo: b@example.test\nSubject: m {n}\n'
                        f'Message-ID: <{n}.{a.seed}@example.test>\n\n{words}\n').encode()
            if i == 3:
                body += b'\xff\xfe invalid utf-8 \x80\n'
            if n <= a.big:
                body += (('%064x' % n) * 16 + '\n').encode() * (1400000 // 1025 + n * 100)
            base = f'{t0 + n}.M{n}P{fi}.testhost,S={len(body)}'
            in_new = (i % 9 == 8)
            flags = '' if in_new else ''.join(sorted(rnd.sample('SRFD', rnd.randint(0, 2))))
            kws = '' if in_new else ''.join(sorted(rnd.sample('abcd', rnd.randint(0, 2))))
            fname = base if in_new else f'{base}:2,{flags}{kws}'
            p = os.path.join(d, 'new' if in_new else 'cur', fname)
            with open(p, 'wb') as f:
                f.write(body)
            os.utime(p, (t0 + n * 3600, t0 + n * 3600))
            if i % 13 == 12:
                uid += 2  # a gap, as after expunges
            if i % 11 != 10:   # some files not yet in the uidlist
                # some records name the whole file, as other tools write
                # them; one of them with the flags it had before a rename
                rec = base
                if i % 5 == 4 and not in_new:
                    rec = fname if i % 10 != 9 else f'{base}:2,T'
                recs.append((uid, rec))
            uid += 1
        with open(os.path.join(d, 'dovecot-uidlist'), 'w') as f:
            f.write(f'3 V{1600000000 + fi} N{uid + 3} G{rnd.getrandbits(128):032x}\n')
            for u, b in recs:
                f.write(f'{u} :{b}\n')
        with open(os.path.join(d, 'dovecot-keywords'), 'w') as f:
            for k, kw in enumerate(kwnames):
                f.write(f'{k} {kw}\n')
    with open(os.path.join(a.out, 'subscriptions'), 'w') as f:
        f.write('V\t2\n\n')
        for name in ['INBOX', 'Sent', 'Archive/2019', 'Projets/Été', 'Gone']:
            f.write('\t'.join(mutf7(p) for p in name.split('/')) + '\n')

main()
