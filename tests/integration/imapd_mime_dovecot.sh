#!/bin/bash
# What serve-imap derives from a message (lib/imapd/imapd_mime.c) against
# what Dovecot 2.3 sends for the same bytes: a private Dovecot gets the
# hand-made messages of test_imapd_mime (--write-samples) and real corpus
# mail (LF turned into CRLF, as Dovecot serves Maildir files), appended over
# IMAP; for each message BODYSTRUCTURE, BODY, ENVELOPE, BODY[1], BODY[1.MIME],
# BODY[HEADER.FIELDS (FROM TO SUBJECT)], BODY[TEXT] and a few more sections
# are fetched with python3 imaplib and compared byte for byte with
# `test_imapd_mime --dump FILE`.
#
# Known, accepted differences (docs/protocol/imap-mime.md) are listed in
# KNOWN below by message and item, each with its reason; any other
# difference fails the test.  IMAPD_MIME_CORPUS=N sets how many corpus
# messages (default 400, spread over the whole corpus).
set -u
. "$(dirname "$0")/../lib/common.sh"
. "$ARCA_ROOT/tests/lib/dovecot.sh"
. "$ARCA_ROOT/tests/lib/corpus.sh"
PY=/usr/bin/python3
BIN=${ARCA_BIN_ASAN:-$ARCA_ROOT/build-asan}/tests/test_imapd_mime
[ -x "$BIN" ] || BIN=${ARCA_BIN:-$ARCA_ROOT/build}/tests/test_imapd_mime
T=$(test_tmpdir imapd-mime)
CORPUS=$(corpus_dir) || { echo "not ok - corpus available"; exit 1; }
N=${IMAPD_MIME_CORPUS:-400}

mkdir -p "$T/msgs"
check "hand-made messages written" "$BIN" --write-samples "$T/msgs"
# Corpus messages spread evenly over the five sets (ham, hard ham, spam),
# bare LF -> CRLF as Dovecot serves them.
$PY - "$CORPUS" "$T/msgs" "$N" <<'EOF' || { echo "not ok - corpus sample"; exit 1; }
import os, re, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = sorted(f for f in os.listdir(src) if f.endswith('.eml'))
step = max(1, len(files) // n) if n else len(files) + 1
for f in files[::step][:n]:
    data = open(os.path.join(src, f), 'rb').read()
    data = re.sub(rb'(?<!\r)\n', b'\r\n', data)
    # Dovecot refuses NUL bytes in APPEND; such a message isn't comparable
    if b'\0' in data:
        continue
    open(os.path.join(dst, 'c' + f), 'wb').write(data)
EOF

if ! dovecot_start "$T/dc" fs >/dev/null; then
	echo "not ok - dovecot starts"; exit 1
fi

# Every message's dump from our code, then the comparison in Python.
for f in "$T"/msgs/*.eml; do
	"$BIN" --dump "$f" >"$f.ours" 2>"$f.err" || echo "dump failed: $f" >>"$T/dump-failures"
done
check "test_imapd_mime --dump succeeds on every message" test ! -s "$T/dump-failures"

$PY - "$T/msgs" "$DOVECOT_IMAP_PORT" >"$T/compare.out" 2>&1 <<'EOF'
import imaplib, os, re, sys
d, port = sys.argv[1], int(sys.argv[2])

# Accepted differences: item -> test on (dovecot, ours).  Each is listed
# with its reason in docs/protocol/imap-mime.md.
def syntax_error_addresses(dv, ours):
    # A malformed address (e.g. "<Undisclosed Recipients@host>",
    # "<x:;@host>", "user@[1086695621], [pi]@host"): Dovecot's own
    # lenient parser marks it with the host SYNTAX_ERROR or the mailbox
    # MISSING_MAILBOX; ours is libetpan's, which recovers differently.
    # Accepted only when Dovecot itself says the address is broken.
    return b'"SYNTAX_ERROR"' in dv or b'"MISSING_MAILBOX"' in dv

KNOWN = {
    'ENVELOPE': syntax_error_addresses,
    'BODYSTRUCTURE': lambda dv, ours: False,
}

ITEMS = ['BODYSTRUCTURE', 'BODY', 'ENVELOPE', 'BODY[1]', 'BODY[1.MIME]',
         'BODY[HEADER.FIELDS (FROM TO SUBJECT)]', 'BODY[TEXT]', 'BODY[HEADER]',
         'BODY[2]', 'BODY[2.MIME]', 'BODY[1.1]', 'BODY[2.1]', 'BODY[2.HEADER]',
         'BODY[2.TEXT]', 'BODY[]']

def read_dump(path):
    data = open(path, 'rb').read()
    out, i = {}, 0
    while i < len(data):
        nl = data.index(b'\n', i)
        name, n = data[i:nl].decode().rsplit(' ', 1)
        n = int(n)
        out[name] = data[nl + 1:nl + 1 + n]
        i = nl + 1 + n + 1
    return out

def raw(resp):
    """imaplib's FETCH data back into the bytes on the wire."""
    b = b''
    for x in resp:
        if isinstance(x, tuple):
            b += x[0] + b'\r\n' + x[1]
        elif x is not None:
            b += x
    return b

M = imaplib.IMAP4('127.0.0.1', port)
M.login('alice@example.test', 'pw')
names = sorted(f for f in os.listdir(d) if f.endswith('.eml'))
appended = []
for f in names:
    data = open(os.path.join(d, f), 'rb').read()
    typ, _ = M.append('INBOX', None, None, data)
    if typ != 'OK':
        print('append refused: %s' % f)
        continue
    appended.append(f)
M.select('INBOX', readonly=True)
fails = mism = known = 0
for seq, f in enumerate(appended, 1):
    ours = read_dump(os.path.join(d, f + '.ours'))
    for item in ITEMS:
        fetch = item if not item.startswith('BODY[') else 'BODY.PEEK' + item[4:]
        typ, resp = M.fetch(str(seq), '(' + fetch + ')')
        w = raw(resp)
        prefix = ('%d (%s ' % (seq, item)).encode()
        if not w.startswith(prefix) or not w.endswith(b')'):
            print('%s %s: unexpected answer %r' % (f, item, w[:200]))
            fails += 1
            continue
        v = w[len(prefix):-1]
        if item.startswith('BODY['):
            m = re.match(rb'\{(\d+)\}\r\n', v)
            if m:
                v = v[m.end():]
                assert len(v) == int(m.group(1)), (f, item)
            elif v in (b'NIL', b'""'):
                v = b''
            else:
                print('%s %s: not a literal %r' % (f, item, v[:100]))
                fails += 1
                continue
        o = ours.get(item)
        if o == v:
            continue
        if item in KNOWN and KNOWN[item](v, o or b''):
            known += 1
            continue
        mism += 1
        print('MISMATCH %s %s\n  dovecot: %r\n  ours:    %r' % (f, item, v[:600], (o or b'')[:600]))
M.logout()
print('compared %d messages x %d items: %d mismatches, %d known differences, %d errors'
      % (len(appended), len(ITEMS), mism, known, fails))
sys.exit(1 if mism or fails or len(appended) < len(names) else 0)
EOF
rc=$?
tail -1 "$T/compare.out"
if [ $rc -eq 0 ]; then
	echo "ok - every form and section equals Dovecot's ($(tail -1 "$T/compare.out"))"
else
	grep -A2 '^MISMATCH\|append refused\|unexpected\|not a literal' "$T/compare.out" | head -80
	echo "not ok - every form and section equals Dovecot's"
	_test_failed=1
fi
[ -n "${KEEP_TMP:-}" ] && cp "$T/compare.out" "${TMPDIR:-/tmp}/imapd_mime_compare.out"
dovecot_stop "$T/dc" >/dev/null 2>&1
test_done
