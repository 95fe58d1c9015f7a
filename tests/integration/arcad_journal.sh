#!/bin/bash
# arcad: the LMTP journal end to end, without Postfix (tests/integration/
# postfix_journal.sh has the real mail server): replies per recipient,
# abuse and limits, durability across SIGTERM and SIGKILL, failing fsync,
# privilege separation, and restore merging journaled mail.
set -u
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/arcad.sh"
SEND="python3 $ARCA_ROOT/tests/tools/lmtp_send.py"
export ARCA_PASSPHRASE=journal-test-passphrase
T=$(test_tmpdir arcad)
R=$T/repo K=$T/key
$ARCA_FAST init --repo "$R" --restore-key "$K" >/dev/null || { echo "not ok - init"; exit 1; }
read -r P1 P2 P3 <<<"$(arcad_free_ports 3)"
trap 'arcad_kill $T/d; arcad_kill $T/d2; _test_cleanup' EXIT

J=journal.invalid
check "arcad starts (TCP and unix socket)" arcad_start "$T/d" "$R" "$P1" --seal-seconds 1

# --- replies per recipient -------------------------------------------------
out=$($SEND 127.0.0.1:$P1 --from dave@example.test --to alice=example.test@$J \
	--to bob=example.test@$J --to carol@elsewhere.test --to dave=example.test@out.$J \
	--body $'From: dave@example.test\r\nSubject: one\r\nMessage-ID: <one@example.test>\r\n\r\nfirst\r\n.leading dot\r\n')
check "a reply per recipient: three 250, the non-journal address 550" \
	test "$(grep -c ' 250 ' <<<"$out")-$(grep -c '^carol@elsewhere.test 550 5.1.1' <<<"$out")" = "3-1"
out=$($SEND unix:$T/d/lmtp.sock --to alice=example.test@$J --count 20 --pipeline \
	--body $'Subject: pipelined %N\r\nMessage-ID: <p%N@example.test>\r\n\r\nbody %N\r\n')
check "20 pipelined messages over the unix socket: 20 x 250" test "$(grep -c ' 250 ' <<<"$out")" = 20
out=$($SEND 127.0.0.1:$P1 --to bob=example.test@$J --bdat 7 \
	--body $'Subject: chunked\r\nMessage-ID: <bdat@example.test>\r\n\r\nsent with BDAT in 7-byte chunks\r\n')
check "BDAT (CHUNKING) message: 250" grep -q ' 250 ' <<<"$out"
out=$($SEND 127.0.0.1:$P1 --to "ünï=example.test@$J" --body $'Subject: x\r\n\r\nx\r\n')
check "non-ASCII recipient without SMTPUTF8: refused (553 5.6.7)" grep -q ' 553 5.6.7' <<<"$out"

# --- hostile clients -------------------------------------------------------
out=$(printf 'LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice=example.test@%s>\r\nDATA\r\nSubject: cut\r\n\r\nnever finished' "$J" |
	timeout 5 $SEND 127.0.0.1:$P1 --raw)
check "a client that disconnects in DATA gets nothing stored (no 250 after 354)" \
	test "$(grep -c '^250 ' <<<"$out")" = 3
out=$( (printf 'LHLO x\r\n'; head -c 5000 /dev/zero | tr '\0' A; printf '\r\nNOOP\r\nFOO bar\r\nHELO x\r\nMAIL FROM:<bad address>\r\nRCPT TO:<x@y>\r\nQUIT\r\n') |
	timeout 5 $SEND 127.0.0.1:$P1 --raw)
check "an overlong line: 500 5.5.2, and the session goes on (NOOP 250)" \
	bash -c 'grep -q "^500 5.5.2" <<<"$1" && grep -q "^250 2.0.0" <<<"$1"' _ "$out"
check "unknown verb 500, HELO refused, bad MAIL 501, RCPT before MAIL 503, QUIT 221" \
	bash -c 'for c in "^500 5.5.1" "^501 5.1.7" "^503" "^221"; do grep -q "$c" <<<"$1" || exit 1; done' _ "$out"
out=$(printf 'LHLO x\r\nMAIL FROM:<a@b> BODY=BINARYMIME\r\nRCPT TO:<alice=example.test@%s>\r\nDATA\r\nQUIT\r\n' "$J" |
	timeout 5 $SEND 127.0.0.1:$P1 --raw)
check "BODY=BINARYMIME then DATA: 503 (RFC 3030 wants BDAT)" grep -q '^503 5.5.1 BODY=BINARYMIME' <<<"$out"
sleep 0.2
check "a refused journal address is logged (Postfix would drop the copy silently)" \
	grep -q "refused recipient from 127.0.0.1" "$T/d/arcad.log"
out=$(printf 'LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice=example.test@%s>\r\nDATA\r\nSub: nul\r\n\r\na\0b\r\n.\r\nQUIT\r\n' "$J" |
	timeout 5 $SEND 127.0.0.1:$P1 --raw)
check "a message with a NUL byte is journaled as received" grep -q '^250 2.0.0 journaled' <<<"$out"
arcad_stop "$T/d"
check "SIGTERM: arcad exits 0" test $? = 0
check "the log says it stopped cleanly" grep -q "store stopped" "$T/d/arcad.log"
n=$($ARCA_FAST journal --repo "$R" --json | grep -c '"account"')
check "arca journal lists every acknowledged record (3 + 20 + 1 + 1 = 25)" test "$n" = 25
check "arca journal --account filters" test "$($ARCA_FAST journal --repo "$R" --account bob@example.test --json | grep -c '"account"')" = 2
check "arca journal --restore-key shows sender and recipients" \
	bash -c '$1 journal --repo "$2" --restore-key "$3" --account dave@example.test --json | grep -q "\"from\":\"dave@example.test\".*carol\|\"from\":\"dave@example.test\".*alice=example.test@journal.invalid"' _ "$ARCA_FAST" "$R" "$K"
check "arca verify with the key: the journal segments are sound" $ARCA verify --repo "$R" --restore-key "$K"

# --- limits ----------------------------------------------------------------
arcad_start "$T/d" "$R" "$P1" --max-message-size 2K --max-recipients 2 --rate-per-client 5 \
	--quota-account-day 1M >/dev/null
big=$(head -c 4000 /dev/zero | tr '\0' x)
out=$($SEND 127.0.0.1:$P1 --to alice=example.test@$J --to bob=example.test@$J --body "Subject: big"$'\r\n\r\n'"$big"$'\r\n')
check "over --max-message-size: 552 5.3.4 for each recipient" test "$(grep -c ' 552 5.3.4' <<<"$out")" = 2
out=$($SEND 127.0.0.1:$P1 --to alice=example.test@$J --to bob=example.test@$J --to carol=example.test@$J --body $'Subject: x\r\n\r\nx\r\n')
check "over --max-recipients: 452 4.5.3 for the third" grep -q '^carol=example.test@journal.invalid 452 4.5.3' <<<"$out"
out=$($SEND 127.0.0.1:$P1 --to alice=example.test@$J --count 8 --body $'Subject: flood %N\r\n\r\nx\r\n')
check "over --rate-per-client (5/min, 2 used above): 3 more pass, then 452 4.7.0 at MAIL" \
	bash -c '[ $(grep -c " 250 " <<<"$1") = 3 ] && grep -q "^MAIL 452 4.7.0" <<<"$1"' _ "$out"
sleep 0.3
check "the flood is in the log as an ALARM" grep -q "ALARM: client 127.0.0.1 exceeds" "$T/d/arcad.log"
arcad_stop "$T/d"
arcad_start "$T/d" "$R" "$P1" --quota-account-day 300 >/dev/null
out=$($SEND 127.0.0.1:$P1 --to erin=example.test@$J --to frank=example.test@$J --count 3 \
	--body $'Subject: quota %N\r\n\r\n'"$(head -c 150 /dev/zero | tr '\0' q)"$'\r\n')
check "--quota-account-day: once an account's day is full it gets 452 4.2.2" \
	test "$(grep -c 'erin=example.test@journal.invalid 452 4.2.2' <<<"$out")" -ge 1
arcad_stop "$T/d"
arcad_start "$T/d" "$R" "$P1" --disk-reserve 1000P >/dev/null
out=$($SEND 127.0.0.1:$P1 --to alice=example.test@$J --body $'Subject: x\r\n\r\nx\r\n')
check "below the disk reserve: 452 4.3.1, nothing stored" grep -q '452 4.3.1' <<<"$out"
arcad_stop "$T/d"
arcad_start "$T/d" "$R" "$P1" --allow 10.0.0.0/8 >/dev/null
out=$(printf 'QUIT\r\n' | timeout 5 $SEND 127.0.0.1:$P1 --raw)
check "a client outside --allow: 554 5.7.1" grep -q '^554 5.7.1' <<<"$out"
arcad_stop "$T/d"
check "a second arcad on the same repository is refused (journal lock)" bash -c '
	"$1" --repo "$2" --journal-listen 127.0.0.1:$3 --foreground --disk-reserve 1M >"$4/second.log" 2>&1 &
	p=$!; sleep 0.3
	"$1" --repo "$2" --journal-listen 127.0.0.1:$5 --foreground --disk-reserve 1M >"$4/third.log" 2>&1
	rc=$?; kill $p; wait $p
	[ $rc -ne 0 ] && grep -q "another process writes the journal" "$4/third.log"' _ "$ARCAD_FAST" "$R" "$P2" "$T" "$P3"

# --- STARTTLS and a config file ----------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/tls.key" -out "$T/tls.crt" -days 2 \
	-subj /CN=vault.test >/dev/null 2>&1
cat >"$T/arcad.conf" <<CONF
[arcad]
# the same settings as flags, read with libinih
repo = $R
journal-domain = journal.invalid
tls-cert = $T/tls.crt
tls-key = $T/tls.key
tls-required = yes
seal-seconds = 1
CONF
check "arcad starts from --config (flags add the listeners)" arcad_start "$T/d" "$R" "$P1" --config "$T/arcad.conf"
out=$($SEND 127.0.0.1:$P1 --starttls "$T/tls.crt" --to tls=example.test@$J --count 2 --body $'Subject: tls %N\r\n\r\nover TLS\r\n')
check "STARTTLS: a verified TLS session, messages journaled" \
	bash -c 'grep -q "^tls TLSv1\.[23]" <<<"$1" && [ $(grep -c " 250 " <<<"$1") = 2 ]' _ "$out"
out=$($SEND 127.0.0.1:$P1 --to tls=example.test@$J --body $'Subject: plain\r\n\r\nx\r\n')
check "--tls-required: MAIL without STARTTLS gets 530 5.7.0" grep -q '^MAIL 530 5.7.0' <<<"$out"
out=$(printf 'LHLO x\r\nSTARTTLS\r\nMAIL FROM:<a@b>\r\n' | timeout 5 $SEND 127.0.0.1:$P1 --raw)
check "plaintext pipelined after STARTTLS is not taken (CVE-2011-0411): connection dropped" \
	bash -c 'grep -q "^220 2.0.0 Ready to start TLS" <<<"$1" && ! grep -q "^250 2.1.0" <<<"$1"' _ "$out"
arcad_stop "$T/d"
cat >"$T/bad.conf" <<CONF
[arcad]
max-message-size = lots
CONF
check_fails "a config file with a bad value is refused" "$ARCAD_FAST" --config "$T/bad.conf" --repo "$R" --journal-listen 127.0.0.1:$P2
check "... naming the file, the line and the setting" \
	bash -c '"$1" --config "$2" --repo "$3" --journal-listen 127.0.0.1:$4 2>&1 | grep -q "bad.conf, line 2: bad value for max-message-size"' _ "$ARCAD_FAST" "$T/bad.conf" "$R" "$P2"

# --- privilege separation --------------------------------------------------
arcad_start "$T/d" "$R" "$P1" >/dev/null
store=$(cat "$T/d/arcad.pid")
listener=$(pgrep -P "$store" | head -1)
if [ "$(id -u)" = 0 ]; then
	check "the listener runs as nobody" test "$(awk '/^Uid:/ {print $2}' /proc/$listener/status)" = "$(id -u nobody)"
	check "the listener is chrooted (its root is not /)" test "$(readlink /proc/$listener/root)" != /
else
	echo "ok - the listener runs as nobody # SKIP not root"
	echo "ok - the listener is chrooted # SKIP not root"
fi
check "the listener has no_new_privs" grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$listener/status
arcad_stop "$T/d"
# the seccomp filter (not applied in the sanitizer build: use the plain one)
ARCAD_BIN=$ARCAD_FAST arcad_start "$T/d" "$R" "$P1" --tls-cert "$T/tls.crt" --tls-key "$T/tls.key" >/dev/null
store=$(cat "$T/d/arcad.pid")
listener=$(pgrep -P "$store" | head -1)
check "the listener runs under a seccomp filter" grep -q '^Seccomp:[[:space:]]*2' /proc/$listener/status
out=$($SEND 127.0.0.1:$P1 --starttls "$T/tls.crt" --to sandbox=example.test@$J --bdat 9 \
	--to nobody@x.test --body $'Subject: sandboxed\r\n\r\nTLS, BDAT and a refusal under seccomp\r\n')
check "... and still speaks LMTP, TLS and BDAT, and logs" \
	bash -c 'grep -q "^tls" <<<"$1" && grep -q " 250 " <<<"$1" && sleep 0.2 && grep -q "refused recipient" "$2"' _ "$out" "$T/d/arcad.log"
check "the listener holds no repository file open" \
	bash -c '! ls -l /proc/$1/fd 2>/dev/null | grep -q "$2"' _ "$listener" "$R"
if [ "$(id -u)" = 0 ]; then
	check "the store's memory holds the ingest key (the scan can see it)" \
		python3 "$ARCA_ROOT/tests/tools/memscan.py" "$store" "$R/keys/ingest.key" 28 32
	check_fails "the listener's memory never held the ingest id key" \
		python3 "$ARCA_ROOT/tests/tools/memscan.py" "$listener" "$R/keys/ingest.key" 28 32
	check_fails "nor the signing key" \
		python3 "$ARCA_ROOT/tests/tools/memscan.py" "$listener" "$R/keys/ingest.key" 60 32
fi
arcad_stop "$T/d"

# --- crashes: every acknowledged message survives kill -9 ------------------
acked=0
for round in 1 2 3 4 5; do
	arcad_start "$T/d" "$R" "$P1" --seal-seconds 600 >/dev/null
	( $SEND 127.0.0.1:$P1 --to crash=example.test@$J --count 400 --pipeline \
		--body "Subject: crash $round %N"$'\r\nMessage-ID: <c'$round'-%N@example.test>\r\n\r\nbody\r\n' >"$T/crash.$round" ) &
	sender=$!
	# kill at a random moment once mail flows (acknowledgements seen)
	for _ in $(seq 100); do grep -q ' 250 ' "$T/crash.$round" 2>/dev/null && break; sleep 0.05; done
	sleep 0.$((RANDOM % 5))
	arcad_kill "$T/d"
	wait $sender
	acked=$((acked + $(grep -c ' 250 ' "$T/crash.$round")))
done
arcad_start "$T/d" "$R" "$P1" >/dev/null
check "after kill -9, the restart recovers the open segments" grep -q "recovered .* journal segment" "$T/d/arcad.log"
arcad_stop "$T/d"
got=$($ARCA_FAST journal --repo "$R" --account crash@example.test --json | grep -c '"account"')
check "every acknowledged message is in the journal after 5 kills ($acked acked, $got stored)" test "$got" -ge "$acked"
check "the repository verifies after the crashes" $ARCA verify --repo "$R" --restore-key "$K"

# --- crashes at every step of a commit and of a seal ---------------------------
# ARCA_FAULT=crash:N kills the store at its Nth crash point (after a commit
# mark's write, between seal, store and log...); small segments seal often.
acked=0
for n in $(seq 1 30); do
	# a crash point may be hit while starting (recovering): a crash too
	ARCA_FAULT=crash:$n arcad_start "$T/d" "$R" "$P1" --seal-size 64K >/dev/null 2>&1 || continue
	$SEND 127.0.0.1:$P1 --to point=example.test@$J --count 60 --pipeline \
		--body "Subject: point $n %N"$'\r\n\r\n'"$(head -c 3000 /dev/zero | tr '\0' p)"$'\r\n' >"$T/point.$n" 2>&1
	acked=$((acked + $(grep -c ' 250 ' "$T/point.$n")))
	arcad_kill "$T/d"
done
arcad_start "$T/d" "$R" "$P1" >/dev/null
arcad_stop "$T/d"
got=$($ARCA_FAST journal --repo "$R" --account point@example.test --json | grep -c '"account"')
check "crash points 1-30 in starts, commits and seals: every acknowledged message kept ($acked acked, $got stored)" \
	test "$got" -ge "$acked" -a "$acked" -gt 0
check "no journal segment left out of the log (verify names none)" \
	bash -c '! "$1" verify --repo "$2" --restore-key "$3" 2>&1 | grep -q "not in the log"' _ "$ARCA" "$R" "$K"

# --- a failing fsync: 451 for that batch, nothing acknowledged is lost -------
ARCA_FAULT=fsync:3 arcad_start "$T/d" "$R" "$P1" >/dev/null
out=$($SEND 127.0.0.1:$P1 --to faulty=example.test@$J --count 6 --body $'Subject: f %N\r\n\r\nx\r\n')
check "a failed fsync answers 451 4.3.0 (never 250) for its batch" grep -q ' 451 4.3.0' <<<"$out"
ok_before=$(grep -c ' 250 ' <<<"$out")
sleep 6
out=$($SEND 127.0.0.1:$P1 --to faulty=example.test@$J --body $'Subject: after\r\n\r\nx\r\n')
check "once healed, arcad takes mail again" grep -q ' 250 ' <<<"$out"
arcad_stop "$T/d"
got=$($ARCA_FAST journal --repo "$R" --account faulty@example.test --json | grep -c '"account"')
check "what was acknowledged around the failure is kept ($((ok_before + 1)) acked, $got stored)" test "$got" -ge $((ok_before + 1))
check "the repository verifies after the fsync failure" $ARCA verify --repo "$R" --restore-key "$K"

# --- every arca command works while arcad writes -----------------------------
arcad_start "$T/d" "$R" "$P1" --seal-seconds 1 >/dev/null
$SEND 127.0.0.1:$P1 --to busy=example.test@$J --count 300 --pipeline --body $'Subject: busy %N\r\n\r\nx\r\n' >"$T/busy.out" &
busy=$!
M0=$T/maildir0
mkdir -p "$M0/cur" "$M0/new" "$M0/tmp"
for i in 1 2 3; do printf 'Subject: m%s\n\nx\n' $i >"$M0/cur/100$i.M1P1.h:2,S"; done
check "arca ingest while arcad journals" $ARCA ingest maildir --repo "$R" --account side@example.test "$M0"
check "arca verify while arcad journals" $ARCA verify --repo "$R"
check "arca snapshots and arca journal while arcad journals" bash -c '"$1" snapshots --repo "$2" >/dev/null && "$1" journal --repo "$2" >/dev/null' _ "$ARCA_FAST" "$R"
check "arca restore while arcad journals" $ARCA restore maildir --repo "$R" --account side@example.test --restore-key "$K" "$T/side"
wait $busy
arcad_stop "$T/d"
check "... and arcad acknowledged all 300 meanwhile" test "$(grep -c ' 250 ' "$T/busy.out")" = 300
check "the repository verifies with both writers' entries" $ARCA verify --repo "$R" --restore-key "$K"

# --- as a daemon -------------------------------------------------------------
check "arcad without --foreground detaches, writes --pidfile, stops on SIGTERM" bash -c '
	"$1" --repo "$2" --journal-listen 127.0.0.1:$3 --disk-reserve 1M --pidfile "$4/arcad.pid2" 2>"$4/daemon.log" || exit 1
	for i in $(seq 50); do [ -s "$4/arcad.pid2" ] && break; sleep 0.1; done
	pid=$(cat "$4/arcad.pid2") && kill -0 "$pid" || exit 1
	kill -TERM "$pid"
	for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	! kill -0 "$pid" 2>/dev/null && [ ! -e "$4/arcad.pid2" ]' _ "$ARCAD_FAST" "$R" "$P2" "$T"

# --- restore merges the journal -------------------------------------------
M=$T/maildir
mkdir -p "$M/cur" "$M/new" "$M/tmp"
now=$(date +%s)
printf 'From: x@example.test\nSubject: already here\nMessage-ID: <dup@example.test>\n\nin the snapshot\n' >"$M/cur/$now.M1P1.host:2,S"
$ARCA_FAST ingest maildir --repo "$R" --account merge@example.test "$M" >/dev/null
arcad_start "$T/d" "$R" "$P1" >/dev/null
$SEND 127.0.0.1:$P1 --from x@example.test --to merge=example.test@$J \
	--body $'From: x@example.test\r\nSubject: already here\r\nMessage-ID: <dup@example.test>\r\n\r\nin the snapshot\r\n' >/dev/null
$SEND 127.0.0.1:$P1 --from x@example.test --to merge=example.test@$J --to only=example.test@$J \
	--body $'From: x@example.test\r\nSubject: after the snapshot\r\nMessage-ID: <new@example.test>\r\n\r\nnew mail\r\n' >/dev/null
arcad_stop "$T/d"
$ARCA restore maildir --repo "$R" --account merge@example.test --restore-key "$K" "$T/r1" >"$T/r1.out" 2>&1
check "restore adds the journaled message that arrived after the snapshot, not the duplicate" \
	bash -c 'ls "$1/new" | grep -c arca-journal | grep -qx 1 && ls "$1/cur" | wc -l | grep -qx 1 && grep -q "1 from the journal, 1 journaled already" "$2"' _ "$T/r1" "$T/r1.out"
f=$(ls "$T/r1/new/"* | head -1)
check "the journaled message is written as Dovecot's LMTP would (Return-Path, Delivered-To, LF)" \
	bash -c 'head -1 "$1" | grep -q "^Return-Path: <x@example.test>$" && sed -n 2p "$1" | grep -q "^Delivered-To: merge@example.test$" && ! grep -q $'"'"'\r'"'"' "$1"' _ "$f"
$ARCA restore maildir --repo "$R" --account merge@example.test --restore-key "$K" --no-journal "$T/r2" >/dev/null 2>&1
check "--no-journal restores the snapshot alone" test ! -e "$T/r2/new" -o -z "$(ls "$T/r2/new" 2>/dev/null)"
arcad_start "$T/d" "$R" "$P1" >/dev/null
$SEND 127.0.0.1:$P1 --to '"../../evil=example.test"'"@$J" --body $'Subject: x\r\n\r\nx\r\n' >"$T/evil.out"
arcad_stop "$T/d"
check "a journal account with '/' in its local part is journaled (as the mail server said)" grep -q ' 250 ' "$T/evil.out"
mkdir -p "$T/all/x/y"
$ARCA restore maildir --repo "$R" --restore-key "$K" --pattern "$T/all/x/y/%d/%n" >"$T/all.out" 2>&1
check "restore --pattern refuses to turn it into a path (nothing written outside the pattern)" \
	bash -c 'grep -q "can.t be a directory name" "$2" && [ ! -e "$1/all/x/evil" ] && [ ! -e "$1/all/evil" ] && [ -d "$1/all/x/y/example.test/merge" ]' _ "$T" "$T/all.out"
$ARCA restore maildir --repo "$R" --account only@example.test --restore-key "$K" "$T/r3" >"$T/r3.out" 2>&1
check "an account known only from the journal restores to an INBOX of its mail" \
	bash -c 'grep -q "from the journal only" "$2" && ls "$1/new" | grep -c . | grep -qx 1' _ "$T/r3" "$T/r3.out"
# mail to oneself is journaled in and out: it was in INBOX and in Sent
arcad_start "$T/d" "$R" "$P1" >/dev/null
SELF=$'From: self@example.test\r\nSubject: note to self\r\nMessage-ID: <self@example.test>\r\n\r\nremember\r\n'
$SEND 127.0.0.1:$P1 --from self@example.test --to self=example.test@$J --body "$SELF" >/dev/null
$SEND 127.0.0.1:$P1 --from self@example.test --to self=example.test@out.$J --body "$SELF" >/dev/null
arcad_stop "$T/d"
$ARCA restore maildir --repo "$R" --account self@example.test --restore-key "$K" "$T/r4" >"$T/r4.out" 2>&1
check "mail to oneself comes back in INBOX (new) and in Sent (seen)" \
	bash -c 'ls "$1/new" | grep -c arca-journal | grep -qx 1 && ls "$1/.Sent/cur" | grep -c ":2,S$" | grep -qx 1' _ "$T/r4"
test_done
