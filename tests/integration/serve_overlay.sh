#!/bin/bash
# Issue 5, "or, better": flag changes made while the vault serves are kept
# and carried to the rebuilt server.  Dovecot with real mail; mbsync mirrors
# alice (Sync All); the vault pulls; the mail store is wiped.  `arca
# serve-imap --overlay FILE` serves the vault read-write for flags: a
# scripted client sets and clears flags and a new keyword on bob's mail and
# reads an unseen message (BODY[] sets \Seen); alice flags a message in her
# mbsync mirror and mbsync pushes it.  serve-imap is killed (SIGKILL) and
# started again: every change is still served.  An altered overlay is
# refused.  Then a rebuilt Dovecot gets `arca restore dovecot --overlay`:
# it serves the same flags and keywords as serve-imap did, HIGHESTMODSEQ not
# below serve-imap's, and mbsync, pointed back, sees no UIDVALIDITY change
# and changes nothing.  `arca restore maildir --overlay` writes the flags
# into the file names.
set -u
export LC_ALL=C
. "$(dirname "$0")/../lib/common.sh"
. "$ARCA_ROOT/tests/lib/dovecot.sh"
. "$ARCA_ROOT/tests/lib/corpus.sh"
PY=/usr/bin/python3
TOOLS=$ARCA_ROOT/tests/tools
export ARCA_PASSPHRASE=overlay-pass ARCA_TEST_FAST_KDF=1 TOOLS
T=$(test_tmpdir overlay)
ACCTS="alice@example.test bob@example.test"
CORPUS=$(corpus_dir) || { echo "not ok - corpus available"; exit 1; }
command -v mbsync >/dev/null || { echo "not ok - mbsync installed (package isync)"; exit 1; }
SERVE=""
trap '[ -n "$SERVE" ] && kill -9 $SERVE 2>/dev/null; dovecot_stop >/dev/null 2>&1; _test_cleanup' EXIT

free_port() { _dovecot_free_ports 1; }
wait_port() {
	local i
	for i in $(seq 100); do
		$PY -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
mbsync_run() {  # PORT: alice's mirror synced (Sync All) with PORT
	cat >"$T/mbsyncrc" <<EOF
IMAPAccount far
Host 127.0.0.1
Port $1
User alice@example.test
Pass pw
SSLType None
AuthMechs LOGIN
Timeout 30

IMAPStore far
Account far

MaildirStore near
Path $T/mirror/
Inbox $T/mirror/INBOX
SubFolders Verbatim

Channel mirror
Far :far:
Near :near:
Patterns *
Create Near
Sync All
SyncState *
EOF
	mbsync -c "$T/mbsyncrc" -a >"$T/mbsync.out" 2>&1
}
manifest() {  # the mirror's files: name (flags included) and content hash
	(cd "$T/mirror" && find . -type f \( -path '*/cur/*' -o -path '*/new/*' \) | sort |
		while read -r f; do printf '%s %s\n' "$f" "$(sha256sum <"$f" | cut -c1-64)"; done)
}
start_serve() {  # OVERLAY LOG: serve-imap on $SP in the background
	"$ARCA" serve-imap --repo "$R" --restore-key "$T/rk" --listen "127.0.0.1:$SP" \
		--users "$T/users" --overlay "$1" >"$2" 2>&1 &
	SERVE=$!
	wait_port "$SP" || return 1
	# listening comes first; the overlay is read after the passphrase
	local i
	for i in $(seq 100); do
		grep -q "ready: the vault is open" "$2" && return 0
		sleep 0.1
	done
	return 1
}

# ---- before the attack
dovecot_start "$T/dc" maildirpp >/dev/null || { echo "not ok - dovecot starts"; exit 1; }
check "populate alice and bob (real mail, folders, flags, keywords)" \
	$PY "$TOOLS/populate.py" --host 127.0.0.1 --imap-port "$DOVECOT_IMAP_PORT" \
	--lmtp-port "$DOVECOT_LMTP_PORT" --master-user admin --master-password masterpw \
	--accounts "${ACCTS// /,}" --messages-dir "$CORPUS" --count 30 --seed 5
mkdir -p "$T/mirror"
check "mbsync mirrors alice from Dovecot" mbsync_run "$DOVECOT_IMAP_PORT"
echo masterpw >"$T/masterpw"
printf '%s\n' $ACCTS >"$T/accounts"
R=$T/repo
"$ARCA" init --repo "$R" --restore-key "$T/rk" >/dev/null
check "the vault pulls both accounts" \
	"$ARCA" pull imap --repo "$R" --host 127.0.0.1 --port "$DOVECOT_IMAP_PORT" \
	--master-user admin --password-file "$T/masterpw" --accounts-from "$T/accounts"
dovecot_stop "$T/dc"
rm -rf "$DOVECOT_MAIL_ROOT"

# ---- the vault serves, flag changes kept
: >"$T/users"
for a in $ACCTS; do printf '%s:{PLAIN}pw\n' "$a" >>"$T/users"; done
SP=$(free_port)
OV=$T/overlay
check "serve-imap --overlay starts" start_serve "$OV" "$T/serve1.log"
check "it says where flag changes are kept" grep -q "flag changes are kept here (0 changes" "$T/serve1.log"

# bob: set, clear, a new keyword, BODY[] of an unseen message; EXAMINE
# stays read-only; EXPUNGE is refused.  Prints the UIDs it changed.
$PY - "$SP" >"$T/bob-changes" 2>"$T/bob-changes.err" <<'EOF'
import os, re, sys
sys.path.insert(0, os.environ['TOOLS'])
from imapdump import ImapClient
c = ImapClient('127.0.0.1', int(sys.argv[1]))
c.login('bob@example.test', 'pw')
st, text, _ = c.command('EXAMINE INBOX')
assert '[READ-ONLY]' in text, text
st, _, _ = c.command('UID STORE 1:* +FLAGS (\\Flagged)', check=False)
assert st == 'NO', st
st, text, _ = c.command('SELECT INBOX')
assert '[READ-WRITE]' in text, text
def uids(crit):
    _, _, unt = c.command('UID SEARCH ' + crit)
    for u in unt:
        if u.startswith(b'SEARCH'):
            return [int(x) for x in u.split()[1:]]
    return []
seen, unseen = uids('SEEN'), uids('UNSEEN')
assert len(seen) >= 3 and len(unseen) >= 2, (seen, unseen)
c.command('UID STORE %d -FLAGS (\\Seen)' % seen[0])
c.command('UID STORE %d +FLAGS (\\Flagged \\Answered $Todo)' % seen[1])
c.command('UID STORE %d FLAGS (\\Seen Later)' % seen[2])
_, _, unt = c.command('UID FETCH %d (BODY[])' % unseen[0])
assert any(b'\\Seen' in u for u in unt), unt
st, _, _ = c.command('EXPUNGE', check=False)
assert st == 'NO', st
print(seen[0], seen[1], seen[2], unseen[0])
c.logout()
EOF
expect_eq "bob's flag changes are taken (and EXAMINE, EXPUNGE refused)" "$?" 0
read -r B_UNSEEN B_FLAGGED B_LATER B_READ <"$T/bob-changes" || true

# alice flags a message in her mirror: mbsync pushes it
f=$(find "$T/mirror/INBOX/cur" -type f -name '*:2,S' | sort | head -1)
check "alice's mirror has a seen message to flag" test -n "$f"
mv "$f" "${f%:2,S}:2,FS"
check "mbsync pushes alice's flag to serve-imap" mbsync_run "$SP"
check_fails "mbsync reports no UIDVALIDITY change" grep -qi uidvalidity "$T/mbsync.out"
manifest >"$T/manifest1"
for a in $ACCTS; do
	check "$a: serve-imap's view with the changes" \
		$PY "$TOOLS/imapdump.py" -o "$T/sv-$a.json" 127.0.0.1 "$SP" "$a" pw
done
check "bob's view shows the changed flags" $PY - "$T/sv-bob@example.test.json" "$B_UNSEEN" "$B_FLAGGED" "$B_LATER" "$B_READ" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
msgs = {m['uid']: m for m in d['folders']['INBOX']['messages']}
un, fl, la, rd = map(int, sys.argv[2:])
assert '\\Seen' not in msgs[un]['flags'], msgs[un]
assert {'\\Flagged', '\\Answered', '$Todo'} <= set(msgs[fl]['flags']), msgs[fl]
assert sorted(msgs[la]['flags']) == ['Later', '\\Seen'], msgs[la]
assert '\\Seen' in msgs[rd]['flags'], msgs[rd]
EOF
check "the keeper logs nothing alarming" bash -c "! grep -E 'error|broke' '$T/serve1.log'"

# ---- killed, started again: everything still there
kill -9 "$SERVE"; wait "$SERVE" 2>/dev/null
check "serve-imap starts again on the same overlay" start_serve "$OV" "$T/serve2.log"
check "it counts the changes kept" grep -Eq "flag changes are kept here \([1-9][0-9]* changes" "$T/serve2.log"
for a in $ACCTS; do
	$PY "$TOOLS/imapdump.py" -o "$T/sv2-$a.json" 127.0.0.1 "$SP" "$a" pw
	check "$a: after SIGKILL and restart, serve-imap serves the same flags" \
		$PY "$TOOLS/imapdump.py" --compare "$T/sv-$a.json" "$T/sv2-$a.json"
done
$PY - "$SP" >"$T/hms-serve.json" <<'EOF'
import json, os, sys
sys.path.insert(0, os.environ['TOOLS'])
from imapdump import ImapClient
out = {}
for user in ('alice@example.test', 'bob@example.test'):
    c = ImapClient('127.0.0.1', int(sys.argv[1]))
    c.login(user, 'pw')
    c.command('ENABLE CONDSTORE')
    out[user] = {}
    for raw, _, attrs in c.list():
        if any(a.lower() in ('\\noselect', '\\nonexistent') for a in attrs):
            continue
        out[user][bytes(raw).decode('latin-1')] = c.select(bytes(raw)).get('highestmodseq', 0)
    c.logout()
print(json.dumps(out))
EOF
check "serve-imap's HIGHESTMODSEQs recorded" test -s "$T/hms-serve.json"
check_fails "a second serve-imap on the same overlay is refused" \
	"$ARCA" serve-imap --repo "$R" --restore-key "$T/rk" --listen "127.0.0.1:$(free_port)" \
	--users "$T/users" --overlay "$OV"
kill "$SERVE"; wait "$SERVE" 2>/dev/null; SERVE=""

# ---- killed while a change is written (before, between write and sync),
# or the sync fails: every change answered OK is still there after a
# restart, and the file opens
storer() {  # PORT OUT: UID STORE +FLAGS (\Answered) on bob's seen mail, one at a time; acknowledged UIDs to OUT
	$PY - "$1" >"$2" 2>/dev/null <<'EOF'
import os, sys
sys.path.insert(0, os.environ['TOOLS'])
from imapdump import ImapClient
c = ImapClient('127.0.0.1', int(sys.argv[1]))
c.login('bob@example.test', 'pw')
c.command('SELECT INBOX')
_, _, unt = c.command('UID SEARCH UNANSWERED')
uids = [int(x) for u in unt if u.startswith(b'SEARCH') for x in u.split()[1:]][:6]
for u in uids:
    try:
        st, _, _ = c.command('UID STORE %d +FLAGS.SILENT (\\Answered)' % u, check=False)
    except Exception:
        break
    if st == 'OK':
        print(u, flush=True)
EOF
}
answered() {  # PORT: bob's INBOX UIDs with \Answered
	$PY - "$1" <<'EOF'
import os, re, sys
sys.path.insert(0, os.environ['TOOLS'])
from imapdump import ImapClient
c = ImapClient('127.0.0.1', int(sys.argv[1]))
c.login('bob@example.test', 'pw')
c.command('EXAMINE INBOX')
_, _, unt = c.command('UID SEARCH ANSWERED')
print(' '.join(x.decode() for u in unt if u.startswith(b'SEARCH') for x in u.split()[1:]))
EOF
}
# (the crash points counted include the log's writes: the kills land
# before, inside and after different changes)
for fault in crash:3 crash:4 crash:5 crash:6 crash:8 fsync:1 fsync:2; do
	cp "$OV" "$T/ov-fault"
	ARCA_FAULT=$fault "$ARCA" serve-imap --repo "$R" --restore-key "$T/rk" --listen "127.0.0.1:$SP" \
		--users "$T/users" --overlay "$T/ov-fault" >"$T/fault.log" 2>&1 &
	SERVE=$!
	wait_port "$SP"
	storer "$SP" "$T/acked"
	if [ "${fault%%:*}" = crash ]; then
		for i in $(seq 50); do kill -0 "$SERVE" 2>/dev/null || break; sleep 0.1; done
		crashed=yes
		kill -9 "$SERVE" 2>/dev/null && crashed="no: still running, killed by the test"
		wait "$SERVE" 2>/dev/null
		expect_eq "$fault: serve-imap killed itself at the crash point" "$crashed" yes
	else
		check "$fault: the failed sync is logged" grep -q "a flag change was not kept" "$T/fault.log"
		kill "$SERVE"; wait "$SERVE" 2>/dev/null
	fi
	SERVE=""
	check "$fault: serve-imap starts again on that overlay" start_serve "$T/ov-fault" "$T/fault2.log"
	have=" $(answered "$SP") "
	lost=""
	while read -r u; do case $have in *" $u "*) ;; *) lost="$lost $u";; esac; done <"$T/acked"
	expect_eq "$fault: every change answered OK is kept ($(wc -l <"$T/acked") answered)" "$lost" ""
	kill "$SERVE"; wait "$SERVE" 2>/dev/null; SERVE=""
done

# an altered overlay (a byte of its first record) is refused, naming why
cp "$OV" "$T/overlay.bad"
printf 'X' | dd of="$T/overlay.bad" bs=1 seek=80 conv=notrunc status=none
"$ARCA" serve-imap --repo "$R" --restore-key "$T/rk" --listen "127.0.0.1:$(free_port)" \
	--users "$T/users" --overlay "$T/overlay.bad" >"$T/bad.out" 2>&1
expect_eq "serve-imap refuses an altered overlay" "$?" 1
check "... saying it fails authentication" grep -q "record 0 at offset 64 fails authentication" "$T/bad.out"
# arca overlay: what the restore will carry
"$ARCA" overlay --repo "$R" --restore-key "$T/rk" --json "$OV" >"$T/ovshow.json" 2>"$T/ovshow.err"
expect_eq "arca overlay lists the kept changes" "$?" 0
check "... bob's INBOX with the 4 messages changed, alice's with the one she flagged" \
	$PY - "$T/ovshow.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
f = {(x['account'], x['folder']): x for x in d['folders']}
assert f[('bob@example.test', 'INBOX')]['messages'] == 4, f
assert f[('alice@example.test', 'INBOX')]['messages'] == 1, f
assert d['records'] >= 5, d
EOF
"$ARCA" overlay --repo "$R" --restore-key "$T/rk" --account alice@example.test "$OV" >"$T/ovshow.txt" 2>&1
check "... --account: that account's folders only" bash -c "grep -q '^alice@example.test ' '$T/ovshow.txt' && ! grep -q '^bob@' '$T/ovshow.txt'"
check_fails "arca overlay refuses the altered file" "$ARCA" overlay --repo "$R" --restore-key "$T/rk" "$T/overlay.bad"
check_fails "restore refuses it too" "$ARCA" restore maildir --repo "$R" --restore-key "$T/rk" \
	--account bob@example.test --overlay "$T/overlay.bad" "$T/bad-restore"
check "... and writes nothing" test ! -e "$T/bad-restore"

# ---- the rebuilt server gets the vault and the overlay
dovecot_start "$T/dc2" maildirpp >/dev/null || { echo "not ok - the rebuilt dovecot starts"; exit 1; }
read -r OWN_UID OWN_GID < <(_dovecot_mail_owner)
"$ARCA" restore dovecot --repo "$R" --restore-key "$T/rk" --all \
	--maildir "$DOVECOT_MAIL_ROOT/%d/%n/Maildir" --owner "$OWN_UID:$OWN_GID" \
	--doveadm "doveadm -c $DOVECOT_CONF" --overlay "$OV" >"$T/restore.out" 2>&1
expect_eq "arca restore dovecot --overlay" "$?" 0
check "the restore says how many messages got the overlay's flags" \
	grep -Eq "bob@example.test: overlay: [1-9][0-9]* messages with the flags users set through serve-imap" "$T/restore.out"
for a in $ACCTS; do
	$PY "$TOOLS/imapdump.py" -o "$T/dc2-$a.json" 127.0.0.1 "$DOVECOT_IMAP_PORT" "$a*admin" masterpw
	check "$a: the rebuilt Dovecot serves what serve-imap served (flags, keywords, UIDs, bytes)" \
		$PY "$TOOLS/imapdump.py" --compare "$T/sv-$a.json" "$T/dc2-$a.json"
done
check "no folder's HIGHESTMODSEQ went below what serve-imap served" \
	$PY - "$T/hms-serve.json" "$DOVECOT_IMAP_PORT" <<'EOF'
import json, os, sys
sys.path.insert(0, os.environ['TOOLS'])
from imapdump import ImapClient
served = json.load(open(sys.argv[1]))
for user, folders in served.items():
    c = ImapClient('127.0.0.1', int(sys.argv[2]))
    c.login(user + '*admin', 'masterpw')
    c.command('ENABLE CONDSTORE')
    for name, h in folders.items():
        now = c.select(name.encode('latin-1')).get('highestmodseq', 0)
        assert now >= h, (user, name, now, h)
    c.logout()
EOF
# restore imap --overlay: bob's mail into carol's empty account, over IMAP
"$ARCA" restore imap --repo "$R" --restore-key "$T/rk" --host 127.0.0.1 --port "$DOVECOT_IMAP_PORT" \
	--master-user admin --password-file "$T/masterpw" --account bob@example.test \
	--to-account carol@other.test --overlay "$OV" --json >"$T/rimap.out" 2>"$T/rimap.err"
expect_eq "arca restore imap --overlay" "$?" 0
check "its report counts the messages given serve-imap's flags" grep -Eq '"overlay_messages":[1-9]' "$T/rimap.out"
$PY "$TOOLS/imapdump.py" -o "$T/carol.json" 127.0.0.1 "$DOVECOT_IMAP_PORT" "carol@other.test*admin" masterpw
check "every message restored over IMAP has the flags serve-imap served" \
	$PY - "$T/sv-bob@example.test.json" "$T/carol.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def view(d):
    out = {}
    for name, f in d['folders'].items():
        out[name] = sorted((m['sha256'], tuple(sorted(m['flags']))) for m in f.get('messages', []))
    return out
va, vb = view(a), view(b)
assert va == vb, [n for n in va if va[n] != vb.get(n)]
EOF
check "mbsync, pointed back at Dovecot, syncs" mbsync_run "$DOVECOT_IMAP_PORT"
check_fails "mbsync reports no UIDVALIDITY change" grep -qi uidvalidity "$T/mbsync.out"
manifest >"$T/manifest2"
check "alice's mirror is unchanged (the pushed flag is on Dovecot: nothing to undo)" \
	diff "$T/manifest1" "$T/manifest2"
dovecot_stop "$T/dc2"

# ---- restore maildir --overlay: the flags in the file names
check "arca restore maildir --overlay" "$ARCA" restore maildir --repo "$R" --restore-key "$T/rk" \
	--account bob@example.test --overlay "$OV" "$T/bob-maildir"
check "bob's changed messages have their flags in the file names" \
	$PY - "$T/bob-maildir" "$B_UNSEEN" "$B_FLAGGED" "$B_LATER" "$B_READ" <<'EOF'
import os, sys
d = sys.argv[1]
un, fl, la, rd = map(int, sys.argv[2:])
kw = [l.split(' ', 1)[1].strip() for l in open(os.path.join(d, 'dovecot-keywords'))]
def letter(name):
    return chr(ord('a') + kw.index(name))
base = {}
for line in open(os.path.join(d, 'dovecot-uidlist')).read().splitlines()[1:]:
    uid, rest = line.split(' ', 1)
    base[int(uid)] = rest.rsplit(':', 1)[1]
files = os.listdir(os.path.join(d, 'cur')) + os.listdir(os.path.join(d, 'new'))
def info(uid):
    hits = [f for f in files if f.split(':2,')[0] == base[uid]]
    assert len(hits) == 1, (uid, hits)
    return hits[0].split(':2,')[1] if ':2,' in hits[0] else ''
assert 'S' not in info(un), info(un)
assert {'F', 'R', 'S', letter('$Todo')} <= set(info(fl)), info(fl)
assert set(info(la)) == {'S', letter('Later')}, info(la)
assert 'S' in info(rd), info(rd)
EOF
test_done
