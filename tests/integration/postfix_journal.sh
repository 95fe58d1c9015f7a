#!/bin/bash
# The journal end to end with a real mail server: a private Postfix
# (tests/lib/postfix.sh) delivers example.test to a private Dovecot and a
# journal copy per recipient (and per local sender) to arcad over LMTP.
#   a. dave -> To alice, Cc bob, Bcc carol: Dovecot has it for all three;
#      once arcad seals (--seal-seconds 1, without stopping it) arca journal
#      lists alice, bob, carol (in) and dave (out); with the restore key the
#      envelope holds all four journal addresses and from = dave.
#   b. the vault's copy (journal-only restore) = Dovecot's stored copy minus
#      what each side prepends (Dovecot: Return-Path, Delivered-To, its LMTP
#      Received; restore: Return-Path, Delivered-To): same bytes, same body
#      and Message-ID, for every account.
#   d. arcad below its disk reserve (452 4.3.1): Postfix keeps the journal
#      copy deferred, Dovecot delivers; after a normal restart and a flush
#      the copy is in the vault.
#   c. kill -9 of arcad at 100+ random moments while 16 SMTP clients stream
#      mail with unique Message-IDs through Postfix; then a healthy arcad, a
#      flush until the queue is empty: every copy Postfix logged status=sent
#      for the journal transport is in the vault, every accepted message is
#      there once per recipient (alice, bob in; dave out) counted by distinct
#      Message-ID in a journal-only restore, Dovecot has each once, arca
#      verify passes and names no pack "not in the log" (a sealed journal
#      segment whose log entry was lost), and the ASan arcad reported nothing.
# Parts run in the order a, b, d, c (c changes Postfix's retry timers).
# Environment: PJ_KILLS (110), PJ_MAX_MESSAGES (3000), PJ_SENDERS (16),
# PJ_BACKLOG (150: the sender pauses while Postfix holds more), KEEP_TMP=1
# keeps the directory. Prints TAP lines; about 2.5-3 minutes on 2 busy CPUs.
set -u
. "$(dirname "$0")/../lib/common.sh"
. "$ARCA_ROOT/tests/lib/dovecot.sh"
. "$ARCA_ROOT/tests/lib/postfix.sh"
. "$ARCA_ROOT/tests/lib/arcad.sh"
PY=/usr/bin/python3
DOVECOT_USERS="alice@example.test bob@example.test carol@example.test dave@example.test"
POSTFIX_USERS=$DOVECOT_USERS
KILLS=${PJ_KILLS:-110}
MAXMSG=${PJ_MAX_MESSAGES:-3000}
SENDERS=${PJ_SENDERS:-16}
export ARCA_PASSPHRASE=postfix-journal-passphrase
T=$(test_tmpdir pfj)
R=$T/repo K=$T/key A=$T/arcad
SENDER_PID=""
cleanup() {
	[ -n "$SENDER_PID" ] && kill "$SENDER_PID" 2>/dev/null
	arcad_kill "$A"
	[ -s "$T/pf/queue/pid/master.pid" ] && postfix_stop "$T/pf" >/dev/null 2>&1
	[ -s "$T/dc/run/master.pid" ] && dovecot_stop "$T/dc" >/dev/null 2>&1
	[ -n "${KEEP_TMP:-}" ] && echo "# kept $T"
	_test_cleanup
}
trap cleanup EXIT
t0=$SECONDS

fatal() { echo "not ok - $1"; exit 1; }
# wait_for SECONDS 'SHELL CODE' — evaluates the code every 0.2 s until it succeeds.
wait_for() {
	local i
	for i in $(seq 1 $(($1 * 5))); do
		eval "$2" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	eval "$2"
}
# arcad's log of every run, kept together (arcad_start appends to DIR/arcad.log
# and waits for "store ready" in it: move the previous run's log out first).
restart_arcad() {
	[ -f "$A/arcad.log" ] && cat "$A/arcad.log" >>"$T/arcad-all.log" && rm -f "$A/arcad.log"
	arcad_start "$A" "$R" "$VPORT" --seal-seconds 1 "$@"
}
# checkv NAME COMMAND...: like check, and prints COMMAND's output as comments.
checkv() {
	local name=$1 out rc; shift
	out=$("$@" 2>&1)
	rc=$?
	[ -n "$out" ] && sed 's/^/#   /' <<<"$out"
	if [ $rc -eq 0 ]; then echo "ok - $name"; else echo "not ok - $name"; _test_failed=1; fi
}
alllog() { cat "$T/arcad-all.log" "$A/arcad.log" 2>/dev/null; }
journal() { $ARCA_FAST journal --repo "$R" --json "$@"; }
nrec() { journal "$@" | grep -c '"account"'; }
maildir() { dovecot_maildir "$1@example.test"; }
newcount() { find "$(maildir "$1")/new" -type f 2>/dev/null | wc -l; }

# send FROM RCPT,RCPT,... FILE — SMTP to Postfix; prints the failure, if any.
send() {
	"$PY" - "$POSTFIX_SMTP_PORT" "$@" <<'EOF'
import smtplib, sys
port, frm, rcpts, path = sys.argv[1:5]
data = open(path, 'rb').read()
try:
    with smtplib.SMTP('127.0.0.1', int(port), timeout=30) as s:
        s.sendmail(frm, rcpts.split(','), data, mail_options=['BODY=8BITMIME'])
except smtplib.SMTPException as e:
    print(e); sys.exit(1)
EOF
}

# ------------------------------------------------------------------ start
# The binaries are copied first: other work may rebuild build-asan/ while
# this runs (a restart once met "arcad: Permission denied" mid-link).
mkdir -p "$T/bin"
cp "${ARCAD_BIN:-$ARCAD}" "$T/bin/arcad" && cp "$ARCA" "$T/bin/arca-checked" &&
	cp "$ARCA_FAST" "$T/bin/arca" || fatal "copy the binaries"
ARCAD_LABEL=${ARCAD_BIN:-$ARCAD}
ARCAD_BIN=$T/bin/arcad ARCA=$T/bin/arca-checked ARCA_FAST=$T/bin/arca
$ARCA_FAST init --repo "$R" --restore-key "$K" >/dev/null || fatal "arca init"
dovecot_start "$T/dc" >/dev/null || fatal "dovecot starts"
VPORT=$(arcad_free_ports 1)
while [ "$VPORT" = "$DOVECOT_IMAP_PORT" ] || [ "$VPORT" = "$DOVECOT_LMTP_PORT" ] ||
	[ "$VPORT" = "$DOVECOT_SIEVE_PORT" ] || [ "$VPORT" = "$DOVECOT_DOVEADM_PORT" ]; do
	VPORT=$(arcad_free_ports 1)
done
check "arcad starts on 127.0.0.1:$VPORT (--seal-seconds 1; a copy of ${ARCAD_LABEL#"$ARCA_ROOT"/})" \
	restart_arcad
postfix_start "$T/pf" 0 "$DOVECOT_LMTP_PORT" "$VPORT" >/dev/null || fatal "postfix starts"
echo "ok - dovecot (lmtp $DOVECOT_LMTP_PORT) and postfix (smtp $POSTFIX_SMTP_PORT) start"
PFLOG=$T/pf/postfix.log

# ------------------------------------------- a. To, Cc, Bcc-only, sender
cat >"$T/msg1.eml" <<'EOF'
From: Dave <dave@example.test>
To: Alice <alice@example.test>
Cc: bob@example.test
Subject: the journal scenario =?utf-8?q?=C3=A9?=
Message-ID: <scenario-1@example.test>
Date: Sat, 28 Nov 2026 10:00:00 +0100
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Hällo Alice, Bob (and Carol, who is only in the envelope).
.a line starting with a dot
EOF
"$PY" -c 'print("y" * 1200)' >>"$T/msg1.eml"   # longer than 998
echo "the end" >>"$T/msg1.eml"
sed -i 's/$/\r/' "$T/msg1.eml"
check "SMTP: dave -> To alice, Cc bob, Bcc-only carol" \
	send dave@example.test alice@example.test,bob@example.test,carol@example.test "$T/msg1.eml"
check "postfix queue empties" postfix_wait_empty "$T/pf" 30
for u in alice bob carol; do
	check "$u: delivered by Dovecot" test "$(newcount $u)" -eq 1
done
check "dave (the sender): nothing in Dovecot" test "$(newcount dave)" -eq 0
check "journal transport: 4 copies logged status=sent (250 from arcad)" \
	wait_for 10 'test "$(grep -c "/journal/lmtp.*status=sent (250 2.0.0" "$PFLOG")" -eq 4'
# Visible once sealed: --seal-seconds 1, arcad keeps running.
check "arca journal shows 4 records within 10 s while arcad runs (sealed by age)" \
	wait_for 10 'test "$(nrec)" -eq 4'
journal >"$T/a.json"
journal --restore-key "$K" >"$T/a-key.json"
checkv "records: alice, bob, carol in; dave out; one message id, same size" "$PY" - "$T/a.json" <<'EOF'
import json, sys
recs = json.load(open(sys.argv[1]))
got = sorted((r['account'], r['direction']) for r in recs)
want = [('alice@example.test', 'in'), ('bob@example.test', 'in'),
        ('carol@example.test', 'in'), ('dave@example.test', 'out')]
print(got)
assert got == want, got
assert len({r['id'] for r in recs}) == 1 and len({r['size'] for r in recs}) == 1
EOF
checkv "with --restore-key: from = dave@example.test, recipients = the 4 journal addresses" \
	"$PY" - "$T/a-key.json" <<'EOF'
import json, sys
recs = json.load(open(sys.argv[1]))
want = sorted(['alice=example.test@journal.invalid', 'bob=example.test@journal.invalid',
               'carol=example.test@journal.invalid', 'dave=example.test@out.journal.invalid'])
for r in recs:
    addrs = sorted(x['address'] for x in r['recipients'])
    print(r['account'], r['from'], addrs)
    assert r['from'] == 'dave@example.test', r
    assert addrs == want, addrs
    mine = [x for x in r['recipients'] if x['account'] == r['account']]
    assert mine and mine[0]['direction'] == r['direction'], r
EOF

# --------------------------- b. the same bytes in Dovecot and in the vault
for u in alice bob carol dave; do
	$ARCA restore maildir --repo "$R" --account "$u@example.test" --restore-key "$K" "$T/rb-$u" \
		>"$T/rb-$u.out" 2>&1
done
check "journal-only restores of the 4 accounts" bash -c \
	'for u in alice bob carol dave; do grep -q "from the journal only" "$1/rb-$u.out" || { cat "$1/rb-$u.out"; exit 1; }; done' _ "$T"
# strip NAMES FILE: the file without its leading headers NAMES (Received: only
# the first), as bytes.
checkv "vault copy = Dovecot copy minus prepended headers (bytes, body, Message-ID): alice bob carol, dave (Sent) vs alice's" \
	"$PY" - "$T" "$(maildir alice)" "$(maildir bob)" "$(maildir carol)" <<'EOF'
import email.parser, glob, re, sys
t, md = sys.argv[1], dict(zip(['alice', 'bob', 'carol'], sys.argv[2:5]))

def one(pattern):
    f = glob.glob(pattern)
    assert len(f) == 1, (pattern, f)
    return open(f[0], 'rb').read()

def split(data):
    """[(name, raw header incl. continuation lines)], body"""
    head, _, body = data.partition(b'\n\n')
    hs = []
    for line in head.split(b'\n'):
        if line[:1] in (b' ', b'\t') and hs:
            hs[-1] = (hs[-1][0], hs[-1][1] + b'\n' + line)
        else:
            hs.append((line.split(b':', 1)[0].lower(), line))
    return hs, body

def strip(data, names, received):
    """drop leading headers in names, and `received` leading Received headers"""
    hs, body = split(data)
    while hs and (hs[0][0] in names or (hs[0][0] == b'received' and received > 0)):
        if hs[0][0] == b'received':
            received -= 1
        hs.pop(0)
    return b'\n'.join(h for _, h in hs) + b'\n\n' + body

def mid(data):
    m = re.search(rb'^message-id:\s*(<[^>]*>)', data, re.M | re.I)
    return m and m.group(1)

sent = open(t + '/msg1.eml', 'rb').read().replace(b'\r\n', b'\n')
ok = True
for u in ['alice', 'bob', 'carol', 'dave']:
    if u == 'dave':
        v = one(t + '/rb-dave/.Sent/cur/*arca-journal*')
        d = one(md['alice'] + '/new/*')     # dave has no Dovecot copy: the sent message
    else:
        v = one(t + '/rb-%s/new/*arca-journal*' % u)
        d = one(md[u] + '/new/*')
    vh, _ = split(v)
    dh, _ = split(d)
    print('%s: vault prepends %s; dovecot prepends %s' % (u,
          [h.decode() for h, _ in vh[:2]], [h.decode() for h, _ in dh[:3]]))
    vs = strip(v, {b'return-path', b'delivered-to'}, 0)
    ds = strip(d, {b'return-path', b'delivered-to'}, 1)   # Dovecot's LMTP Received
    same = vs == ds
    body_same = split(v)[1] == split(d)[1] == split(sent)[1]
    mid_same = mid(v) == mid(d) == b'<scenario-1@example.test>'
    tail_sent = vs.endswith(sent)
    print('  bytes equal %s, body equal %s, Message-ID equal %s, ends with the sent bytes %s'
          % (same, body_same, mid_same, tail_sent))
    if not (same and body_same and mid_same and tail_sent):
        ok = False
        import difflib
        for l in difflib.unified_diff(ds.decode('utf-8', 'replace').splitlines(),
                                      vs.decode('utf-8', 'replace').splitlines(), 'dovecot', 'vault', lineterm='', n=1):
            print('  ' + l)
sys.exit(0 if ok else 1)
EOF

# ------------------------------------- d. arcad refusing: 452, deferred
arcad_stop "$A"
check "arcad restarts with --disk-reserve 1000P (refuses mail)" restart_arcad --disk-reserve 1000P
check "arcad logs that it is not accepting mail" grep -q "not accepting mail: 452 4.3.1" "$A/arcad.log"
printf 'From: dave@example.test\r\nTo: alice@example.test\r\nSubject: deferred\r\nMessage-ID: <deferred-1@example.test>\r\n\r\nkeep me queued\r\n' >"$T/msg2.eml"
deferred_before=$(grep -c '/journal/lmtp.*status=deferred' "$PFLOG")
check "SMTP: dave -> alice while arcad refuses" send dave@example.test alice@example.test "$T/msg2.eml"
check "Dovecot still delivers it to alice" wait_for 15 'test "$(newcount alice)" -eq 2'
check "postfix logs the journal copies deferred with arcad's 452 4.3.1" \
	wait_for 15 'test "$(grep "/journal/lmtp.*status=deferred" "$PFLOG" | tail -n +$((deferred_before + 1)) | grep -c "452 4.3.1")" -ge 2'
grep '/journal/lmtp.*status=deferred' "$PFLOG" | tail -1 | sed -E 's/^.*journal\/lmtp\[[0-9]+\]: /#   /'
qdeferred() { find "$T/pf/queue/deferred" -type f | wc -l; }
check "the message stays in Postfix's deferred queue (journal recipients only)" \
	wait_for 10 'test "$(qdeferred)" -eq 1 -a "$(postfix_queue_count "$T/pf")" -eq 1'
arcad_stop "$A"
check "arcad restarts normally" restart_arcad
postfix_flush "$T/pf"
check "after a flush the queue empties" postfix_wait_empty "$T/pf" 30
check "and the copies are journaled (alice in, dave out: 2 + 2 records)" \
	wait_for 10 'test "$(nrec --account alice@example.test)" -eq 2 -a "$(nrec --account dave@example.test)" -eq 2'
$ARCA_FAST restore maildir --repo "$R" --account alice@example.test --restore-key "$K" "$T/rd" >/dev/null 2>&1
check "the deferred message is in alice's vault restore" \
	bash -c 'grep -lq "^Message-ID: <deferred-1@example.test>" "$1"/new/*' _ "$T/rd"
check "alice has it once in Dovecot (no duplicate delivery)" \
	test "$(grep -l '^Message-ID: <deferred-1@example.test>' "$(maildir alice)"/new/* | wc -l)" -eq 1

# ----------------------------------------------- c. kill -9 under load
# Short backoff: while arcad is dead, Postfix declares the vault "dead" and
# would wait minimal_backoff_time (300 s) before trying again.
postconf -c "$T/pf" -e minimal_backoff_time=1s maximal_backoff_time=2s queue_run_delay=1s &&
	postfix -c "$T/pf" reload >/dev/null 2>&1
sleep 1
# What is counted: smtp-source cannot give each message its own Message-ID,
# so a small sender does: 16 SMTP clients, dave -> alice, bob, Message-ID
# <crash-N@test>, ~4 KiB of text unique to N. Every N that Postfix accepted
# (250 after DATA) must end up in the vault for alice and bob (in) and dave
# (out); duplicates (a copy journaled, then the 250 lost in a kill, then
# retried by Postfix) are allowed and counted. The sender keeps Postfix's
# backlog under PJ_BACKLOG queued messages, so deliveries to the vault go on
# during the whole kill loop and the final drain stays short.
cat >"$T/sender.py" <<'EOF'
import os, random, smtplib, sys, threading, time
port, nthreads, maxmsg, stopfile, out, queue, backlog = sys.argv[1:8]
nthreads, maxmsg, backlog = int(nthreads), int(maxmsg), int(backlog)
lock = threading.Lock()
nxt, fails = [0], [0]
words = 'vault journal mail server crash durable fsync segment commit seal message body queue'.split()
outf = open(out, 'w')

def queued():
    n = 0
    for d in ('maildrop', 'incoming', 'active', 'deferred'):
        for _, _, files in os.walk(os.path.join(queue, d)):
            n += len(files)
    return n

def take():
    with lock:
        if nxt[0] >= maxmsg:
            return None
        nxt[0] += 1
        return nxt[0]

def body(n):
    rnd = random.Random(n)
    lines = []
    while sum(map(len, lines)) < 4000:
        lines.append('%d: %s' % (n, ' '.join(rnd.choice(words) for _ in range(10))))
    return ('From: Dave <dave@example.test>\r\nTo: alice@example.test, bob@example.test\r\n'
            'Subject: crash test %d\r\nMessage-ID: <crash-%d@test>\r\n\r\n' % (n, n)
            + '\r\n'.join(lines) + '\r\n').encode()

def worker():
    s, n = None, None
    while not os.path.exists(stopfile):
        if queued() > backlog:
            time.sleep(0.1)
            continue
        if n is None:
            n = take()
            if n is None:
                break
        try:
            if s is None:
                s = smtplib.SMTP('127.0.0.1', int(port), timeout=60)
            s.sendmail('dave@example.test', ['alice@example.test', 'bob@example.test'], body(n))
            with lock:
                outf.write('%d\n' % n)
                outf.flush()
            n = None
        except Exception as e:
            with lock:
                fails[0] += 1
            print('send %d: %r' % (n, e), file=sys.stderr)
            try:
                s.close()
            except Exception:
                pass
            s = None
            time.sleep(0.2)
    if s:
        try:
            s.quit()
        except Exception:
            pass

ts = [threading.Thread(target=worker) for _ in range(nthreads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print('sender: %d failures' % fails[0], file=sys.stderr)
EOF
# The restart inside the kill loop: arcad_start's command line, but waiting
# with bash builtins (arcad_start polls with a python3 process per try, which
# took 1.5-7 s per start on this loaded machine; arcad itself is ready in
# ~40 ms). Same pid file, so arcad_kill and arcad_stop work on it.
quick_restart_arcad() {
	local pid i line
	[ -f "$A/arcad.log" ] && cat "$A/arcad.log" >>"$T/arcad-all.log"
	: >"$A/arcad.log"
	"${ARCAD_BIN:-$ARCAD}" --repo "$R" --journal-listen "127.0.0.1:$VPORT" \
		--journal-listen "unix:$A/lmtp.sock" --foreground --disk-reserve 10M --seal-seconds 1 \
		>>"$A/arcad.log" 2>&1 &
	pid=$!
	echo "$pid" >"$A/arcad.pid"
	for ((i = 0; i < 1000; i++)); do
		while IFS= read -r line; do
			if [[ $line == *"store ready"* ]]; then
				(exec 3<>"/dev/tcp/127.0.0.1/$VPORT") 2>/dev/null && return 0
			fi
		done <"$A/arcad.log"
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	echo "arcad did not start:" >&2
	tail -5 "$A/arcad.log" >&2
	return 1
}
for u in alice bob dave; do
	eval "pre_$u=$(nrec --account $u@example.test)"
done
rm -f "$T/stop"
nice -n 5 "$PY" "$T/sender.py" "$POSTFIX_SMTP_PORT" "$SENDERS" "$MAXMSG" "$T/stop" "$T/accepted" \
	"$T/pf/queue" "${PJ_BACKLOG:-150}" 2>"$T/sender.err" &
SENDER_PID=$!
c0=$SECONDS
kills=0 startfail=0 down_us=0 kill_us=0
sleep 1
for ((i = 0; i < KILLS; i++)); do
	r=$((50000 + RANDOM * 450000 / 32767))   # 0.05-0.5 s, in microseconds
	sleep "$((r / 1000000)).$(printf '%06d' $((r % 1000000)))"
	k0=${EPOCHREALTIME/./}
	arcad_kill "$A"
	kills=$((kills + 1))
	k1=${EPOCHREALTIME/./}
	quick_restart_arcad 2>>"$T/restart.err" || { startfail=$((startfail + 1)); quick_restart_arcad 2>>"$T/restart.err"; }
	k2=${EPOCHREALTIME/./}
	kill_us=$((kill_us + k1 - k0)) down_us=$((down_us + k2 - k1))
done
touch "$T/stop"
wait "$SENDER_PID"
SENDER_PID=""
sent=$(wc -l <"$T/accepted")
echo "# $kills kills of arcad in $((SECONDS - c0)) s (average: kill $((kill_us / kills / 1000)) ms, restart until ready $((down_us / kills / 1000)) ms) while $SENDERS SMTP clients sent $sent messages (dave -> alice, bob: 3 journal copies each); $(tail -1 "$T/sender.err")"
check "arcad restarted after every kill ($startfail failed first attempts)" test "$startfail" -eq 0
check "100+ kills with traffic flowing ($kills kills, $sent messages)" test "$kills" -ge 100 -a "$sent" -ge 100
check "arcad is up after the last restart" bash -c 'kill -0 $(cat "$1/arcad.pid")' _ "$A"
f0=$SECONDS
for i in $(seq 1 12); do
	postfix_flush "$T/pf" >/dev/null 2>&1
	postfix_wait_empty "$T/pf" 10 && break
done
check "flushing empties Postfix's queue ($((SECONDS - f0)) s, $i flushes)" test "$(postfix_queue_count "$T/pf")" -eq 0
check "arcad stops cleanly (SIGTERM: exit 0)" arcad_stop "$A"
sleep 1   # postlogd writes asynchronously
alllog >"$T/arcad-all.txt"
rec_segs=$(grep -c "recovered .* journal segment" "$T/arcad-all.txt")
dropped=$(grep -o '[0-9]* unacknowledged bytes dropped' "$T/arcad-all.txt" | awk '{ s += $1; n += ($1 > 0) } END { printf "%d of them dropped %d unacknowledged bytes", n, s }')
echo "# arcad: $rec_segs restarts recovered a segment ($dropped); postfix journal transport: $(grep -c '/journal/lmtp.*status=sent' "$PFLOG") status=sent, $(grep -c '/journal/lmtp.*status=deferred' "$PFLOG") status=deferred:"
grep '/journal/lmtp.*status=deferred' "$PFLOG" | sed -E 's/^.*status=deferred \(//; s/[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+\[[^]]*\]:[0-9]+/HOST/g; s/[0-9]+ octets/N octets/' |
	sort | uniq -c | sort -rn | head -6 | sed 's/^/#   /'
for u in alice bob dave; do
	$ARCA_FAST restore maildir --repo "$R" --account "$u@example.test" --restore-key "$K" "$T/rc-$u" \
		>"$T/rc-$u.out" 2>&1
done
journal >"$T/c.json"
checkv "every accepted message is in the vault once per recipient, and every copy Postfix logged status=sent is there" \
	"$PY" - "$T" "$PFLOG" "$(maildir alice)" "$(maildir bob)" "$pre_alice" "$pre_bob" "$pre_dave" <<'EOF'
import glob, json, os, re, sys
t, pflog, md_alice, md_bob = sys.argv[1:5]
pre = dict(zip(['alice', 'bob', 'dave'], map(int, sys.argv[5:8])))   # records before this part
accepted = {int(l) for l in open(t + '/accepted')}
acct = {'alice': 'in', 'bob': 'in', 'dave': 'out'}
rx = re.compile(rb'^message-id:\s*<crash-(\d+)@test>', re.M | re.I)

def ids(files):
    seen = {}
    for f in files:
        m = rx.search(open(f, 'rb').read(65536))
        if m:
            n = int(m.group(1))
            seen[n] = seen.get(n, 0) + 1
    return seen

vault = {}
for u in acct:
    sub = 'new' if acct[u] == 'in' else '.Sent/cur'
    vault[u] = ids(glob.glob('%s/rc-%s/%s/*' % (t, u, sub)))
# Postfix's own record: queue id -> Message-ID (cleanup), queue id + journal
# address -> status=sent (journal transport)
qmid, sent = {}, set()
for line in open(pflog, 'rb'):
    m = re.search(rb'cleanup\[\d+\]: ([0-9A-F]+): message-id=<crash-(\d+)@test>', line)
    if m:
        qmid[m.group(1)] = int(m.group(2))
        continue
    m = re.search(rb'/journal/lmtp\[\d+\]: ([0-9A-F]+): to=<([^=]+)=example\.test@(?:out\.)?journal\.invalid>.*status=sent', line)
    if m and m.group(1) in qmid:
        sent.add((m.group(2).decode(), qmid[m.group(1)]))
recs = json.load(open(t + '/c.json'))
nrec = {u: sum(1 for r in recs if r['account'] == u + '@example.test') - pre[u] for u in acct}
ok = True
for u in acct:
    v = vault[u]
    missing = accepted - set(v)
    extra = set(v) - accepted
    files = sum(v.values())
    ps = {n for (w, n) in sent if w == u}
    lost = ps - set(v)
    print('%s: accepted %d, in the vault %d distinct (%d files), journal records %d (%d duplicates), '
          'postfix status=sent %d, sent but missing %d, missing %d, unexpected %d'
          % (u, len(accepted), len(v), files, nrec[u], nrec[u] - len(v), len(ps), len(lost), len(missing), len(extra)))
    if lost:
        print('  LOST (acknowledged, not in the vault): %s' % sorted(lost)[:20])
    if missing or extra or lost or len(ps) != len(accepted):
        ok = False
for u, md in (('alice', md_alice), ('bob', md_bob)):
    d = ids(glob.glob(md + '/new/*') + glob.glob(md + '/cur/*'))
    dup = sum(1 for c in d.values() if c > 1)
    print('dovecot %s: %d distinct, %d delivered twice' % (u, len(d), dup))
    if set(d) != accepted:
        ok = False
sys.exit(0 if ok else 1)
EOF
v0=$SECONDS
$ARCA verify --repo "$R" --restore-key "$K" >"$T/verify.out" 2>&1
vrc=$?
echo "# arca verify --restore-key: exit $vrc in $((SECONDS - v0)) s; $(tail -1 "$T/verify.out")"
check "arca verify --restore-key passes after $kills kills" test "$vrc" = 0
# A pack in data/ that the log does not name is "left by an interrupted run;
# unused" for ingest, but for the journal it is a sealed segment whose
# acknowledged mail nobody can list or restore.
check "no journal segment stored but missing from the log (verify: \"not in the log\")" \
	bash -c '! grep "not in the log" "$1"' _ "$T/verify.out"
grep "not in the log" "$T/verify.out" | head -3 | sed 's/^/#   /'
check "no ASan/UBSan report in arcad's logs" bash -c '! grep -E "ERROR: AddressSanitizer|runtime error:|LeakSanitizer" "$1"' _ "$T/arcad-all.txt"
postfix_stop "$T/pf"
dovecot_stop "$T/dc" >/dev/null
echo "# took $((SECONDS - t0)) s"
test_done
