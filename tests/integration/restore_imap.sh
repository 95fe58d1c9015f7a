#!/bin/bash
# `arca restore imap` on a real Dovecot: three accounts filled with real mail
# (folders with special-use and non-ASCII names, flags, keywords, a Sieve
# script, subscriptions, a message twice, messages without Message-ID, one
# with bare "From " lines and one of 3 MiB), pulled with `arca pull imap`, the
# mail store wiped, then put back over IMAP for all accounts with the master
# user.  The IMAP view afterwards equals the one before except UIDVALIDITY
# and UIDs (messages matched in order: same bytes, flags, keywords,
# INTERNALDATE, folders, special-use, subscriptions); the Sieve scripts are
# back and the active one is active.  A second run appends nothing.  A
# restore killed midway (after a batch, and between sending an APPEND and
# reading its answer) is run again: nothing is duplicated, all is there.
# Mail arcad journaled after the snapshot is appended (INBOX / Sent), not
# when the snapshot or the folder has it, not twice; an account known only
# from the journal is restored from it.
set -u
. "$(dirname "$0")/../lib/common.sh"
DOVECOT_USERS="alice@example.test bob@example.test carol@other.test dave@example.test"
. "$ARCA_ROOT/tests/lib/dovecot.sh"
. "$ARCA_ROOT/tests/lib/arcad.sh"
. "$ARCA_ROOT/tests/lib/corpus.sh"
PY=/usr/bin/python3
TOOLS=$ARCA_ROOT/tests/tools
export ARCA_PASSPHRASE=rimap-pass ARCA_TEST_FAST_KDF=1
T=$(test_tmpdir rimap)
trap 'arcad_kill "$T/ad"; dovecot_stop "$T/dc" >/dev/null 2>&1; _test_cleanup' EXIT
ACCTS="alice@example.test bob@example.test carol@other.test"
CORPUS=$(corpus_dir) || { echo "not ok - corpus available"; exit 1; }
echo masterpw >"$T/masterpw"
printf '%s\n' $ACCTS >"$T/accounts"
D=$T/dc
dovecot_start "$D" maildirpp >/dev/null || { echo "not ok - dovecot starts"; exit 1; }
R=$T/repo
"$ARCA" init --repo "$R" --restore-key "$T/rk" >/dev/null

dump_all() {  # TAG
	local a
	for a in $ACCTS; do
		$PY "$TOOLS/imapdump.py" -o "$T/$1-$a.json" 127.0.0.1 "$DOVECOT_IMAP_PORT" "$a*admin" masterpw || return 1
	done
}
# Equal but for UIDVALIDITY, UIDNEXT and UIDs: messages in UID order.
same_view() {  # A.json B.json
	$PY - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
out = []
fa, fb = a['folders'], b['folders']
for n in sorted(set(fa) ^ set(fb)):
    out.append('folder only in %s: %s' % ('before' if n in fa else 'after', n))
for n in sorted(set(fa) & set(fb)):
    x, y = fa[n], fb[n]
    for k in sorted(set(x) | set(y)):
        if k in ('uidvalidity', 'uidnext', 'messages'):
            continue
        if x.get(k) != y.get(k):
            out.append('%s: %s %r != %r' % (n, k, x.get(k), y.get(k)))
    mx = [(m['flags'], m['internaldate'], m['size'], m['sha256']) for m in x.get('messages', [])]
    my = [(m['flags'], m['internaldate'], m['size'], m['sha256']) for m in y.get('messages', [])]
    if mx != my:
        out.append('%s: %d messages before, %d after; first difference: %r'
                   % (n, len(mx), len(my), next(((p, q) for p, q in zip(mx, my) if p != q), None)))
for l in out[:20]:
    print(l)
sys.exit(1 if out else 0)
PY
}
restore() {  # extra args...; stdout in $T/restore.out, stderr in $T/restore.err
	"$ARCA" restore imap --repo "$R" --restore-key "$T/rk" --host 127.0.0.1 \
		--port "$DOVECOT_IMAP_PORT" --master-user admin --password-file "$T/masterpw" \
		"$@" >"$T/restore.out" 2>"$T/restore.err"
}
total() {  # KEY: the sum over the JSON lines of the last restore
	$PY -c 'import json,sys
print(sum(json.loads(l)[sys.argv[2]] for l in open(sys.argv[1]) if l.strip()))' "$T/restore.out" "$1"
}
wipe() {
	dovecot_stop "$D" >/dev/null
	rm -rf "$DOVECOT_MAIL_ROOT"
	dovecot_start "$D" maildirpp >/dev/null
}

check "populate 3 accounts (real mail, folders, flags, keywords, a Sieve script)" \
	$PY "$TOOLS/populate.py" --host 127.0.0.1 --imap-port "$DOVECOT_IMAP_PORT" \
	--lmtp-port "$DOVECOT_LMTP_PORT" --sieve-port "$DOVECOT_SIEVE_PORT" \
	--master-user admin --master-password masterpw \
	--accounts "${ACCTS// /,}" --messages-dir "$CORPUS" --count 40 --seed 11
# what populate does not make: the same message twice in a folder, messages
# without Message-ID (two of the same date and size, differing after the
# header), lines starting "From " in a body, a 3 MiB message, a second
# Sieve script (inactive)
check "add duplicates, messages without Message-ID, 'From ' lines, a large one" $PY - "$DOVECOT_IMAP_PORT" "$TOOLS" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
from imapdump import ImapClient, quote
c = ImapClient('127.0.0.1', sys.argv[1]); c.login('alice@example.test*admin', 'masterpw')
def append(box, flags, date, msg):
    c.command('APPEND %s (%s) "%s" %%L' % (quote(box), flags, date), [msg])
twice = b'From: a@x.test\r\nTo: alice@example.test\r\nSubject: twice\r\nMessage-ID: <twice@x.test>\r\n\r\nsame\r\n'
append('INBOX', '\\Seen', '01-Feb-2020 10:00:00 +0000', twice)
append('INBOX', '\\Seen', '01-Feb-2020 10:00:00 +0000', twice)
for body in (b'first\r\n', b'other\r\n'):
    append('INBOX', '$label1', '02-Feb-2020 11:00:00 +0000',
           b'From: n@x.test\r\nSubject: no id\r\n\r\n' + body)
append('Archive', '\\Flagged', '03-Mar-2021 12:00:00 +0000',
       b'From: f@x.test\r\nSubject: from lines\r\nMessage-ID: <from@x.test>\r\n\r\n'
       b'From here on\r\n>From quoted once\r\n>>From twice\r\nnot From\r\nFrom\r\n')
big = b'From: big@x.test\r\nSubject: 3 MiB\r\nMessage-ID: <big@x.test>\r\n\r\n' + \
      b''.join(b'%07d abcdefghijklmnopqrstuvwxyz 0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n' % i for i in range(42000))
append('Archiv', '', '04-Apr-2022 13:00:00 +0000', big)
c.logout()
PY
check "a second, inactive Sieve script for alice" $PY - "$DOVECOT_SIEVE_PORT" <<'PY'
import base64, socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), 30); f = s.makefile('rb')
def ok():
    while True:
        l = f.readline()
        if l[:2].upper() == b'OK': return
        if l[:2].upper() == b'NO' or not l: raise SystemExit('managesieve: %r' % l)
ok()
s.sendall(b'AUTHENTICATE "PLAIN" "%s"\r\n' % base64.b64encode(b'alice@example.test\0admin\0masterpw')); ok()
script = b'# spare\r\nkeep;\r\n'
s.sendall(b'PUTSCRIPT "spare \xc3\xa9" {%d+}\r\n%s\r\n' % (len(script), script)); ok()
PY
check "pull the 3 accounts (with Sieve)" "$ARCA" pull imap --repo "$R" --host 127.0.0.1 \
	--port "$DOVECOT_IMAP_PORT" --master-user admin --password-file "$T/masterpw" \
	--accounts-from "$T/accounts" --sieve-port "$DOVECOT_SIEVE_PORT"
check "dump the accounts" dump_all before
cp -a "$DOVECOT_MAIL_ROOT/example.test/alice/sieve" "$T/alice-sieve"
active_before=$(readlink "$DOVECOT_MAIL_ROOT/example.test/alice/.dovecot.sieve")
nmsgs=$($PY -c 'import json,sys
print(sum(len(f.get("messages", [])) for p in sys.argv[1:] for f in json.load(open(p))["folders"].values()))' "$T"/before-*.json)

# ---- wipe, restore everything
wipe || { echo "not ok - dovecot restarts on an empty store"; exit 1; }
restore --all --sieve-port "$DOVECOT_SIEVE_PORT" --json
expect_eq "restore imap --all exits 0" "$?" 0
expect_eq "every message appended ($nmsgs)" "$(total appended)" "$nmsgs"
expect_eq "nothing was 'already there'" "$(total already)" 0
check "dump after the restore" dump_all after
for a in $ACCTS; do
	check "$a: IMAP view equals the one before (but UIDs)" same_view "$T/before-$a.json" "$T/after-$a.json"
done
check "alice's Sieve scripts are back byte for byte" diff -r -x tmp "$T/alice-sieve" "$DOVECOT_MAIL_ROOT/example.test/alice/sieve"
expect_eq "alice's active Sieve script is active again" \
	"$(readlink "$DOVECOT_MAIL_ROOT/example.test/alice/.dovecot.sieve")" "$active_before"
check "the JSON says 2 scripts put and one activated" $PY -c 'import json,sys
o=[o for o in map(json.loads, open(sys.argv[1])) if o["account"]=="alice@example.test"][0]
assert o["sieve_put"]==2 and o["sieve_activated"], o' "$T/restore.out"

# ---- a second run: everything is already there
restore --all --sieve-port "$DOVECOT_SIEVE_PORT" --json
expect_eq "a second run exits 0" "$?" 0
expect_eq "a second run appends nothing" "$(total appended)" 0
expect_eq "a second run finds all $nmsgs already there" "$(total already)" "$nmsgs"
check "a second run leaves the Sieve scripts alone" $PY -c 'import json,sys
o=[o for o in map(json.loads, open(sys.argv[1])) if o["account"]=="alice@example.test"][0]
assert o["sieve_put"]==0 and o["sieve_same"]==2 and not o["sieve_activated"], o' "$T/restore.out"
check "dump after the second run" dump_all again
for a in $ACCTS; do
	check "$a: unchanged by the second run" same_view "$T/after-$a.json" "$T/again-$a.json"
done
restore --account bob@example.test
check "the text report says 'already there' per folder" grep -q "bob@example.test: INBOX: appended 0, already there" "$T/restore.out"

# ---- interrupted restores: killed after a batch, and between an APPEND
# ---- and its answer (the server has it, we never saw OK)
wipe || { echo "not ok - dovecot restarts on an empty store"; exit 1; }
for n in 3 8 14; do
	( ARCA_FAULT=crash:$n "$ARCA_FAST" restore imap --repo "$R" --restore-key "$T/rk" --host 127.0.0.1 \
		--port "$DOVECOT_IMAP_PORT" --master-user admin --password-file "$T/masterpw" \
		--account alice@example.test --batch 4 >/dev/null 2>&1; exit $? ) 2>/dev/null
	expect_eq "a restore killed at crash point $n" "$?" 137
done
restore --account alice@example.test --batch 4 --json
expect_eq "the re-run completes" "$?" 0
got=$(total already)
if [ "$got" -gt 0 ]; then echo "ok - the re-run found $got messages the killed runs had appended"; else echo "not ok - the re-run found nothing already there"; _test_failed=1; fi
check "dump alice after the interrupted restores" $PY "$TOOLS/imapdump.py" -o "$T/int-alice.json" 127.0.0.1 "$DOVECOT_IMAP_PORT" "alice@example.test*admin" masterpw
check "alice: no duplicate, nothing missing (view equals the one before)" same_view "$T/before-alice@example.test.json" "$T/int-alice.json"

# ---- one message, into another account, with MULTIAPPEND off the table
uid=$($PY -c 'import json,sys
print(json.load(open(sys.argv[1]))["folders"]["Archive"]["messages"][0]["uid"])' "$T/before-alice@example.test.json")
restore --account alice@example.test --to-account carol@other.test --folder Archive --uid "$uid" --json
expect_eq "one message restored into another account" "$(total appended)" 1
restore --account alice@example.test --to-account carol@other.test --folder Archive --uid "$uid" --json
expect_eq "... and not twice" "$(total already)" 1
restore --account alice@example.test --folder Nowhere
expect_eq "an unknown folder is an error (exit 1)" "$?" 1
check "... that names it" grep -q "no folder Nowhere" "$T/restore.err"
restore --account alice@example.test --snapshot 0000 --folder INBOX
expect_eq "an unknown snapshot is an error" "$?" 1

# ---- journaled mail.  A recent message in Archive goes into a new
# ---- snapshot; then arcad journals, after it: mail in (new, a copy of the
# ---- recent Archive message, a copy of one INBOX has, one without
# ---- Message-ID), mail out, and mail for dave, who has no snapshot.
check "a message dated now in alice's Archive" $PY - "$DOVECOT_IMAP_PORT" "$TOOLS" <<'PY'
import sys, time
sys.path.insert(0, sys.argv[2])
from imapdump import ImapClient
c = ImapClient('127.0.0.1', sys.argv[1]); c.login('alice@example.test*admin', 'masterpw')
now = time.strftime('%d-%b-%Y %H:%M:%S +0000', time.gmtime())
c.command('APPEND Archive () "%s" %%L' % now,
          [b'From: r@x.test\r\nSubject: recent\r\nMessage-ID: <recent@x.test>\r\n\r\nfiled away\r\n'])
c.logout()
PY
check "pull alice again (the snapshot the journal follows)" "$ARCA" pull imap --repo "$R" --host 127.0.0.1 \
	--port "$DOVECOT_IMAP_PORT" --master-user admin --password-file "$T/masterpw" --account alice@example.test
read -r JP <<<"$(arcad_free_ports 1)"
J=journal.invalid
jsend() {  # TO BODY
	$PY "$TOOLS/lmtp_send.py" "127.0.0.1:$JP" --from x@example.test --to "$1" --body "$2" | grep -q ' 250 '
}
check "arcad starts on the repository" arcad_start "$T/ad" "$R" "$JP"
check "journal: new mail in" jsend "alice=example.test@$J" \
	$'From: x@example.test\r\nSubject: journaled in\r\nMessage-ID: <jin@x.test>\r\n\r\nafter the snapshot\r\n'
check "journal: a copy of the recent Archive message" jsend "alice=example.test@$J" \
	$'From: r@x.test\r\nSubject: recent\r\nMessage-ID: <recent@x.test>\r\n\r\nfiled away\r\n'
check "journal: a copy of a message INBOX has" jsend "alice=example.test@$J" \
	$'From: a@x.test\r\nTo: alice@example.test\r\nSubject: twice\r\nMessage-ID: <twice@x.test>\r\n\r\nsame\r\n'
check "journal: mail in without Message-ID" jsend "alice=example.test@$J" \
	$'From: n@x.test\r\nSubject: no id journaled\r\n\r\nbody\r\n'
check "journal: mail out" jsend "alice=example.test@out.$J" \
	$'From: alice@example.test\r\nSubject: sent after\r\nMessage-ID: <jout@x.test>\r\n\r\nsent\r\n'
SELF=$'From: alice@example.test\r\nTo: alice@example.test\r\nSubject: note to self\r\nMessage-ID: <self@x.test>\r\n\r\nremember\r\n'
check "journal: mail to oneself, in" jsend "alice=example.test@$J" "$SELF"
check "journal: mail to oneself, out" jsend "alice=example.test@out.$J" "$SELF"
check "journal: mail for dave (no snapshot)" jsend "dave=example.test@$J" \
	$'From: x@example.test\r\nSubject: for dave\r\nMessage-ID: <dave@x.test>\r\n\r\nhello\r\n'
arcad_stop "$T/ad"
wipe || { echo "not ok - dovecot restarts on an empty store"; exit 1; }
jtotal() {  # ACCOUNT KEY
	$PY -c 'import json,sys
print([o for o in map(json.loads, open(sys.argv[1])) if o["account"] == sys.argv[2]][0][sys.argv[3]])' \
		"$T/restore.out" "$1" "$2"
}
restore --account alice@example.test --json
expect_eq "restore with the journal exits 0" "$?" 0
expect_eq "5 journaled messages appended (in, no Message-ID, out, to oneself in and out)" "$(jtotal alice@example.test journal_appended)" 5
expect_eq "2 journaled ones already there (in the snapshot's Archive; in INBOX)" \
	"$(jtotal alice@example.test journal_already)" 2
# what each folder holds: Message-ID -> [count, seen]; subjects of those without
jview() {
	$PY - "$DOVECOT_IMAP_PORT" "$1" <<'PY'
import imaplib, re, sys
c = imaplib.IMAP4('127.0.0.1', int(sys.argv[1])); c.login(sys.argv[2] + '*admin', 'masterpw')
for box in ('INBOX', 'Sent', 'Archive'):
    if c.select(box, readonly=True)[0] != 'OK':
        continue
    typ, data = c.fetch('1:*', '(FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT RETURN-PATH)])')
    for part in data:
        if not isinstance(part, tuple):
            continue
        h = part[1].decode('latin-1')
        mid = re.search(r'(?im)^message-id:\s*(\S+)', h)
        subj = re.search(r'(?im)^subject:\s*(.*?)\s*$', h)
        rp = 'rp' if re.search(r'(?im)^return-path:', h) else '-'
        seen = 'seen' if b'\\Seen' in part[0] else 'unseen'
        print(box, mid.group(1) if mid else 'subject:' + subj.group(1), seen, rp)
PY
}
jview alice@example.test >"$T/jview"
check "INBOX: the new journaled mail, unseen, with Dovecot's Return-Path" grep -qx "INBOX <jin@x.test> unseen rp" "$T/jview"
check "INBOX: the journaled mail without Message-ID" grep -qx "INBOX subject:no id journaled unseen rp" "$T/jview"
check "Sent: the journaled mail out, seen" grep -qx "Sent <jout@x.test> seen -" "$T/jview"
check "mail to oneself: in INBOX, unseen" grep -qx "INBOX <self@x.test> unseen rp" "$T/jview"
check "mail to oneself: and in Sent, seen" grep -qx "Sent <self@x.test> seen -" "$T/jview"
expect_eq "the copy of the Archive message is not in INBOX (the snapshot has it)" \
	"$(grep -c '^INBOX <recent@x.test>' "$T/jview")" 0
expect_eq "the message INBOX held twice is there twice, not three times" \
	"$(grep -c '^INBOX <twice@x.test>' "$T/jview")" 2
restore --account alice@example.test --json
expect_eq "a second run appends no journaled mail" "$(jtotal alice@example.test journal_appended)" 0
expect_eq "... and finds all 7 already there" "$(jtotal alice@example.test journal_already)" 7
jview alice@example.test >"$T/jview2"
check "... and leaves the folders as they were" diff "$T/jview" "$T/jview2"
restore --account dave@example.test
expect_eq "an account known only from the journal restores" "$?" 0
check "... saying so" grep -q "restored dave@example.test from the journal only" "$T/restore.out"
jview dave@example.test >"$T/jdave"
check "... its journaled mail is in its INBOX" grep -qx "INBOX <dave@x.test> unseen rp" "$T/jdave"
check "... the report has a line for it" grep -q "^dave@example.test: INBOX (journaled mail): appended 1, already there 0" "$T/restore.out"
restore --account dave@example.test --folder INBOX
expect_eq "--folder of an account with no snapshot is an error (the journal is not a folder)" "$?" 1
wipe || { echo "not ok - dovecot restarts on an empty store"; exit 1; }
restore --account alice@example.test --no-journal --json
expect_eq "--no-journal appends no journaled mail" "$(jtotal alice@example.test journal_appended)" 0
restore --all --jobs 3 --json
expect_eq "--all --jobs 3 (worker processes) exits 0" "$?" 0
expect_eq "... one whole JSON line per account (none interleaved)" \
	"$($PY -c 'import json,sys; print(sorted(json.loads(l)["account"] for l in open(sys.argv[1])))' "$T/restore.out")" \
	"['alice@example.test', 'bob@example.test', 'carol@other.test', 'dave@example.test']"
check "--all includes the account known only from the journal" grep -q '"account":"dave@example.test"' "$T/restore.out"
expect_eq "--all adds alice's 5 journaled messages" "$(jtotal alice@example.test journal_appended)" 5
for a in bob@example.test carol@other.test; do
	check "dump $a after --jobs" $PY "$TOOLS/imapdump.py" -o "$T/jobs-$a.json" 127.0.0.1 "$DOVECOT_IMAP_PORT" "$a*admin" masterpw
	check "--jobs: $a's IMAP view equals the one before (but UIDs)" same_view "$T/before-$a.json" "$T/jobs-$a.json"
done
test_done
