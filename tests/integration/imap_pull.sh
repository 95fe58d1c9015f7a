#!/bin/bash
# Issue 4 end to end on a real Dovecot: accounts filled by LMTP (Sieve files
# some mail into a folder), then flags and keywords changed over IMAP,
# folders renamed, moved into and deleted, mail expunged, a folder
# recreated (new UIDVALIDITY); `arca pull imap` after each step, its IMAP
# view dumped.  Then every step's snapshot is restored into a wiped Dovecot
# and its IMAP view compared with what Dovecot showed at that step.  A mass
# deletion raises an alarm (exit 5, arca status, hook, suspect snapshot);
# an interrupted pull leaves no partial snapshot and the re-run completes.
set -u
. "$(dirname "$0")/../lib/common.sh"
. "$ARCA_ROOT/tests/lib/dovecot.sh"
. "$ARCA_ROOT/tests/lib/corpus.sh"
PY=/usr/bin/python3
TOOLS=$ARCA_ROOT/tests/tools
export ARCA_PASSPHRASE=pull-pass ARCA_TEST_FAST_KDF=1
T=$(test_tmpdir pull)
ACCTS="alice@example.test bob@example.test carol@other.test"
CORPUS=$(corpus_dir) || { echo "not ok - corpus available"; exit 1; }
STEPS="0 1 2 3"

step() { $PY "$TOOLS/imapstep.py" --port "$DOVECOT_IMAP_PORT" --user "$1*admin" --password masterpw "${@:2}"; }
dump_all() {  # TAG
	local a
	for a in $ACCTS; do
		$PY "$TOOLS/imapdump.py" -o "$T/$1-$a.json" 127.0.0.1 "$DOVECOT_IMAP_PORT" "$a*admin" masterpw || return 1
	done
}
pull() {  # extra args...; output in $T/pull.json, exit status kept
	"$ARCA" pull imap --repo "$R" --host 127.0.0.1 --port "$DOVECOT_IMAP_PORT" \
		--master-user admin --password-file "$T/masterpw" --accounts-from "$T/accounts" \
		--sieve-port "$DOVECOT_SIEVE_PORT" --json "$@" >"$T/pull.json" 2>"$T/pull.err"
}
field() {  # ACCOUNT KEY: a number from the last pull's JSON line of ACCOUNT
	$PY -c 'import json,sys
for l in open(sys.argv[1]):
    o=json.loads(l)
    if o["account"]==sys.argv[2]: print(o[sys.argv[3]])' "$T/pull.json" "$1" "$2"
}
latest() {  # ACCOUNT: id of its newest snapshot
	"$ARCA" snapshots --repo "$R" --account "$1" --json |
		$PY -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])'
}
nsnaps() { "$ARCA" snapshots --repo "$R" --json | $PY -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
record_step() {  # N: dump the view and remember each account's snapshot id
	dump_all "step$1" || return 1
	for a in $ACCTS; do latest "$a" >"$T/id-$1-$a" || return 1; done
}

echo masterpw >"$T/masterpw"
printf '%s\n' $ACCTS >"$T/accounts"
D=$T/dc
dovecot_start "$D" maildirpp >/dev/null || { echo "not ok - dovecot starts"; exit 1; }
R=$T/repo
"$ARCA" init --repo "$R" --restore-key "$T/rk" >/dev/null

check "populate 3 accounts (real mail, folders, flags, keywords, a Sieve script)" \
	$PY "$TOOLS/populate.py" --host 127.0.0.1 --imap-port "$DOVECOT_IMAP_PORT" \
	--lmtp-port "$DOVECOT_LMTP_PORT" --sieve-port "$DOVECOT_SIEVE_PORT" \
	--master-user admin --master-password masterpw \
	--accounts "${ACCTS// /,}" --messages-dir "$CORPUS" --count 40 --seed 7
# Sieve filing: these go to Work through alice's active script
check "deliver mail that Sieve files into Work" step alice@example.test deliver "$DOVECOT_LMTP_PORT" alice@example.test "[arca-sieve] report" 4 s0

# ---- step 0: the first pull
check "first pull of 3 accounts" pull
expect_eq "first pull: alice's Sieve script captured" "$(field alice@example.test sieve_scripts)" 1
check "step 0: dump and note the snapshots" record_step 0
n0=$(nsnaps)
check "a pull with nothing changed" pull
expect_eq "nothing changed: no new snapshot" "$(nsnaps)" "$n0"
expect_eq "nothing changed: alice unchanged" "$(field alice@example.test unchanged)" True
expect_eq "nothing changed: no folder opened" "$(field bob@example.test folders_examined)" 0

# ---- step 1: new mail (Sieve-filed), flags and keywords
check "step 1: deliver 5 to alice" step alice@example.test deliver "$DOVECOT_LMTP_PORT" alice@example.test "[arca-sieve] more" 5 s1
check "step 1: flags and keywords on bob's INBOX" step bob@example.test flags INBOX 0.3 f1 '\Seen' '\Flagged' '$Work' 'custom1'
check "step 1: remove a flag from carol's INBOX" step carol@other.test unflag INBOX 0.5 f2 '\Seen'
check "step 1: pull" pull
expect_eq "step 1: alice fetched only the 5 new bodies" "$(field alice@example.test messages_fetched)" 5
expect_eq "step 1: bob fetched no body (flags only)" "$(field bob@example.test messages_fetched)" 0
expect_eq "step 1: bob opened one folder" "$(field bob@example.test folders_examined)" 1
check "step 1: dump" record_step 1

# ---- step 2: moves, a rename, a deleted folder
check "step 2: alice moves 30% of INBOX to Archive" step alice@example.test move INBOX Archive 0.3 m2
check "step 2: alice renames Projets" step alice@example.test rename Projets Projekte
check "step 2: carol deletes a folder" step carol@other.test delete "Family & Friends"
check "step 2: bob unsubscribes Sent" step bob@example.test unsubscribe Sent
check "step 2: pull" pull
expect_eq "step 2: moved and renamed mail is not downloaded again" "$(field alice@example.test messages_fetched)" 0
check "step 2: dump" record_step 2

# ---- step 3: expunge, and a folder recreated (new UIDVALIDITY)
check "step 3: bob expunges 10% of INBOX" step bob@example.test expunge INBOX 0.1 e3
check "step 3: alice deletes Work" step alice@example.test delete Work
check "step 3: alice creates Work again" step alice@example.test create Work
check "step 3: Sieve files new mail into the new Work" step alice@example.test deliver "$DOVECOT_LMTP_PORT" alice@example.test "[arca-sieve] after" 2 s3
check "step 3: pull" pull
check "step 3: dump" record_step 3
v2=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["folders"]["Work"]["uidvalidity"])' "$T/step2-alice@example.test.json")
v3=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["folders"]["Work"]["uidvalidity"])' "$T/step3-alice@example.test.json")
if [ "$v2" != "$v3" ]; then echo "ok - step 3: Work has a new UIDVALIDITY ($v2 -> $v3)"; else echo "not ok - step 3: Work UIDVALIDITY changed"; _test_failed=1; fi

# ---- step 4: the attack on carol: mass deletion raises an alarm
check "step 4: wipe carol's mailbox" step carol@other.test wipe
pull --alarm-exec "env | grep ^ARCA_ALARM_ >'$T/hook.env'; cat >'$T/hook.txt'"
expect_eq "step 4: pull exits 5 (alarm)" "$?" 5
check "step 4: the alarm is on the pull's stderr" grep -q "ALARM mass-deletion carol@other.test" "$T/pull.err"
check "step 4: the hook ran with the alarm's kind" grep -q "^ARCA_ALARM_KIND=mass-deletion" "$T/hook.env"
check "step 4: the hook's report names the account" grep -q "carol@other.test" "$T/hook.txt"
"$ARCA" status --repo "$R" >"$T/status.txt"
expect_eq "step 4: arca status exits 5 while the alarm stands" "$?" 5
check "step 4: arca status lists it" grep -q "ALARM .*mass-deletion carol@other.test" "$T/status.txt"
suspect=$("$ARCA" snapshots --repo "$R" --account carol@other.test --json | $PY -c 'import json,sys; print(json.load(sys.stdin)[-1]["suspect"])')
expect_eq "step 4: carol's new snapshot is marked suspect" "$suspect" True
check "verify with the restore key (alarms and all)" "$ARCA" verify --repo "$R" --restore-key "$T/rk"

# ---- an interrupted pull: no partial snapshot, the re-run completes
check "deliver 30 more to alice" step alice@example.test deliver "$DOVECOT_LMTP_PORT" alice@example.test "bulk" 30 k1
before=$(nsnaps)
# at every crash point of the first few commits: the repository verifies
# and holds no partial snapshot
for n in 1 2 3 5 8 13 21; do
	( ARCA_FAULT=crash:$n "$ARCA" pull imap --repo "$R" --host 127.0.0.1 --port "$DOVECOT_IMAP_PORT" \
		--master-user admin --password-file "$T/masterpw" --account alice@example.test \
		--json --commit-every 4096 >/dev/null 2>&1; exit $? ) 2>/dev/null
	rc=$?
	check "crash point $n: killed (exit $rc) and the repository verifies" \
		test "$rc" -eq 137 -a -n "$("$ARCA" verify --repo "$R" --restore-key "$T/rk" 2>&1 | grep '0 problems')"
done
expect_eq "killed pulls left no snapshot" "$(nsnaps)" "$before"
# killed half-way: the re-run doesn't fetch again what was committed
( ARCA_FAULT=crash:60 "$ARCA" pull imap --repo "$R" --host 127.0.0.1 --port "$DOVECOT_IMAP_PORT" \
	--master-user admin --password-file "$T/masterpw" --account alice@example.test \
	--json --commit-every 4096 >/dev/null 2>&1; exit $? ) 2>/dev/null
expect_eq "a pull killed half-way (crash point 60)" "$?" 137
expect_eq "... left no snapshot" "$(nsnaps)" "$before"
"$ARCA" pull imap --repo "$R" --host 127.0.0.1 --port "$DOVECOT_IMAP_PORT" --master-user admin \
	--password-file "$T/masterpw" --account alice@example.test --sieve-port "$DOVECOT_SIEVE_PORT" \
	--json >"$T/pull.json" 2>"$T/pull.err"
expect_eq "the re-run completes" "$?" 0
got=$(field alice@example.test messages_fetched)
if [ "${got:-30}" -lt 30 ]; then echo "ok - the re-run fetched only what the killed run had not stored ($got of 30)"; else echo "not ok - the re-run fetched ${got:-?} of 30 again"; _test_failed=1; fi
# a message too large to hold whole (40 MiB): fetched in pieces, spooled
$PY - "$DOVECOT_LMTP_PORT" "$TOOLS" <<'PY'
import random, sys
sys.path.insert(0, sys.argv[2])
from populate import Lmtp
r = random.Random(40)
body = "\n".join("".join(r.choice("abcdefghij klmnop") for _ in range(76)) for _ in range(550000))
msg = ("From: big@x.test\nTo: bob@example.test\nSubject: 40 MiB\nMessage-ID: <big@x.test>\n\n" + body + "\n").encode()
l = Lmtp("127.0.0.1", sys.argv[1]); l.deliver(msg, ["bob@example.test"]); l.close()
PY
"$ARCA" pull imap --repo "$R" --host 127.0.0.1 --port "$DOVECOT_IMAP_PORT" --master-user admin \
	--password-file "$T/masterpw" --account bob@example.test --json >"$T/pull.json" 2>"$T/pull.err"
expect_eq "a 40 MiB message is pulled (in pieces)" "$(field bob@example.test messages_fetched)" 1
check "step 5: dump" record_step 5

# ---- the network side runs apart: unprivileged, no new privileges, no key
cat >"$T/hang.py" <<'PY'
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept(); c.sendall(b"* OK slow server\r\n"); time.sleep(30)
PY
$PY "$T/hang.py" >"$T/hang.port" &
hang=$!
for _ in $(seq 50); do [ -s "$T/hang.port" ] && break; sleep 0.1; done
"$ARCA" pull imap --repo "$R" --host 127.0.0.1 --port "$(cat "$T/hang.port")" --master-user admin \
	--password-file "$T/masterpw" --account alice@example.test --timeout 20 >/dev/null 2>&1 &
puller=$!
net=""
for _ in $(seq 50); do
	net=$(pgrep -P "$puller" 2>/dev/null | head -1)
	[ -n "$net" ] && grep -q "^NoNewPrivs:.*1" "/proc/$net/status" 2>/dev/null && break
	sleep 0.1
done
expect_eq "the network process runs as nobody" "$(ps -o user= -p "${net:-0}" 2>/dev/null | tr -d ' ')" nobody
check "the network process has no_new_privs" grep -q "^NoNewPrivs:.*1" "/proc/${net:-0}/status"
check "the network process has no repository file open" \
	sh -c "! ls -l /proc/${net:-0}/fd 2>/dev/null | grep -q '$R'"
kill "$puller" "$hang" 2>/dev/null
wait "$puller" "$hang" 2>/dev/null

# ---- restore every step into a wiped Dovecot and compare
cp -a "$DOVECOT_MAIL_ROOT/example.test/alice/sieve" "$T/alice-sieve"
active_before=$(readlink "$DOVECOT_MAIL_ROOT/example.test/alice/.dovecot.sieve")
for k in $STEPS 5; do
	dovecot_stop "$D" >/dev/null
	rm -rf "$DOVECOT_MAIL_ROOT"
	for a in $ACCTS; do
		n=${a%@*} d=${a#*@}
		check "step $k: restore $a" "$ARCA" restore maildir --repo "$R" --account "$a" \
			--restore-key "$T/rk" --snapshot "$(cat "$T/id-$k-$a")" --no-journal \
			--sieve-home "$DOVECOT_MAIL_ROOT/$d/$n" \
			--owner "$DOVECOT_MAIL_UID:$DOVECOT_MAIL_GID" "$DOVECOT_MAIL_ROOT/$d/$n/Maildir"
	done
	chown "$DOVECOT_MAIL_UID:$DOVECOT_MAIL_GID" "$DOVECOT_MAIL_ROOT" "$DOVECOT_MAIL_ROOT"/*
	dovecot_start "$D" maildirpp >/dev/null || { echo "not ok - dovecot starts on the restored store"; _test_failed=1; break; }
	check "step $k: dump after restore" dump_all "restored$k"
	for a in $ACCTS; do
		check "step $k: $a: IMAP view after restore equals Dovecot's at that step" \
			$PY "$TOOLS/imapdump.py" --compare "$T/step$k-$a.json" "$T/restored$k-$a.json"
	done
done
check "alice's Sieve scripts restored byte for byte" diff -r -x tmp "$T/alice-sieve" "$DOVECOT_MAIL_ROOT/example.test/alice/sieve"
expect_eq "alice's active Sieve script restored" "$(readlink "$DOVECOT_MAIL_ROOT/example.test/alice/.dovecot.sieve")" "$active_before"
# a script changed since (same name, other bytes) and another one made
# active: a restore into that home keeps both, ours goes in as NAME-restored
AH=$DOVECOT_MAIL_ROOT/example.test/alice
first=$(basename "$active_before" .sieve)
printf 'require "fileinto";\n# made after the attack\nkeep;\n' >"$AH/sieve/$first.sieve"
printf 'keep;\n' >"$AH/sieve/newer.sieve"
ln -sfn sieve/newer.sieve "$AH/.dovecot.sieve"
cp -a "$AH/sieve" "$T/sieve-since"
"$ARCA" restore maildir --repo "$R" --account alice@example.test --restore-key "$T/rk" --no-journal \
	--snapshot "$(cat "$T/id-5-alice@example.test")" --sieve-home "$AH" "$T/alice-again" >"$T/again.out" 2>"$T/again.err"
expect_eq "restore into a home with newer Sieve scripts exits 0" "$?" 0
check "the script changed since stays as it is" cmp "$T/sieve-since/$first.sieve" "$AH/sieve/$first.sieve"
check "the snapshot's goes in beside it as $first-restored" cmp "$T/alice-sieve/$first.sieve" "$AH/sieve/$first-restored.sieve"
expect_eq "the script made active since stays active" "$(readlink "$AH/.dovecot.sieve")" sieve/newer.sieve
check "... and both are said" grep -q "goes in as $first-restored" "$T/again.err"
# the user edits the restored copy; a re-run keeps the edit too, and a third
# run finds everything where it is (nothing written, nothing renamed again)
printf '# edited\nkeep;\n' >"$AH/sieve/$first-restored.sieve"
cp "$AH/sieve/$first-restored.sieve" "$T/edited.sieve"
again() {
	rm -rf "$T/alice-again"
	"$ARCA" restore maildir --repo "$R" --account alice@example.test --restore-key "$T/rk" --no-journal \
		--snapshot "$(cat "$T/id-5-alice@example.test")" --sieve-home "$AH" "$T/alice-again" >"$T/again.out" 2>"$T/again.err"
}
again
expect_eq "a re-run exits 0" "$?" 0
check "... the edited $first-restored stays as it is" cmp "$T/edited.sieve" "$AH/sieve/$first-restored.sieve"
check "... the snapshot's goes in as $first-restored-2" cmp "$T/alice-sieve/$first.sieve" "$AH/sieve/$first-restored-2.sieve"
ls -l --time-style=+%s.%N "$AH/sieve" >"$T/sieve-ls1"
again
expect_eq "a third run exits 0" "$?" 0
ls -l --time-style=+%s.%N "$AH/sieve" >"$T/sieve-ls2"
check "... and writes nothing in the Sieve directory" diff "$T/sieve-ls1" "$T/sieve-ls2"
check "... no temporary file left" test -z "$(ls "$AH/sieve" | grep arca-tmp)"

# the default restore passes over the suspect snapshot
dovecot_stop "$D" >/dev/null
"$ARCA" restore maildir --repo "$R" --account carol@other.test --restore-key "$T/rk" --no-journal \
	"$T/carol-default" >/dev/null 2>"$T/default.err"
check "default restore of carol says the suspect snapshot is passed over" grep -q "suspect" "$T/default.err"
cnt=$(find "$T/carol-default" -type f -path '*/cur/*' | wc -l)
if [ "$cnt" -gt 0 ]; then echo "ok - default restore of carol gives her mail back ($cnt messages)"; else echo "not ok - default restore of carol is empty"; _test_failed=1; fi

# clearing the alarm needs the restore key
seq=$("$ARCA" status --repo "$R" --json | $PY -c 'import json,sys; print([a["seq"] for a in json.load(sys.stdin)["alarms"]][0])')
check_fails "clearing an alarm without the restore key is refused" \
	"$ARCA" alarm clear --repo "$R" --reason "test" "$seq"
check "clear the alarm with the restore key" \
	"$ARCA" alarm clear --repo "$R" --restore-key "$T/rk" --reason "test: the wipe was ours" "$seq"
check "arca status: no standing alarm" "$ARCA" status --repo "$R"
check "verify after all of it" "$ARCA" verify --repo "$R" --restore-key "$T/rk"
test_done
