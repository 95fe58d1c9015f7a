#!/bin/bash
# Issue 5, "Restore into a mail server" on a real Dovecot that keeps running:
# 3 accounts filled with real corpus mail (folders, flags, keywords,
# subscriptions, a Sieve script over ManageSieve), MODSEQs raised by flag
# changes, pulled with `arca pull imap`; then the mail store is wiped and
#  (a) `arca restore dovecot --all` gives back the very IMAP view (UIDVALIDITY,
#      UIDs, flags, keywords, dates, bytes), HIGHESTMODSEQ >= before, Sieve
#      active again;
#  (a2)-(a4) staging: a stale stage, a stage held by another run, a
#      restore killed at many points, a Maildir appearing before the move;
#  (b) wiped again and new mail delivered (INBOX recreated with a new
#      UIDVALIDITY, plus a copy of an old message saved again): the restore
#      brings the old UIDVALIDITY and UIDs back, keeps the new mail after
#      them, never duplicates; a second run changes nothing; (b3) that merge
#      killed at many points: the new mail stays served, the re-run completes;
#  (c) --new-uidvalidity on another account;
#  (d) --folder with --account restores one folder;
#  (e) bad input fails clearly and loses nothing;
#  (f) the doveadm calls: one process for the accounts moved in together,
#      from a Maildir-ingest snapshot; when it and the batch fail, folder by
#      folder, still complete.
set -u
. "$(dirname "$0")/../lib/common.sh"
. "$ARCA_ROOT/tests/lib/dovecot.sh"
. "$ARCA_ROOT/tests/lib/corpus.sh"
PY=/usr/bin/python3
TOOLS=$ARCA_ROOT/tests/tools
export ARCA_PASSPHRASE=rdov-pass ARCA_TEST_FAST_KDF=1
T=$(test_tmpdir rdov)
ACCTS="alice@example.test bob@example.test carol@other.test"
CORPUS=$(corpus_dir) || { echo "not ok - corpus available"; exit 1; }
A=alice@example.test B=bob@example.test C=carol@other.test

D=$T/dc
dovecot_start "$D" maildirpp >/dev/null || { echo "not ok - dovecot starts"; exit 1; }
trap 'dovecot_stop "$D" >/dev/null 2>&1; _test_cleanup' EXIT
R=$T/repo
"$ARCA" init --repo "$R" --restore-key "$T/rk" >/dev/null
DOVEADM="doveadm -c $DOVECOT_CONF"
OWNER=$DOVECOT_MAIL_UID:$DOVECOT_MAIL_GID
PATTERN=$DOVECOT_MAIL_ROOT/%d/%n/Maildir
echo masterpw >"$T/masterpw"
printf '%s\n' $ACCTS >"$T/accounts"

step() { $PY "$TOOLS/imapstep.py" --port "$DOVECOT_IMAP_PORT" --user "$1*admin" --password masterpw "${@:2}"; }
dump() {  # TAG ACCOUNT
	$PY "$TOOLS/imapdump.py" -o "$T/$1-$2.json" 127.0.0.1 "$DOVECOT_IMAP_PORT" "$2*admin" masterpw
}
dump_all() { local a; for a in $ACCTS; do dump "$1" "$a" || return 1; done; }
hms() {  # ACCOUNT: "FOLDER HIGHESTMODSEQ" lines, sorted
	doveadm -c "$DOVECOT_CONF" -f flow mailbox status -u "$1" highestmodseq '*' |
		sed 's/ highestmodseq=/\t/' | sort
}
restore() {  # args...: output in $T/out, stderr in $T/err, status kept
	"$ARCA" restore dovecot --repo "$R" --restore-key "$T/rk" --maildir "$PATTERN" \
		--owner "$OWNER" --doveadm "$DOVEADM" "$@" >"$T/out" 2>"$T/err"
}
wipe() {  # the attack: the whole mail store is gone; the rebuilt one is empty
	rm -rf "$DOVECOT_MAIL_ROOT"
	mkdir -p "$DOVECOT_MAIL_ROOT"
	chown "$OWNER" "$DOVECOT_MAIL_ROOT"
}
jq1() { $PY -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$3"; }

check "populate 3 accounts (real mail, folders, flags, keywords, subscriptions, Sieve)" \
	$PY "$TOOLS/populate.py" --host 127.0.0.1 --imap-port "$DOVECOT_IMAP_PORT" \
	--lmtp-port "$DOVECOT_LMTP_PORT" --sieve-port "$DOVECOT_SIEVE_PORT" \
	--master-user admin --master-password masterpw \
	--accounts "${ACCTS// /,}" --messages-dir "$CORPUS" --count 30 --seed 11
# flag changes raise MODSEQs well above the message count
for i in 1 2 3; do
	step "$A" flags INBOX 0.5 "m$i" '\Flagged' 'custom_kw' >/dev/null
	step "$A" unflag INBOX 0.5 "u$i" '\Flagged' >/dev/null
	step "$B" flags INBOX 0.4 "b$i" '\Seen' '$Work' >/dev/null
	step "$B" unflag INBOX 0.4 "c$i" '\Seen' >/dev/null
done
check "pull the 3 accounts (MODSEQs, Sieve)" \
	"$ARCA" pull imap --repo "$R" --host 127.0.0.1 --port "$DOVECOT_IMAP_PORT" \
	--master-user admin --password-file "$T/masterpw" --accounts-from "$T/accounts" \
	--sieve-port "$DOVECOT_SIEVE_PORT"
check "dump the IMAP view before" dump_all before
for a in $ACCTS; do hms "$a" >"$T/hms-before-$a"; done
sieve_before=$(doveadm -c "$DOVECOT_CONF" sieve list -u "$A")
hi=$(sort -t"$(printf '\t')" -k2 -n "$T/hms-before-$A" | tail -1 | cut -f2)
if [ "${hi:-0}" -gt 40 ]; then echo "ok - alice's HIGHESTMODSEQ raised by flag changes ($hi)"; else echo "not ok - alice's HIGHESTMODSEQ is only ${hi:-?}"; _test_failed=1; fi

# ---- (a) the whole store wiped; Dovecot keeps running
wipe
restore --all
expect_eq "(a) restore dovecot --all exits 0" "$?" 0
cat "$T/err" >&2
check "(a) every INBOX is reported written exactly" \
	test "$(grep -c ': INBOX: written exactly: UIDVALIDITY' "$T/out")" -eq 3
check "(a) Dovecot's status is checked per folder" grep -q "INBOX: Dovecot serves UIDVALIDITY" "$T/out"
check "(a) dump after" dump_all after-a
for a in $ACCTS; do
	check "(a) $a: IMAP view equals the one before (UIDVALIDITY, UIDs, flags, keywords, dates, bytes)" \
		$PY "$TOOLS/imapdump.py" --compare "$T/before-$a.json" "$T/after-a-$a.json"
	hms "$a" >"$T/hms-after-$a"
	check "(a) $a: HIGHESTMODSEQ of every folder >= before" \
		$PY - "$T/hms-before-$a" "$T/hms-after-$a" <<'PY'
import sys
def rd(p):
    return {l.split('\t')[0]: int(l.split('\t')[1]) for l in open(p) if '\t' in l}
b, a = rd(sys.argv[1]), rd(sys.argv[2])
bad = [(k, v, a.get(k)) for k, v in b.items() if a.get(k) is None or a[k] < v]
if bad:
    print('went backwards:', bad); sys.exit(1)
PY
done
expect_eq "(a) alice's Sieve scripts back, the same one active" \
	"$(doveadm -c "$DOVECOT_CONF" sieve list -u "$A")" "$sieve_before"
check "(a) the report says how Sieve went in" grep -q "alice@example.test: Sieve: 1 scripts put with doveadm sieve put" "$T/out"
check "(a) each new Maildir was staged next to its place, then moved in" \
	test "$(grep -c 'new: staged next to it' "$T/out")" -eq 3
check "(a) no staging directory is left" \
	test -z "$(find "$DOVECOT_MAIL_ROOT" -maxdepth 4 -name '*.arca-restore')"

# ---- (a2) a restore killed while staging left its directory: the next one
# removes it and restores all the same
wipe
stale=$DOVECOT_MAIL_ROOT/example.test/alice/Maildir.arca-restore
mkdir -p "$stale/cur" "$stale/.Junk/cur"
echo "half-written" >"$stale/cur/1.half"
: >"$stale/.arca-stage"   # the marker a stage is made with
chown -R "$OWNER" "$DOVECOT_MAIL_ROOT/example.test"
restore --account "$A"
expect_eq "(a2) restore over a stale staging directory exits 0" "$?" 0
cat "$T/err" >&2
check "(a2) the stale staging directory is gone" test ! -e "$stale"
check "(a2) dump after" dump a2 "$A"
check "(a2) alice's IMAP view equals the one before (nothing of the stale one)" \
	$PY "$TOOLS/imapdump.py" --compare "$T/before-$A.json" "$T/a2-$A.json"

# a stale stage is removed even when the Maildir exists by now (the re-run
# merges), and a stage another run holds is left alone
mkdir -p "$stale/cur"
: >"$stale/.arca-stage"
restore --account "$A"
expect_eq "(a2) restore with the Maildir there and a stale stage exits 0" "$?" 0
check "(a2) ... the stale stage is removed all the same" test ! -e "$stale"
check "(a2) ... and the folders are reported complete" grep -q "INBOX: already complete" "$T/out"
# a directory of that name without the marker is no stage (another
# account's Maildir, e.g. alice.arca-restore@ with --maildir .../%n): kept
mkdir -p "$stale/cur"
echo "mail of another account" >"$stale/cur/1.keep"
restore --account "$A"
expect_eq "(a2) restore next to a directory of the stage's name that is no stage exits 1" "$?" 1
check "(a2) ... says so" grep -q "is no staging directory of arca restore" "$T/err"
check "(a2) ... and leaves it as it was" test -s "$stale/cur/1.keep"
rm -rf "$stale"
flock "$stale.lock" sleep 5 &
lockpid=$!
sleep 0.3
restore --account "$A"
expect_eq "(a2) restore while another run holds the stage exits 1" "$?" 1
check "(a2) ... and says why" grep -q "another restore of this account is writing" "$T/err"
kill "$lockpid" 2>/dev/null; wait "$lockpid" 2>/dev/null
# a pattern with a trailing '/' stages and moves in the same way
wipe
"$ARCA" restore dovecot --repo "$R" --restore-key "$T/rk" --maildir "$PATTERN/" \
	--owner "$OWNER" --doveadm "$DOVEADM" --account "$A" >"$T/out" 2>"$T/err"
expect_eq "(a2) restore with --maildir PATTERN/ exits 0" "$?" 0
check "(a2) ... staged, moved in, nothing left beside it" \
	sh -c "grep -q 'new: staged next to it' '$T/out' && test -d '$DOVECOT_MAIL_ROOT/example.test/alice/Maildir/cur' && test ! -e '$stale' && test ! -e '$stale.lock'"

# ---- (a3) a staged restore killed at many points (ARCA_FAULT=crash:N: every
# write of a message or control file, the moments before and after the
# move into place): the Maildir is either absent or whole, and the next run
# completes it
killed=0 whole=0 absent=0 bad=0
for n in 1 4 9 16 25 36 49 64 81 100 121 144; do
	wipe
	ARCA_FAULT=crash:$n restore --account "$A"
	st=$?
	[ "$st" = 0 ] && break   # past the last crash point: it completed
	killed=$((killed + 1))
	md=$DOVECOT_MAIL_ROOT/example.test/alice/Maildir
	if [ ! -e "$md" ]; then
		absent=$((absent + 1))
	elif dump a3 "$A" >/dev/null 2>&1 && $PY "$TOOLS/imapdump.py" --compare "$T/before-$A.json" "$T/a3-$A.json" >/dev/null 2>&1; then
		whole=$((whole + 1))
	else
		bad=$((bad + 1))
		echo "# crash:$n left a Maildir that is neither absent nor whole"
	fi
	restore --account "$A"
	st=$?
	dump a3b "$A" >/dev/null 2>&1 && $PY "$TOOLS/imapdump.py" --compare "$T/before-$A.json" "$T/a3b-$A.json" >/dev/null 2>&1 ||
		{ bad=$((bad + 1)); echo "# after crash:$n the next restore (exit $st) did not give the view back"; }
	[ -e "$md.arca-restore" ] && { bad=$((bad + 1)); echo "# after crash:$n a staging directory is left"; }
done
echo "# staged restore killed $killed times: $absent left no Maildir, $whole a whole one"
check "(a3) killed at $killed points, never a half-restored Maildir, and the re-run completes" \
	test "$killed" -ge 5 -a "$bad" -eq 0 -a "$absent" -ge 1

# ---- (a4) mail arrives while the restore is staged: Dovecot makes the
# Maildir before the stage is moved in (ARCA_FAULT=stop:stage-move stops the
# restore there); the stage is dropped and the restore merges into it
wipe
ARCA_FAULT=stop:stage-move restore --account "$A" &
rpid=$!
stopped=""
for _ in $(seq 1 400); do
	for p in $(pgrep -f -- "--repo $R "); do
		[ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = T ] && stopped=$p
	done
	[ -n "$stopped" ] && break
	sleep 0.05
done
check "(a4) the restore stops with its stage written, before the move" test -n "$stopped"
check "(a4) a message delivered meanwhile makes the Maildir" \
	step "$A" deliver "$DOVECOT_LMTP_PORT" "$A" "during the restore" 1 a4
[ -n "$stopped" ] && kill -CONT "$stopped"
wait "$rpid"
expect_eq "(a4) the restore then exits 0" "$?" 0
cat "$T/err" >&2
check "(a4) it says the Maildir appeared and that it merges instead" \
	grep -q "alice@example.test: .* appeared while the restore was being written: merging into it instead" "$T/out"
check "(a4) no staging directory is left" test ! -e "$DOVECOT_MAIL_ROOT/example.test/alice/Maildir.arca-restore"
n_before=$(jq1 x 'len(d["folders"]["INBOX"]["messages"])' "$T/before-$A.json")
v_before=$(jq1 x 'd["folders"]["INBOX"]["uidvalidity"]' "$T/before-$A.json")
check "(a4) INBOX has its old UIDVALIDITY back, all its messages and the new one" \
	sh -c "doveadm -c '$DOVECOT_CONF' -f flow mailbox status -u '$A' 'uidvalidity messages' INBOX |
		grep -qx 'INBOX messages=$((n_before + 1)) uidvalidity=$v_before'"

# ---- (b) wiped again; new mail arrives before the restore
# one of alice's messages will arrive again, byte for byte (e.g. resent)
f1=$(ls "$DOVECOT_MAIL_ROOT/example.test/alice/Maildir/cur" | head -1)
cp "$DOVECOT_MAIL_ROOT/example.test/alice/Maildir/cur/$f1" "$T/one.eml"
one=$($PY - "$T/one.eml" "$T/before-$A.json" <<'PY'
import hashlib, json, sys
h = hashlib.sha256(open(sys.argv[1], 'rb').read().replace(b'\n', b'\r\n')).hexdigest()
print([m['uid'] for m in json.load(open(sys.argv[2]))['folders']['INBOX']['messages'] if m['sha256'] == h][0])
PY
)
wipe
step "$A" deliver "$DOVECOT_LMTP_PORT" "$A" "after the attack" 3 n1 >/dev/null
check "(b) the old message $one saved again into the new INBOX" \
	sh -c "doveadm -c '$DOVECOT_CONF' save -u '$A' <'$T/one.eml'"
check "(b) INBOX recreated by the deliveries" test -s "$DOVECOT_MAIL_ROOT/example.test/alice/Maildir/dovecot-uidlist"
vnew=$(doveadm -c "$DOVECOT_CONF" -f flow mailbox status -u "$A" uidvalidity INBOX | sed 's/.*uidvalidity=//')
vold=$(jq1 x 'd["folders"]["INBOX"]["uidvalidity"]' "$T/before-$A.json")
check "(b) the new INBOX has another UIDVALIDITY ($vnew, was $vold)" test "$vnew" != "$vold"
# a script of the same name as the snapshot's, with other bytes, inactive,
# made after the attack: it must be kept (doveadm sieve list prints
# "NAME " with a trailing space for an inactive script)
sname=$(printf '%s\n' "$sieve_before" | sed -n 's/ ACTIVE$//p' | head -1)
printf '# made after the attack\nkeep;\n' | doveadm -c "$DOVECOT_CONF" sieve put -u "$A" "$sname"
restore --account "$A"
expect_eq "(b) restore into the live, recreated INBOX exits 0" "$?" 0
check "(b) Sieve: the script of the same name made after the attack is kept" \
	sh -c "doveadm -c '$DOVECOT_CONF' sieve get -u '$A' '$sname' | grep -q 'made after the attack'"
check "(b) Sieve: the snapshot's goes in beside it as $sname-restored, active" \
	sh -c "grep -q 'another script named $sname: the snapshot.s goes in as $sname-restored' '$T/out' && doveadm -c '$DOVECOT_CONF' sieve list -u '$A' | grep -qx '$sname-restored ACTIVE'"
cat "$T/err" >&2
grep "INBOX: merged" "$T/out" | sed 's/^/# /'
check "(b) the message that arrived again is recognised by its bytes" \
	grep -q "INBOX: merged: .*1 recognised by their bytes" "$T/out"
check "(b) INBOX: the report names the path taken" \
	grep -q "INBOX: merged: UIDVALIDITY $vold restored (was $vnew after the rebuild)" "$T/out"
check "(b) dump after the merge" dump after-b "$A"
cat >"$T/mergecheck.py" <<'PY'
import json, sys, collections
b = json.load(open(sys.argv[1]))['folders']; a = json.load(open(sys.argv[2]))['folders']
err = []
for name, fb in b.items():
    fa = a.get(name)
    if fa is None:
        err.append('%s missing' % name); continue
    if fb.get('uidvalidity') != fa.get('uidvalidity'):
        err.append('%s: UIDVALIDITY %s != %s' % (name, fa.get('uidvalidity'), fb.get('uidvalidity')))
    mb = {m['uid']: m for m in fb.get('messages', [])}
    ma = {m['uid']: m for m in fa.get('messages', [])}
    for uid, m in mb.items():
        if name == 'INBOX' and uid == int(sys.argv[3]) and ma.get(uid, {}).get('sha256') == m['sha256']:
            continue   # the copy that arrived again: its own flags and date
        if ma.get(uid) != m:
            err.append('%s: UID %d differs or is gone' % (name, uid))
    extra = [m for u, m in ma.items() if u not in mb]
    if name == 'INBOX':
        if len(extra) != 3:
            err.append('INBOX: %d new messages kept, want 3' % len(extra))
        if any(m['uid'] < fb['uidnext'] for m in extra):
            err.append('INBOX: a new message is below the old UIDNEXT')
    elif extra:
        err.append('%s: %d unexpected messages' % (name, len(extra)))
    dup = [h for h, n in collections.Counter(m['sha256'] for m in fa.get('messages', [])).items() if n > 1]
    dupb = [h for h, n in collections.Counter(m['sha256'] for m in fb.get('messages', [])).items() if n > 1]
    if len(dup) > len(dupb):
        err.append('%s: duplicated messages' % name)
print('\n'.join(err)); sys.exit(1 if err else 0)
PY
check "(b) the old messages keep their UIDs, the new ones follow, none twice" \
	$PY "$T/mergecheck.py" "$T/before-$A.json" "$T/after-b-$A.json" "$one"
restore --account "$A"
expect_eq "(b) the same restore again exits 0" "$?" 0
check "(b) second run: every folder already complete, nothing added" \
	sh -c "! grep -E ': (merged|added|written exactly)' '$T/out' && grep -q 'INBOX: already complete' '$T/out'"
check "(b) second run: the Sieve script is found where it went" \
	grep -q "the snapshot.s is there already as $sname-restored" "$T/out"
# the user edits the restored copy: a third run keeps that too
printf '# edited after the restore\nkeep;\n' | doveadm -c "$DOVECOT_CONF" sieve put -u "$A" "$sname-restored"
restore --account "$A"
expect_eq "(b) a third run exits 0" "$?" 0
check "(b) ... the edited $sname-restored is kept" \
	sh -c "doveadm -c '$DOVECOT_CONF' sieve get -u '$A' '$sname-restored' | grep -q 'edited after the restore'"
check "(b) ... the snapshot's goes in as $sname-restored-2" \
	sh -c "grep -q 'goes in as $sname-restored-2' '$T/out' && doveadm -c '$DOVECOT_CONF' sieve list -u '$A' | grep -q '^$sname-restored-2'"
check "(b) dump after the second run" dump after-b2 "$A"
check "(b) second run changed nothing" $PY "$TOOLS/imapdump.py" --compare "$T/after-b-$A.json" "$T/after-b2-$A.json"

# ---- (b3) the merge into the live, recreated Maildir killed at many points
# (every message and control file written, every rename): the mail that
# arrived after the attack is served all along, and the next run completes
# the merge exactly as one uninterrupted run does
killed=0 bad=0
for n in ${B3_POINTS:-2 8 20 40 70 110 160 240 400}; do
	wipe
	step "$A" deliver "$DOVECOT_LMTP_PORT" "$A" "after the attack" 3 n1 >/dev/null
	doveadm -c "$DOVECOT_CONF" save -u "$A" <"$T/one.eml"
	ARCA_FAULT=crash:$n restore --account "$A" --no-sieve
	st=$?
	[ "$st" = 0 ] && break   # past the last crash point: it completed
	killed=$((killed + 1))
	got=$(doveadm -c "$DOVECOT_CONF" search -u "$A" mailbox INBOX header subject "after the attack" | wc -l)
	[ "$got" = 3 ] || { bad=$((bad + 1)); echo "# crash:$n: $got of the 3 new messages served"; }
	restore --account "$A" --no-sieve
	st=$?
	dump b3 "$A" >/dev/null 2>&1 && $PY "$T/mergecheck.py" "$T/before-$A.json" "$T/b3-$A.json" "$one" >"$T/b3.check" 2>&1 ||
		{ bad=$((bad + 1)); echo "# after crash:$n the re-run (exit $st) did not complete the merge: $(head -3 "$T/b3.check" | tr '\n' ' ')"; sed 's/^/# /' "$T/err" | head -5; }
done
echo "# merge killed $killed times"
check "(b3) merge killed at $killed points: the new mail always served, the re-run completes it" \
	test "$killed" -ge 4 -a "$bad" -eq 0

# ---- (c) --new-uidvalidity on bob
rm -rf "$DOVECOT_MAIL_ROOT/example.test/bob"
step "$B" deliver "$DOVECOT_LMTP_PORT" "$B" "new folder" 2 n2 >/dev/null
bnew=$(doveadm -c "$DOVECOT_CONF" -f flow mailbox status -u "$B" uidvalidity INBOX | sed 's/.*uidvalidity=//')
restore --account "$B" --new-uidvalidity
expect_eq "(c) restore --new-uidvalidity exits 0" "$?" 0
cat "$T/err" >&2
check "(c) INBOX: merged with the new UIDVALIDITY, said so" grep -q "INBOX: merged with a new UIDVALIDITY: $bnew kept" "$T/out"
check "(c) dump" dump after-c "$B"
check "(c) INBOX keeps UIDVALIDITY $bnew and UIDs 1-2; all old messages added after, once" \
	$PY - "$T/before-$B.json" "$T/after-c-$B.json" "$bnew" <<'PY'
import json, sys, collections
b = json.load(open(sys.argv[1]))['folders']['INBOX']; a = json.load(open(sys.argv[2]))['folders']['INBOX']
err = []
if a['uidvalidity'] != int(sys.argv[3]): err.append('uidvalidity %s' % a['uidvalidity'])
uids = sorted(m['uid'] for m in a['messages'])
if uids[:2] != [1, 2]: err.append('new mail not at 1-2: %s' % uids[:3])
hb = collections.Counter(m['sha256'] for m in b['messages'])
ha = collections.Counter(m['sha256'] for m in a['messages'] if m['uid'] > 2)
if hb != ha: err.append('old messages: %d restored, want %d (same bytes)' % (sum(ha.values()), sum(hb.values())))
fb = sorted((m['sha256'], m['flags'], m['internaldate']) for m in b['messages'])
fa = sorted((m['sha256'], m['flags'], m['internaldate']) for m in a['messages'] if m['uid'] > 2)
if fb != fa: err.append('flags or dates differ')
print('\n'.join(err)); sys.exit(1 if err else 0)
PY
restore --account "$B" --new-uidvalidity
check "(c) second run adds nothing" sh -c "grep -q 'INBOX: already complete' '$T/out' && ! grep -q 'merged' '$T/out'"

# ---- (d) one folder of one account (carol's store went with the wipe in (b))
restore --account "$C"
expect_eq "(d) carol restored" "$?" 0
rm -rf "$DOVECOT_MAIL_ROOT/other.test/carol/Maildir/.Junk"
restore --account "$C" --folder Junk
expect_eq "(d) restore --account carol --folder Junk exits 0" "$?" 0
check "(d) only Junk restored" sh -c "test \"\$(grep -cE '^carol@other.test: [^:]+: (written exactly|already complete|merged|added [0-9])' '$T/out')\" -eq 1 && grep -q 'carol@other.test: Junk: written exactly' '$T/out'"
check "(d) dump" dump after-d "$C"
check "(d) carol's view equals the one before" $PY "$TOOLS/imapdump.py" --compare "$T/before-$C.json" "$T/after-d-$C.json"

# ---- (e) bad input: clear errors, nothing lost
check "(e) dump before bad input" dump before-e "$A"
restore --account "$A" --maildir "$DOVECOT_MAIL_ROOT/all/Maildir"
rc=$?
check "(e) a pattern without %u/%n is refused" test "$rc" -ne 0 -a -n "$(grep 'must hold %u or %n' "$T/err")"
"$ARCA" restore dovecot --repo "$R" --restore-key "$T/no-such-key" --account "$A" --maildir "$PATTERN" >"$T/out" 2>"$T/err"
rc=$?
check "(e) a missing restore key is refused, naming it" test "$rc" -ne 0 -a -n "$(grep 'no-such-key' "$T/err")"
"$ARCA" restore dovecot --repo "$R" --restore-key "$T/rk" --account "$A" --maildir "$PATTERN" \
	--owner "$OWNER" --doveadm "/nonexistent/doveadm -c $DOVECOT_CONF" >"$T/out" 2>"$T/err"
rc=$?
check "(e) a doveadm that can't run is refused before anything is written" \
	test "$rc" -ne 0 -a -n "$(grep 'nothing was restored' "$T/err")"
"$ARCA" restore dovecot --repo "$R" --restore-key "$T/rk" --account "$A" --maildir "$PATTERN" \
	--owner "$OWNER" --doveadm "doveadm -c $T/no-such.conf" >"$T/out" 2>"$T/err"
rc=$?
check "(e) doveadm failing: the error carries doveadm's own words" \
	test "$rc" -ne 0 -a -n "$(grep 'no-such.conf' "$T/err")"
restore --account nobody@example.test
check "(e) an account without a snapshot is refused" test "$?" -ne 0
check "(e) dump after bad input" dump after-e "$A"
check "(e) nothing of alice's was lost or changed" $PY "$TOOLS/imapdump.py" --compare "$T/before-e-$A.json" "$T/after-e-$A.json"
restore --account "$A" --dry-run
check "(e) --dry-run says per folder what would be done" grep -q "dry run, nothing written: INBOX: already complete" "$T/out"
# accounts the pattern would put in one directory: neither, the others yes
"$ARCA" init --repo "$T/repo3" --restore-key "$T/rk3" >/dev/null
mkdir -p "$T/m3/cur" "$T/m3/new" "$T/m3/tmp"
printf 'From: x@example.test\nSubject: one\nMessage-ID: <one@x.test>\n\nbody\n' >"$T/m3/cur/1700000000.M1P1.h,S=60:2,S"
for a in dup@a.test dup@b.test solo@a.test bob@s.test bob.arca-restore@s.test; do
	"$ARCA" ingest maildir --repo "$T/repo3" --account "$a" --quiet "$T/m3" || echo "# ingest $a failed"
done
"$ARCA" restore dovecot --repo "$T/repo3" --restore-key "$T/rk3" --all --maildir "$T/r3/%n/Maildir" >"$T/out" 2>"$T/err"
rc=$?
check "(e) two accounts in one Maildir (%n alone): refused, saying so" \
	test "$rc" -ne 0 -a -n "$(grep 'dup@a.test and dup@b.test would both be restored into .*/r3/dup/Maildir' "$T/err")"
check "(e) ... nothing written for them, the other accounts restored" \
	test ! -e "$T/r3/dup" -a -d "$T/r3/solo/Maildir/cur" -a -d "$T/r3/bob/Maildir/cur"
"$ARCA" restore dovecot --repo "$T/repo3" --restore-key "$T/rk3" --all --maildir "$T/r4/%d/%n" >"$T/out" 2>"$T/err"
rc=$?
check "(e) a Maildir named as another account's stage: both refused" \
	test "$rc" -ne 0 -a -n "$(grep 'Maildir of bob.arca-restore@s.test .* has the name of the staging directory of bob@s.test' "$T/err")"
check "(e) ... nothing written for them, the other accounts restored" \
	test ! -e "$T/r4/s.test/bob" -a ! -e "$T/r4/s.test/bob.arca-restore" -a -d "$T/r4/a.test/dup/cur"
"$ARCA" restore maildir --repo "$T/repo3" --restore-key "$T/rk3" --pattern "$T/r5/%n" >"$T/out" 2>"$T/err"
rc=$?
check "(e) restore maildir --pattern refuses the same two, restores the others" \
	test "$rc" -ne 0 -a -n "$(grep 'dup@a.test and dup@b.test would both be restored into' "$T/err")" -a ! -e "$T/r5/dup" -a -d "$T/r5/solo/cur"
ARCA_FAULT=fsync:1 "$ARCA" restore maildir --repo "$T/repo3" --restore-key "$T/rk3" --pattern "$T/r6/%d/%n" >"$T/out" 2>"$T/err"
rc=$?
check "(e) restore maildir --pattern: a failing syncfs fails the run, saying so" \
	test "$rc" -ne 0 -a -n "$(grep 'syncfs of the file system holding .*r6/.* failed' "$T/err")"

# ---- (f) how many doveadm processes: a wrapper logs each call
cat >"$T/dvwrap" <<EOF
#!/bin/sh
echo "\$*" >>"$T/dvcalls"
case " \$* " in
*" batch "*) if [ -n "\${DV_FAIL_BATCH:-}" ]; then echo "batch refused by the test" >&2; exit 75; fi ;;
*" mailbox status -F "*)
	# the status of many accounts in one process: then each asks alone
	if [ -n "\${DV_FAIL_BATCH:-}" ]; then echo "status refused by the test" >&2; exit 75; fi ;;
*" mailbox status "*)
	# the account's first status call too: then it has no one-process way left
	if [ -n "\${DV_FAIL_BATCH:-}" ] && [ ! -e "$T/dvstatus-failed" ]; then
		: >"$T/dvstatus-failed"; echo "status refused by the test" >&2; exit 75
	fi ;;
esac
exec doveadm "\$@"
EOF
chmod +x "$T/dvwrap"
dvrestore() {  # REPO args...
	: >"$T/dvcalls"
	"$ARCA" restore dovecot --repo "$1" --restore-key "$T/rk2" --maildir "$PATTERN" \
		--owner "$OWNER" --doveadm "$T/dvwrap -c $DOVECOT_CONF" "${@:2}" >"$T/out" 2>"$T/err"
}
# a snapshot from a Maildir ingest (no MODSEQ) of carol's restored Maildir
check "(f) dump carol before" dump before-f "$C"
"$ARCA" init --repo "$T/repo2" --restore-key "$T/rk2" >/dev/null
check "(f) ingest carol's Maildir" "$ARCA" ingest maildir --repo "$T/repo2" --account "$C" --quiet \
	"$DOVECOT_MAIL_ROOT/other.test/carol/Maildir"
rm -rf "$DOVECOT_MAIL_ROOT/other.test/carol/Maildir"
dvrestore "$T/repo2" --account "$C"
expect_eq "(f) restore from a Maildir ingest exits 0" "$?" 0
cat "$T/err" >&2
sed 's/^/# doveadm /' "$T/dvcalls"
# every folder written into an absent directory: no index of an earlier life,
# so no force-resync (it reads every message file); one mailbox status, for
# the accounts moved in together (users on stdin: -F -)
check "(f) one doveadm process for the account (+ the config check), not per folder" \
	test "$(wc -l <"$T/dvcalls")" -eq 2 -a "$(grep -c ' mailbox status -F - ' "$T/dvcalls")" -eq 1 \
	-a "$(grep -c 'force-resync' "$T/dvcalls")" -eq 0
check "(f) every folder checked" test "$(grep -c 'carol@other.test: .*: Dovecot serves UIDVALIDITY' "$T/out")" -ge 3
check "(f) dump after" dump after-f "$C"
check "(f) carol's view equals the one before" $PY "$TOOLS/imapdump.py" --compare "$T/before-f-$C.json" "$T/after-f-$C.json"
# the batch refused: every folder alone, each checked; the restore still completes
rm -rf "$DOVECOT_MAIL_ROOT/other.test/carol/Maildir"
rm -f "$T/dvstatus-failed"
DV_FAIL_BATCH=1 dvrestore "$T/repo2" --account "$C"
expect_eq "(f) with the batch failing, the restore still completes (exit 0)" "$?" 0
check "(f) ... the batch's failure is said, with doveadm's words" \
	grep -q "in one doveadm batch failed: .*batch refused by the test" "$T/err"
check "(f) ... then force-resync and update per folder" \
	test "$(grep -c ' force-resync -u carol@other.test ' "$T/dvcalls")" -ge 3 -a "$(grep -c ' mailbox update -u carol@other.test ' "$T/dvcalls")" -ge 3
check "(f) ... and every folder checked" test "$(grep -c 'carol@other.test: .*: Dovecot serves UIDVALIDITY' "$T/out")" -ge 3
check "(f) dump after the fallback" dump after-f2 "$C"
check "(f) carol's view equals the one before" $PY "$TOOLS/imapdump.py" --compare "$T/before-f-$C.json" "$T/after-f2-$C.json"

# ---- (g) dovecot-uidlist records that name their file whole (as other tools
# write them; Dovecot 2.3 writes the base) come back as the snapshot had them
$PY "$TOOLS/mkmaildir.py" "$T/named" --messages 60 --seed 5 --big 0
"$ARCA" init --repo "$T/repo3" --restore-key "$T/rk3" >/dev/null
check "(g) ingest a Maildir whose uidlists name some files whole" \
	"$ARCA" ingest maildir --repo "$T/repo3" --account "$C" --quiet "$T/named"
rm -rf "$DOVECOT_MAIL_ROOT/other.test/carol/Maildir"
"$ARCA" restore dovecot --repo "$T/repo3" --restore-key "$T/rk3" --maildir "$PATTERN" \
	--owner "$OWNER" --doveadm "$DOVEADM" --account "$C" >"$T/out" 2>"$T/err"
expect_eq "(g) restore dovecot exits 0" "$?" 0
cat "$T/err" >&2
check "(g) every record comes back as the source had it (whole names included)" $PY - \
	"$T/named" "$DOVECOT_MAIL_ROOT/other.test/carol/Maildir" <<'EOF'
import os, sys
src, dst = sys.argv[1], sys.argv[2]
named = 0
for d, dirs, files in os.walk(src):
    if 'dovecot-uidlist' not in files:
        continue
    rel = os.path.relpath(d, src)
    want = open(os.path.join(d, 'dovecot-uidlist')).read().splitlines()[1:]
    got = open(os.path.join(dst, rel, 'dovecot-uidlist')).read().splitlines()[1:]
    named += sum(1 for r in want if ':' in r.split(' :', 1)[1])
    # every record as it was; more only for files the source had not
    # numbered yet (Dovecot numbers them)
    assert all(r in got for r in want), (rel, [r for r in want if r not in got][:3])
    listed = {r.split(' :', 1)[1].split(':')[0] for r in want}
    extra = [r for r in got if r not in want]
    assert all(r.split(' :', 1)[1].split(':')[0] not in listed for r in extra), (rel, extra[:3])
assert named >= 4, named
print(named, 'whole-name records')
EOF
test_done
