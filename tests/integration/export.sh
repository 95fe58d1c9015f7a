#!/bin/bash
# `arca export` of a pulled account: as a tree of .eml files (each file the
# very message Dovecot served, but for IMAP's CRLF; mtime = INTERNALDATE;
# index.tsv with flags and keywords) and as mboxrd (read back with Python's
# mailbox module, un-quoted, equal to the .eml files; "From " lines quoted
# by mboxrd's rule).  One folder, one message, --with-status, and refusing
# to write over files without --force.
set -u
. "$(dirname "$0")/../lib/common.sh"
. "$ARCA_ROOT/tests/lib/dovecot.sh"
. "$ARCA_ROOT/tests/lib/corpus.sh"
PY=/usr/bin/python3
TOOLS=$ARCA_ROOT/tests/tools
export ARCA_PASSPHRASE=export-pass ARCA_TEST_FAST_KDF=1
T=$(test_tmpdir export)
trap 'dovecot_stop "$T/dc" >/dev/null 2>&1; _test_cleanup' EXIT
A=alice@example.test
CORPUS=$(corpus_dir) || { echo "not ok - corpus available"; exit 1; }
echo masterpw >"$T/masterpw"
dovecot_start "$T/dc" fs >/dev/null || { echo "not ok - dovecot starts"; exit 1; }
R=$T/repo
"$ARCA" init --repo "$R" --restore-key "$T/rk" >/dev/null
check "populate alice (real mail, folders, flags, keywords)" \
	$PY "$TOOLS/populate.py" --host 127.0.0.1 --imap-port "$DOVECOT_IMAP_PORT" \
	--lmtp-port "$DOVECOT_LMTP_PORT" --master-user admin --master-password masterpw \
	--accounts "$A" --messages-dir "$CORPUS" --count 30 --seed 5
check "a message with 'From ' lines in Archive" $PY - "$DOVECOT_IMAP_PORT" "$TOOLS" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
from imapdump import ImapClient, quote
c = ImapClient('127.0.0.1', sys.argv[1]); c.login('alice@example.test*admin', 'masterpw')
msg = (b'From: f@x.test\r\nSubject: from lines\r\nMessage-ID: <from@x.test>\r\n\r\n'
       b'From here on\r\n>From quoted once\r\n>>From twice\r\nnot From\r\nFrom\r\n>From\r\nlast line without end')
c.command('APPEND "Archive" (\\Flagged $label1) "03-Mar-2021 12:00:00 +0000" %L', [msg])
c.logout()
PY
check "pull alice" "$ARCA" pull imap --repo "$R" --host 127.0.0.1 --port "$DOVECOT_IMAP_PORT" \
	--master-user admin --password-file "$T/masterpw" --account "$A"
check "dump alice" $PY "$TOOLS/imapdump.py" -o "$T/dump.json" 127.0.0.1 "$DOVECOT_IMAP_PORT" "$A*admin" masterpw

ex() { "$ARCA" export --repo "$R" --restore-key "$T/rk" --account "$A" "$@" >"$T/ex.out" 2>"$T/ex.err"; }

# ---- .eml tree
ex --eml "$T/eml"
expect_eq "export --eml exits 0" "$?" 0
check "every message is a .eml equal to what Dovecot served (CRLF aside), with mtime = INTERNALDATE and its flags in index.tsv" \
	$PY - "$T/dump.json" "$T/eml" <<'PY'
import calendar, hashlib, json, os, re, sys, time
d = json.load(open(sys.argv[1]))
root = sys.argv[2]
n = 0
for name, f in d['folders'].items():
    if 'messages' not in f:
        continue
    fdir = os.path.join(root, name)
    idx = {}
    lines = open(os.path.join(fdir, 'index.tsv'), encoding='utf-8').read().split('\n')
    assert lines[0] == 'uid\tflags\tkeywords\tdate\tsize', lines[0]
    for l in lines[1:]:
        if l:
            uid, fl, kw, date, size = l.split('\t')
            idx[int(uid)] = (fl.split(), kw.split(), date, int(size))
    assert len(idx) == len(f['messages']), (name, len(idx), len(f['messages']))
    for m in f['messages']:
        p = os.path.join(fdir, '%d.eml' % m['uid'])
        data = open(p, 'rb').read()
        served = re.sub(rb'(?<!\r)\n', b'\r\n', data)
        assert hashlib.sha256(served).hexdigest() == m['sha256'], (p, 'bytes differ')
        want = calendar.timegm(time.strptime(m['internaldate'][:20], '%d-%b-%Y %H:%M:%S'))
        z = m['internaldate'][21:]
        want -= (int(z[1:3]) * 3600 + int(z[3:5]) * 60) * (1 if z[0] == '+' else -1)
        assert int(os.stat(p).st_mtime) == want, (p, os.stat(p).st_mtime, want)
        fl, kw, date, size = idx[m['uid']]
        assert sorted(fl + kw, key=str.lower) == m['flags'], (p, fl, kw, m['flags'])
        assert size == len(data), (p, size, len(data))
        n += 1
print('checked', n)
assert n > 30
PY
check "Übersicht's messages are under Archiv/2019/Übersicht" test -f "$(ls "$T/eml/Archiv/2019/Übersicht/"*.eml | head -1)"
check "nothing is written outside the target directory" sh -c "! find '$T' -newer '$T/dump.json' -type f -name '*.eml' | grep -v '^$T/eml/'"
ex --eml "$T/eml"
expect_eq "a second export into the same tree is refused" "$?" 1
check "... saying the file exists and --force writes over it" grep -q "exists (--force" "$T/ex.err"
check "no temporary file is left behind" sh -c "! find '$T/eml' -name '.*tmp*' | grep -q ."
ex --eml "$T/eml" --force
expect_eq "... and done with --force" "$?" 0

# ---- mbox, the whole account
ex --mbox "$T/mbox"
expect_eq "export --mbox DIR exits 0" "$?" 0
check "every folder's mbox read back with Python's mailbox module equals the .eml files" \
	$PY - "$T/dump.json" "$T/eml" "$T/mbox" <<'PY'
import json, mailbox, os, re, sys
d = json.load(open(sys.argv[1]))
n = 0
for name, f in d['folders'].items():
    if 'messages' not in f:
        continue
    box = mailbox.mbox(os.path.join(sys.argv[3], name + '.mbox'), create=False)
    keys = box.keys()
    assert len(keys) == len(f['messages']), (name, len(keys), len(f['messages']))
    for k, m in zip(keys, f['messages']):
        raw = box.get_bytes(k)
        # mboxrd: one '>' less on lines that are '>'* 'From '
        raw = re.sub(rb'(?m)^>(>*From )', rb'\1', raw)
        want = open(os.path.join(sys.argv[2], name, '%d.eml' % m['uid']), 'rb').read()
        if not want.endswith(b'\n'):
            want += b'\n'   # the mbox ends every message with a line end
        assert raw == want, (name, m['uid'])
        n += 1
    box.close()
print('checked', n)
assert n > 30
PY
check "mboxrd quoting of 'From ' lines" $PY - "$T/mbox/Archive.mbox" <<'PY'
import sys
# (the pull keeps the file Dovecot wrote: LF line ends)
t = open(sys.argv[1], 'rb').read().replace(b'\r\n', b'\n')
i = t.index(b'Subject: from lines')
body = t[i:].split(b'\n\n', 1)[1]
want = (b'>From here on\n>>From quoted once\n>>>From twice\nnot From\nFrom\n>From\n'
        b'last line without end\n\n')
assert body.startswith(want), body[:200]
PY
check "the From line carries the INTERNALDATE in asctime form" grep -q "^From MAILER-DAEMON Wed Mar  3 12:00:00 2021$" "$T/mbox/Archive.mbox"

# ---- one folder, one message, status headers
ex --folder Archive --mbox "$T/archive.mbox" --with-status
expect_eq "export of one folder with --with-status" "$?" 0
check "... has Status/X-Status/X-Keywords for the flagged message" $PY - "$T/archive.mbox" <<'PY'
import sys
t = open(sys.argv[1], 'rb').read()
i = t.index(b'From MAILER-DAEMON Wed Mar  3 12:00:00 2021\n')
head = t[i:i + 200]
assert b'\nStatus: O\nX-Status: F\nX-Keywords: $label1\nFrom: f@x.test' in head, head
PY
uid=$($PY -c 'import json,sys
print(json.load(open(sys.argv[1]))["folders"]["INBOX"]["messages"][3]["uid"])' "$T/dump.json")
ex --folder INBOX --uid "$uid" --mbox "$T/one.mbox"
expect_eq "export of one message" "$?" 0
check "... holds exactly that message" $PY - "$T/one.mbox" "$T/eml/INBOX/$uid.eml" <<'PY'
import mailbox, re, sys
b = mailbox.mbox(sys.argv[1], create=False)
assert len(b) == 1
raw = re.sub(rb'(?m)^>(>*From )', rb'\1', b.get_bytes(b.keys()[0]))
want = open(sys.argv[2], 'rb').read()
assert raw == want + (b'' if want.endswith(b'\n') else b'\n')
PY
ex --folder INBOX --uid 999999 --mbox "$T/none.mbox"
expect_eq "an unknown UID is an error" "$?" 1
check "... and leaves no file" test ! -e "$T/none.mbox"
ex --folder INBOX --uid "$uid" --mbox "$T/one.mbox"
expect_eq "an existing mbox is not overwritten" "$?" 1
test_done
