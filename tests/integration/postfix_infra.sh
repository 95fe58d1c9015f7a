#!/bin/bash
# Self-test of the Postfix test infrastructure (tests/lib/postfix.sh,
# tests/tools/lmtp_sink.py): a private Dovecot (accounts alice, bob, carol,
# dave @example.test), lmtp_sink.py standing in for the vault's LMTP port, and
# a private Postfix delivering example.test to Dovecot and a journal copy per
# recipient (and per local sender) to the sink.
# Checks: delivery and journal copies for To/Cc/Bcc recipients and the
# sender; the journal copies' bytes (= Received + what the client sent) and
# Dovecot's stored copy; a vault answering 451, then 550, keeps the message
# queued until a healthy vault gets it after a flush; SMTP rejections; bounces
# end (no loop); 200 messages from smtp-source all journaled; smtp-source -L
# straight into the sink. Prints TAP lines "ok - NAME" / "not ok - NAME".
set -u
ROOT=${ARCA_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
SINK=$ROOT/tests/tools/lmtp_sink.py
. "$ROOT/tests/lib/dovecot.sh"
. "$ROOT/tests/lib/postfix.sh"
DOVECOT_USERS="alice@example.test bob@example.test carol@example.test dave@example.test"
# ghost is known to Postfix but not to Dovecot: its mail bounces after queueing.
POSTFIX_USERS="$DOVECOT_USERS ghost@example.test"

TMP=$(mktemp -d /tmp/arca-postfix-infra.XXXXXX)
SINK_PID=""
cleanup() {
	[ -n "$SINK_PID" ] && stop_sink
	[ -s "$TMP/pf/queue/pid/master.pid" ] && postfix_stop "$TMP/pf" >/dev/null 2>&1
	[ -s "$TMP/dc/run/master.pid" ] && dovecot_stop "$TMP/dc" >/dev/null 2>&1
	if [ -n "${KEEP_TMP:-}" ]; then echo "# kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

fails=0
ok() { echo "ok - $1"; }
nok() { echo "not ok - $1"; fails=$((fails + 1)); }
check() {  # NAME COMMAND...
	local name=$1; shift
	if "$@"; then ok "$name"; else nok "$name"; fi
}
t0=$SECONDS

# start_sink OUTDIR [SINK OPTIONS...] — runs lmtp_sink.py on $VPORT, waits for its greeting.
start_sink() {
	local out=$1 line; shift
	"$PY" "$SINK" --port "$VPORT" --out "$out" "$@" 2>>"$TMP/sink.log" &
	SINK_PID=$!
	for _ in $(seq 1 100); do
		kill -0 "$SINK_PID" 2>/dev/null || break
		line=""
		{ exec 3<>"/dev/tcp/127.0.0.1/$VPORT" && IFS= read -r -t 2 line <&3 &&
			printf 'QUIT\r\n' >&3; exec 3<&- 3>&-; } 2>/dev/null
		[[ $line == "220 "* ]] && return 0
		sleep 0.1
	done
	echo "# lmtp_sink did not start:"; sed 's/^/#   /' "$TMP/sink.log" | tail -5
	return 1
}
stop_sink() {
	kill -TERM "$SINK_PID" 2>/dev/null
	wait "$SINK_PID" 2>/dev/null
	SINK_PID=""
}

# wait_for SECONDS COMMAND... — polls COMMAND every 0.1 s.
wait_for() {
	local t=$1; shift
	for _ in $(seq 1 $((t * 10))); do
		"$@" && return 0
		sleep 0.1
	done
	"$@"
}
nfiles() { find "$1" -maxdepth 1 -type f -name "${2:-*}" 2>/dev/null | wc -l; }
newcount() { nfiles "$(dovecot_maildir "$1@example.test")/new"; }
qcount() { find "$TMP/pf/queue/$1" -type f 2>/dev/null | wc -l; }
only_deferred() {  # the one message sits in deferred/, nothing in flight
	[ "$(qcount deferred)" -eq 1 ] && [ "$(qcount active)" -eq 0 ] && [ "$(qcount incoming)" -eq 0 ]
}
sink_log_has() { grep -c -- "$1" "$TMP/sink.log" 2>/dev/null | grep -qx "$2"; }

# rcpts OUTDIR — every journal RCPT in OUTDIR, one per line, sorted.
rcpts() {
	"$PY" - "$1" <<'EOF'
import glob, json, sys
r = []
for f in glob.glob(sys.argv[1] + '/*.json'):
    r += json.load(open(f))['rcpt']
print('\n'.join(sorted(r)))
EOF
}

# ---------------------------------------------------------------- start
if dovecot_start "$TMP/dc"; then
	ok "dovecot starts (lmtp $DOVECOT_LMTP_PORT)"
else
	nok "dovecot starts"
	exit 1
fi
VPORT=$(postfix_free_ports 1)
while [ "$VPORT" = "$DOVECOT_IMAP_PORT" ] || [ "$VPORT" = "$DOVECOT_LMTP_PORT" ] ||
	[ "$VPORT" = "$DOVECOT_SIEVE_PORT" ] || [ "$VPORT" = "$DOVECOT_DOVEADM_PORT" ]; do
	VPORT=$(postfix_free_ports 1)
done
check "lmtp_sink starts (port $VPORT)" start_sink "$TMP/j1"
s=$SECONDS
if postfix_start "$TMP/pf" 0 "$DOVECOT_LMTP_PORT" "$VPORT"; then
	ok "postfix starts (smtp $POSTFIX_SMTP_PORT, pid $POSTFIX_PID, $((SECONDS - s)) s)"
else
	nok "postfix starts"
	exit 1
fi
check "postfix master runs as root, children as postfix" \
	test "$(ps -o user= -p "$POSTFIX_PID")" = root -a \
	"$(_postfix_instance_pids "$POSTFIX_PID" | grep -vx "$POSTFIX_PID" |
		xargs -r ps -o user= -p | sort -u | tr -d ' ')" = postfix
check "only 127.0.0.1:$POSTFIX_SMTP_PORT listens" test "$(ss -Hltnp |
	awk -v s="$(_postfix_instance_pids "$POSTFIX_PID" | paste -sd'|')" '
		{ if (match($0, /pid=[0-9]+/)) { p = substr($0, RSTART + 4, RLENGTH - 4);
		  if (p ~ ("^(" s ")$")) print $4 } }' | sort -u)" = "127.0.0.1:$POSTFIX_SMTP_PORT"

# ---------------------------------------------------- To, Cc, Bcc, sender
cat >"$TMP/msg1.eml" <<'EOF'
From: Dave <dave@example.test>
To: Alice <alice@example.test>
Cc: bob@example.test
Subject: journal test =?utf-8?q?=C3=A9?=
Message-ID: <postfix-infra-1@example.test>
Date: Sat, 28 Nov 2026 10:00:00 +0100
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Hällo, this is 8-bit and not a header rewrite test.
.a line starting with a dot
EOF
"$PY" -c 'print("x" * 1500)' >>"$TMP/msg1.eml"   # longer than 998
echo "last line" >>"$TMP/msg1.eml"
sed -i 's/$/\r/' "$TMP/msg1.eml"   # as on the wire: CRLF

# send FROM RCPT,RCPT,... FILE — prints the SMTP reply code of the failure, if any.
send() {
	"$PY" - "$POSTFIX_SMTP_PORT" "$@" <<'EOF'
import smtplib, sys
port, frm, rcpts, path = sys.argv[1:5]
data = open(path, 'rb').read()
try:
    with smtplib.SMTP('127.0.0.1', int(port), timeout=20) as s:
        s.sendmail(frm, rcpts.split(','), data, mail_options=['BODY=8BITMIME'])
except smtplib.SMTPRecipientsRefused as e:
    print(' '.join(str(c) for c, _ in e.recipients.values())); sys.exit(1)
except smtplib.SMTPException as e:
    print(e); sys.exit(1)
EOF
}
check "SMTP: dave -> alice (To), bob (Cc), carol (Bcc only)" \
	send dave@example.test alice@example.test,bob@example.test,carol@example.test "$TMP/msg1.eml"
check "queue empties" postfix_wait_empty "$TMP/pf" 20
for u in alice bob carol; do
	check "$u: one message in Dovecot (Maildir new/)" test "$(newcount $u)" -eq 1
done
check "dave: nothing delivered to the sender" test "$(newcount dave)" -eq 0
expect="alice=example.test@journal.invalid
bob=example.test@journal.invalid
carol=example.test@journal.invalid
dave=example.test@out.journal.invalid"
got=$(rcpts "$TMP/j1")
if [ "$got" = "$expect" ]; then
	ok "journal: one RCPT per recipient (To, Cc, Bcc) and one for the sender"
else
	nok "journal: one RCPT per recipient (To, Cc, Bcc) and one for the sender"
	echo "$got" | sed 's/^/#   got: /'
fi
echo "# journal transactions for 4 RCPTs: $(nfiles "$TMP/j1" '*.json')"
check "journal: envelope sender is dave@example.test" \
	"$PY" -c 'import glob,json,sys; sys.exit(not all(json.load(open(f))["mail_from"] == "dave@example.test" for f in glob.glob(sys.argv[1] + "/*.json")))' "$TMP/j1"

# Byte comparisons: journal copies equal each other and are exactly the
# Received header(s) Postfix prepends + the bytes the client sent; Dovecot's
# copy is LF-only and ends with the journal copy.
compare() {  # JOURNALDIR SENTFILE MAILDIR...
	"$PY" - "$@" <<'EOF'
import glob, re, sys
jdir, sent, maildirs = sys.argv[1], open(sys.argv[2], 'rb').read(), sys.argv[3:]
copies = [open(f, 'rb').read() for f in sorted(glob.glob(jdir + '/*.eml'))]
err = []
if not copies:
    sys.exit('no journal copy')
if any(c != copies[0] for c in copies):
    err.append('journal copies differ')
j = copies[0]
if not j.endswith(sent):
    err.append('journal copy does not end with the sent bytes')
added = j[:len(j) - len(sent)]
names = re.findall(rb'^([^\s:]+):', added, re.M)
print('# Postfix added %d bytes, headers %s:' % (len(added), [n.decode() for n in names]))
for l in added.decode('utf-8', 'replace').splitlines():
    print('#   | ' + l)
if names != [b'Received']:
    err.append('Postfix added more than one Received header')
if b'\n' in j.replace(b'\r\n', b''):
    err.append('bare LF in journal copy')
jlf = j.replace(b'\r\n', b'\n')
for i, md in enumerate(maildirs):
    files = glob.glob(md + '/new/*') + glob.glob(md + '/cur/*')
    data = [open(f, 'rb').read() for f in files]
    if any(b'\r' in d for d in data):
        err.append('CR in Dovecot copy')
    d = ([x for x in data if x.endswith(jlf)] + [b''])[0]
    if not d:
        err.append('%s: Dovecot copy does not end with the journal copy (LF)' % md)
    elif i == 0:
        pre = d[:len(d) - len(jlf)]
        print('# Dovecot prepended %d bytes, headers %s:' % (len(pre),
              [n.decode() for n in re.findall(rb'^([^\s:]+):', pre, re.M)]))
        for l in pre.decode('utf-8', 'replace').splitlines():
            print('#   | ' + l)
for e in err:
    print('# ' + e)
sys.exit(1 if err else 0)
EOF
}
check "bytes: journal copies equal; = Received + sent bytes; Dovecot's copy ends with them (LF)" \
	compare "$TMP/j1" "$TMP/msg1.eml" "$(dovecot_maildir alice@example.test)" \
	"$(dovecot_maildir bob@example.test)" "$(dovecot_maildir carol@example.test)"

# ------------------------------------------------------------- rejections
check "SMTP: a journal address is rejected (554)" \
	test "$(send dave@example.test x=example.test@journal.invalid "$TMP/msg1.eml")" = 554
check "SMTP: an unknown example.test user is rejected (550)" \
	test "$(send dave@example.test nobody@example.test "$TMP/msg1.eml")" = 550

# ------------------------------------------- vault failing: 451, then 550
stop_sink
check "vault 451: sink restarted with --fail-rate 1" start_sink "$TMP/j2" --fail-rate 1
printf 'From: dave@example.test\r\nTo: alice@example.test\r\nSubject: fault\r\n\r\nkeep me\r\n' >"$TMP/msg2.eml"
check "SMTP: dave -> alice" send dave@example.test alice@example.test "$TMP/msg2.eml"
check "vault 451: the sink was asked and refused" wait_for 15 sink_log_has 'failed 451' 1
check "vault 451: message stays queued (deferred)" wait_for 15 only_deferred
check "vault 451: alice still got it from Dovecot" wait_for 10 test "$(newcount alice)" -eq 2
stop_sink
check "vault 550: sink restarted with --fail-code 550" start_sink "$TMP/j2" --fail-rate 1 --fail-code 550
postfix_flush "$TMP/pf"
check "vault 550: the sink was asked and refused" wait_for 15 sink_log_has 'failed 550' 1
check "vault 550: soft_bounce keeps it queued, no bounce" wait_for 15 only_deferred
check "vault 550: logged as status=SOFTBOUNCE" grep -q 'postfix-arca-test-[0-9]*/journal/lmtp.*status=SOFTBOUNCE.*said: 550' "$TMP/pf/postfix.log"
stop_sink
check "vault healthy again" start_sink "$TMP/j2"
postfix_flush "$TMP/pf"
check "after flush: queue empties" postfix_wait_empty "$TMP/pf" 20
check "after flush: the held journal copies arrive" test "$(rcpts "$TMP/j2")" = \
	"alice=example.test@journal.invalid
dave=example.test@out.journal.invalid"
check "no bounce reached dave, nothing delivered twice" \
	test "$(newcount dave)" -eq 0 -a "$(newcount alice)" -eq 2
check "bytes, single recipient: journal copy = Received + sent bytes; Dovecot's ends with it" \
	compare "$TMP/j2" "$TMP/msg2.eml" "$(dovecot_maildir alice@example.test)"

# -------------------------------------------------------- bounces end
# Mail to a remote domain is refused at RCPT (the error transport); bounces
# come from deliveries that fail after queueing: ghost@example.test passes
# Postfix's table, Dovecot's LMTP refuses it.
check "SMTP: mail to a remote domain is rejected at RCPT (550)" \
	test "$(send dave@example.test someone@elsewhere.test "$TMP/msg2.eml")" = 550
check "SMTP: dave -> ghost (Dovecot refuses, Postfix bounces to dave)" \
	send dave@example.test ghost@example.test "$TMP/msg2.eml"
check "bounce: queue empties" postfix_wait_empty "$TMP/pf" 15
check "bounce: delivered to dave" wait_for 10 test "$(newcount dave)" -eq 1
# A known gap, checked so that it stays documented: Postfix applies
# sender/recipient_bcc_maps only to mail from outside (smtpd, pickup), never
# to the bounces and notices it makes itself.
check "bounce: Postfix journals no copy of its own bounce to dave" \
	test -z "$(rcpts "$TMP/j2" | grep -x 'dave=example.test@journal.invalid')"
check "SMTP: ext@remote.test -> ghost (bounce undeliverable, then dropped)" \
	send ext@remote.test ghost@example.test "$TMP/msg2.eml"
check "double bounce: queue empties" postfix_wait_empty "$TMP/pf" 15
sleep 1
check "double bounce: queue still empty (no loop)" test "$(postfix_queue_count "$TMP/pf")" -eq 0
echo "# bounce journal RCPTs: $(rcpts "$TMP/j2" | grep -v '^alice=\|^dave=example.test@out' | paste -sd' ')"
grep -E 'postfix-arca-test-[0-9]+/(bounce|qmgr|error|lmtp)\[.*(bounce|discard|status=bounced|from=<>)' \
	"$TMP/pf/postfix.log" | sed -E 's/^.*postfix-arca-test-[0-9]+\//#   /' | tail -12

# ------------------------------------------- 200 messages from smtp-source
stop_sink
check "sink for the load test" start_sink "$TMP/j3"
before=$(newcount alice)
s=$SECONDS
check "smtp-source: 200 messages over SMTP" \
	smtp-source -s 8 -m 200 -l 4096 -f ext@remote.test -t alice@example.test \
	"127.0.0.1:$POSTFIX_SMTP_PORT"
check "smtp-source: queue empties" postfix_wait_empty "$TMP/pf" 60
check "smtp-source: 200 journal copies for alice=example.test@journal.invalid" \
	test "$(rcpts "$TMP/j3" | grep -cx 'alice=example.test@journal.invalid')" -eq 200 -a \
	"$(rcpts "$TMP/j3" | wc -l)" -eq 200
check "smtp-source: 200 more messages in alice's Maildir" wait_for 10 \
	test "$(newcount alice)" -eq $((before + 200))
echo "# 200 messages SMTP -> Dovecot + journal in $((SECONDS - s)) s"
check "smtp-source -L straight into the sink (LMTP)" \
	smtp-source -L -s 4 -m 50 -l 8192 -f a@remote.test -t b=example.test@journal.invalid \
	"127.0.0.1:$VPORT"
check "sink stored those 50" test "$(nfiles "$TMP/j3" '*.json')" -eq 250

# ---------------------------------------------------------------- stop
stop_sink
pid=$POSTFIX_PID
check "postfix_stop" postfix_stop "$TMP/pf"
check "no postfix process left" test -z "$(_postfix_instance_pids "$pid")"
check "dovecot_stop" dovecot_stop "$TMP/dc"
check "no dovecot process left" test -z "$(_dovecot_instance_pids "$TMP/dc")"
echo "# took $((SECONDS - t0)) s"
[ "$fails" -eq 0 ]
