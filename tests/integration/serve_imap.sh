#!/bin/bash
# Issue 5, serve the vault read-only over IMAP: a private Dovecot filled
# with real mail (folders, flags, keywords), `arca pull imap` into a vault,
# Dovecot's view dumped; then the mail store is wiped and Dovecot stopped,
# and `arca serve-imap` serves the vault: it greets within a second of
# start, and its view (folders, UIDVALIDITY, UIDNEXT, UIDs, flags,
# keywords, INTERNALDATE, RFC822.SIZE, the bytes of BODY[], HIGHESTMODSEQ
# and every MODSEQ) equals what Dovecot served.  Wrong passwords are
# refused and throttled; writes are refused; another account's mail is out
# of reach; the session processes run as nobody with no_new_privs, hold no
# repository or key file open and can't read the key; TLS (implicit and
# STARTTLS) with a private CA; no plain listener off loopback.
# Dovecot runs with its default Maildir++ layout (separator '.'), then a
# shorter pass with LAYOUT=fs ('/'): serve-imap shows the separator each
# showed, and the subscription to a folder that no longer exists.
set -u
. "$(dirname "$0")/../lib/common.sh"
. "$ARCA_ROOT/tests/lib/dovecot.sh"
. "$ARCA_ROOT/tests/lib/corpus.sh"
PY=/usr/bin/python3
TOOLS=$ARCA_ROOT/tests/tools
export ARCA_PASSPHRASE=serve-pass ARCA_TEST_FAST_KDF=1
T=$(test_tmpdir serve)
ACCTS="alice@example.test bob@example.test carol@other.test"
CORPUS=$(corpus_dir) || { echo "not ok - corpus available"; exit 1; }
SERVE_PIDS=""
cleanup_serve() { local p; for p in $SERVE_PIDS; do kill "$p" 2>/dev/null; done; }
trap 'cleanup_serve; dovecot_stop >/dev/null 2>&1; _test_cleanup' EXIT

step() { $PY "$TOOLS/imapstep.py" --port "$DOVECOT_IMAP_PORT" --user "$1*admin" --password masterpw "${@:2}"; }

# MODSEQ of every message and HIGHESTMODSEQ of every folder, as JSON.
modseqs() {  # PORT USER PASSWORD
	$PY - "$@" <<'PY'
import json, os, re, sys
sys.path.insert(0, os.environ['TOOLS'])
from imapdump import ImapClient, quote, mutf7_decode
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = ImapClient('127.0.0.1', port)
c.login(user, pw)
c.command('ENABLE CONDSTORE')
out = {}
for raw, delim, attrs in c.list('LIST "" "*"'):
    if any(a.lower() in ('\\noselect', '\\nonexistent') for a in attrs):
        continue
    info = c.select(bytes(raw))
    ms = {}
    if info.get('exists', 0):
        _, _, unt = c.command('UID FETCH 1:* (MODSEQ)')
        for u in unt:
            uid = re.search(rb'UID (\d+)', u)
            mod = re.search(rb'MODSEQ \((\d+)\)', u)
            if re.match(rb'\d+ FETCH', u) and uid and mod:
                ms[uid.group(1).decode()] = int(mod.group(1))
    out[mutf7_decode(bytes(raw))] = {'highestmodseq': info.get('highestmodseq'), 'modseq': ms}
c.logout()
print(json.dumps(out, sort_keys=True))
PY
}
export TOOLS

echo masterpw >"$T/masterpw"
printf '%s\n' $ACCTS >"$T/accounts"
D=$T/dc
dovecot_start "$D" maildirpp >/dev/null || { echo "not ok - dovecot starts"; exit 1; }
R=$T/repo
"$ARCA" init --repo "$R" --restore-key "$T/rk" >/dev/null
chmod 600 "$T/rk"

check "populate 3 accounts (real mail, folders, flags, keywords)" \
	$PY "$TOOLS/populate.py" --host 127.0.0.1 --imap-port "$DOVECOT_IMAP_PORT" \
	--lmtp-port "$DOVECOT_LMTP_PORT" --sieve-port "$DOVECOT_SIEVE_PORT" \
	--master-user admin --master-password masterpw \
	--accounts "${ACCTS// /,}" --messages-dir "$CORPUS" --count 40 --seed 11
check "flags and keywords on bob's INBOX" step bob@example.test flags INBOX 0.4 f1 '\Seen' '\Flagged' '$Work' 'custom1'
check "carol answers some" step carol@other.test flags INBOX 0.3 f2 '\Answered'
check "pull into the vault" "$ARCA" pull imap --repo "$R" --host 127.0.0.1 --port "$DOVECOT_IMAP_PORT" \
	--master-user admin --password-file "$T/masterpw" --accounts-from "$T/accounts"
for a in $ACCTS; do
	check "Dovecot's view of $a" $PY "$TOOLS/imapdump.py" --modseq -o "$T/dc-$a.json" 127.0.0.1 "$DOVECOT_IMAP_PORT" "$a*admin" masterpw
	modseqs "$DOVECOT_IMAP_PORT" "$a*admin" masterpw >"$T/dcm-$a.json" || echo "not ok - MODSEQs of $a from Dovecot"
done

# ---- mirror alice with a real client before the attack (when mbsync is here)
MBSYNC=$(command -v mbsync || true)
mbsync_conf() {  # PORT DIR USER PASSFILE
	cat <<EOF
IMAPAccount acct
Host 127.0.0.1
Port $1
User $3
PassCmd "cat $4"
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account acct

MaildirStore local
Path $2/
Inbox $2/INBOX
SubFolders Verbatim

Channel ch
Far :remote:
Near :local:
Patterns *
Create Near
Expunge Near
Sync Pull
SyncState *
EOF
}
if [ -n "$MBSYNC" ]; then
	mkdir -p "$T/mirror"
	echo masterpw >"$T/mb-pass"
	mbsync_conf "$DOVECOT_IMAP_PORT" "$T/mirror" 'alice@example.test*admin' "$T/mb-pass" >"$T/mbsyncrc-dc"
	check "mbsync mirrors alice from Dovecot" "$MBSYNC" -c "$T/mbsyncrc-dc" -a
	find "$T/mirror" -type f -path '*/cur/*' -o -type f -path '*/new/*' | sort >"$T/mirror-before"
fi

# ---- the attack: the mail store is gone, Dovecot is down
dovecot_stop >/dev/null
rm -rf "${D:?}/mail/"*
check "the mail store is wiped" test -z "$(ls -A "$D/mail")"

# ---- the users: crypt hashes (openssl passwd -6, doveadm pw)
{
	echo "# the provider's passwd-file"
	echo "alice@example.test:$(openssl passwd -6 alice-pw):5000:5000::/home/alice::"
	echo "bob@example.test:$(doveadm pw -s BLF-CRYPT -p bob-pw)::::::"
	echo "carol@other.test:$(doveadm pw -s SHA512-CRYPT -p carol-pw)"
} >"$T/users"

PORTS=$(_dovecot_free_ports 4)
read -r P1 P2 P3 P4 <<<"$PORTS"
start_serve() {  # LOGFILE ARGS...: start in the background, wait for "ready"
	local log=$1; shift
	"${SERVE_BIN:-$ARCA}" serve-imap --repo "${SERVE_REPO:-$R}" --restore-key "${SERVE_KEY:-$T/rk}" \
		--users "$T/users" --log "$log" "$@" \
		2>"$log.err" &
	SERVE_PID=$!
	SERVE_PIDS="$SERVE_PIDS $SERVE_PID"
	local i
	for i in $(seq 1 200); do
		grep -q "ready: the vault is open" "$log" 2>/dev/null && return 0
		kill -0 "$SERVE_PID" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# greeting within one second of start (before the key is even derived)
greet_ms=$($PY - "$ARCA" "$R" "$T" "$P1" <<'PY'
import os, socket, subprocess, sys, time
arca, repo, t, port = sys.argv[1:5]
t0 = time.monotonic()
p = subprocess.Popen([arca, 'serve-imap', '--repo', repo, '--restore-key', t + '/rk',
                      '--users', t + '/users', '--listen', '127.0.0.1:' + port,
                      '--log', t + '/greet.log'], stderr=subprocess.DEVNULL)
line = b''
while time.monotonic() - t0 < 5:
    try:
        s = socket.create_connection(('127.0.0.1', int(port)), timeout=5)
        line = s.recv(1000)
        break
    except OSError:
        time.sleep(0.005)
t1 = time.monotonic()
p.terminate()
p.wait()
print(int((t1 - t0) * 1000) if line.startswith(b'* OK') else -1)
PY
)
if [ "${greet_ms:--1}" -ge 0 ] && [ "$greet_ms" -lt 1000 ]; then
	echo "ok - first greeting ${greet_ms} ms after start"
else
	echo "not ok - first greeting within 1 s (got ${greet_ms} ms)"; _test_failed=1
fi

check "serve-imap starts on 127.0.0.1:$P1" start_serve "$T/serve.log" --listen "127.0.0.1:$P1" --login-fails 3
MAIN=$SERVE_PID

declare -A PWD_OF=([alice@example.test]=alice-pw [bob@example.test]=bob-pw [carol@other.test]=carol-pw)
for a in $ACCTS; do
	check "serve-imap's view of $a" $PY "$TOOLS/imapdump.py" --modseq -o "$T/sv-$a.json" 127.0.0.1 "$P1" "$a" "${PWD_OF[$a]}"
	check "$a: serve-imap shows what Dovecot showed (folders with '.', subscriptions, UIDs, flags, keywords, dates, sizes, bytes, HIGHESTMODSEQ)" \
		$PY "$TOOLS/imapdump.py" --compare "$T/dc-$a.json" "$T/sv-$a.json"
	modseqs "$P1" "$a" "${PWD_OF[$a]}" >"$T/svm-$a.json"
	check "$a: MODSEQ of every message and HIGHESTMODSEQ as pulled" cmp "$T/dcm-$a.json" "$T/svm-$a.json"
done
check "Dovecot showed '.' and a subscription to a folder that no longer exists (the test can fail)" \
	$PY -c 'import json,sys
f=json.load(open(sys.argv[1]))["folders"]
assert f["Old.Gone"]["subscribed"] and not f["Old.Gone"]["exists"], f.get("Old.Gone")
assert {v["delimiter"] for v in f.values() if v["exists"]} == {"."}' "$T/dc-alice@example.test.json"
n=$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(len(f.get("messages",[])) for f in d["folders"].values()))' "$T/sv-alice@example.test.json")
if [ "$n" -ge 40 ]; then echo "ok - alice's dump holds $n messages"; else echo "not ok - alice's dump holds $n messages"; _test_failed=1; fi
check "the log names the logins" grep -q "login: alice@example.test from 127.0.0.1 (snapshot " "$T/serve.log"

# ---- the processes: sessions as nobody, no_new_privs, no key, no repository
# (the build without ASan: its runtime keeps a copy of the environment,
# passphrase included, in every process)
SERVE_BIN=$ARCA_FAST check "serve-imap (without ASan) starts on 127.0.0.1:$P4" start_serve "$T/proc.log" --listen "127.0.0.1:$P4"
PROC=$SERVE_PID
$PY - "$P4" "$T/hold" <<'PY' &
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.recv(1000)
s.sendall(b'a LOGIN alice@example.test alice-pw\r\n')
s.recv(1000)
open(sys.argv[2], 'w').write('x')
time.sleep(60)
s.sendall(b'b LOGOUT\r\n')
PY
HOLD=$!
for i in $(seq 1 100); do [ -s "$T/hold" ] && break; sleep 0.05; done
ACC=$(pgrep -P "$PROC" | head -1)
SESS=$(pgrep -P "${ACC:-0}" | head -1)
NOBODY=$(id -u nobody)
uid_of() { awk '/^Uid:/ {print $2 "," $3 "," $4 "," $5}' "/proc/$1/status"; }
expect_eq "the acceptor runs as nobody" "$(uid_of "${ACC:-0}" 2>/dev/null)" "$NOBODY,$NOBODY,$NOBODY,$NOBODY"
expect_eq "the session runs as nobody" "$(uid_of "${SESS:-0}" 2>/dev/null)" "$NOBODY,$NOBODY,$NOBODY,$NOBODY"
expect_eq "the session has no_new_privs" "$(awk '/^NoNewPrivs:/ {print $2}' "/proc/${SESS:-0}/status" 2>/dev/null)" 1
expect_eq "the session has no supplementary groups" "$(awk '/^Groups:/ {print $2}' "/proc/${SESS:-0}/status" 2>/dev/null)" ""
expect_eq "the acceptor is shut in an empty root" "$(readlink "/proc/${ACC:-0}/root" 2>/dev/null)" /run/arca-serve-empty
expect_eq "the session is shut in an empty root" "$(readlink "/proc/${SESS:-0}/root" 2>/dev/null)" /run/arca-serve-empty
expect_eq "... which is empty" "$(ls -A /run/arca-serve-empty | wc -l)" 0
fds=$(ls -l "/proc/${SESS:-0}/fd" 2>/dev/null | awk '{print $NF}')
if [ -n "${SESS:-}" ] && ! grep -q -e "$R" -e "$T/rk" -e "$T/users" <<<"$fds"; then
	echo "ok - the session holds no repository, key or users file open"
else
	echo "not ok - the session holds no repository, key or users file open"; echo "$fds" | sed 's/^/    /'; _test_failed=1
fi
afds=$(ls -l "/proc/${ACC:-0}/fd" 2>/dev/null | awk '{print $NF}')
if [ -n "${ACC:-}" ] && ! grep -q -e "$R" -e "$T/rk" -e "$T/users" <<<"$afds"; then
	echo "ok - the acceptor holds no repository, key or users file open"
else
	echo "not ok - the acceptor holds no repository, key or users file open"; _test_failed=1
fi
check_fails "the session's user can't read the key file" setpriv --reuid=nobody --regid=nogroup --clear-groups cat "$T/rk"
# secrets live in the keeper only: the passphrase (given in the
# environment, which fork hands down) and the users' hashes are not in the
# session's memory
printf '%s' "$ARCA_PASSPHRASE" >"$T/needle-pass"
sed -n 's/^alice@example.test:\([^:]*\):.*/\1/p' "$T/users" | tr -d '\n' >"$T/needle-hash"
if [ -n "${SESS:-}" ]; then
	$PY "$TOOLS/memscan.py" "$SESS" "$T/needle-pass" 0 "$(stat -c %s "$T/needle-pass")"
	expect_eq "the passphrase is not in the session's memory" "$?" 1
	$PY "$TOOLS/memscan.py" "$SESS" "$T/needle-hash" 0 "$(stat -c %s "$T/needle-hash")"
	expect_eq "alice's password hash is not in the session's memory" "$?" 1
	$PY "$TOOLS/memscan.py" "$PROC" "$T/needle-hash" 0 "$(stat -c %s "$T/needle-hash")"
	expect_eq "... but it is in the keeper's (the scan works)" "$?" 0
fi
# the keeper took the passphrase out of its environment once read
n=$(tr '\0' '\n' <"/proc/$PROC/environ" 2>/dev/null | grep -c -e "$ARCA_PASSPHRASE")
expect_eq "the passphrase is gone from the keeper's /proc/PID/environ" "$n" 0
# the acceptor dies with the keeper even when it can't notice (stopped):
# its parent-death signal survived the change of user
SESSPID=${SESS:-0}
kill -STOP "${ACC:-0}" 2>/dev/null
kill -KILL "$PROC"; wait "$PROC" 2>/dev/null
st=stopped
for i in $(seq 1 40); do
	st=$(awk '/^State:/ {print $2}' "/proc/${ACC:-0}/status" 2>/dev/null)
	case "$st" in ''|Z) st=gone; break ;; esac
	sleep 0.05
done
expect_eq "the acceptor (stopped) dies with the keeper" "$st" gone
kill -CONT "${ACC:-0}" 2>/dev/null
for i in $(seq 1 40); do [ -d "/proc/$SESSPID" ] || break; sleep 0.05; done
check "... and so does the session" test ! -d "/proc/$SESSPID"
kill "$HOLD" 2>/dev/null; wait "$HOLD" 2>/dev/null

# ---- refusals
imap_script() {  # PORT then lines "SEND ..."; prints every line received
	$PY - "$@" <<'PY'
import socket, sys
port = int(sys.argv[1])
s = socket.create_connection(('127.0.0.1', port), timeout=20)
f = s.makefile('rb')
print(f.readline().decode(errors='replace').rstrip())
for i, cmd in enumerate(sys.argv[2:]):
    tag = 't%d' % i
    s.sendall(('%s %s\r\n' % (tag, cmd.replace('<CRLF>', '\r\n'))).encode())
    while True:
        l = f.readline()
        if not l:
            print('EOF'); sys.exit(0)
        l = l.decode(errors='replace').rstrip()
        print(l)
        if l.startswith(tag + ' '):
            break
PY
}
out=$(imap_script "$P1" 'LOGIN alice@example.test wrong')
check "a wrong password is refused" grep -q '^t0 NO' <<<"$out"
out=$(imap_script "$P1" 'LOGIN alice@example.test alice-pw' 'SELECT INBOX' 'UID STORE 1:* +FLAGS (\Deleted)' \
	'STORE 1 FLAGS (\Seen)' 'EXPUNGE' 'CREATE NewFolder' 'DELETE INBOX' 'RENAME INBOX Other' \
	'COPY 1 INBOX' 'APPEND INBOX {5+}<CRLF>hello' 'LOGOUT')
for w in 2 3 4 5 6 7 8; do
	check "write command $w is refused" grep -Eq "^t$w (NO|BAD)" <<<"$out"
done
check "APPEND refused" grep -Eq '^t9 (NO|BAD)' <<<"$out"
# nothing changed: the view is the same as before
check "alice's view unchanged after the refused writes" bash -c "$PY '$TOOLS/imapdump.py' --modseq -o '$T/sv2.json' 127.0.0.1 $P1 alice@example.test alice-pw && $PY '$TOOLS/imapdump.py' --compare '$T/dc-alice@example.test.json' '$T/sv2.json'"
# another account's mail
out=$(imap_script "$P1" 'LOGIN alice@example.test alice-pw' 'LIST "" "*"' 'EXAMINE "bob@example.test"' 'LOGOUT')
if grep -q '^t1 OK' <<<"$out" && ! grep '^\* LIST' <<<"$out" | grep -qi 'bob'; then echo "ok - alice's LIST names nothing of bob's"; else echo "not ok - alice's LIST names nothing of bob's"; _test_failed=1; fi
check "no folder reaches bob's mail" grep -Eq '^t2 (NO|BAD)' <<<"$out"
out=$(imap_script "$P1" 'LOGIN "alice@example.test*admin" masterpw')
check "no master-user login" grep -q '^t0 NO' <<<"$out"

# ---- --separator / overrides the snapshot's '.' (a Dovecot configured
# with "separator = /" on Maildir++ showed that)
check "serve-imap --separator / starts" start_serve "$T/sep.log" --listen "127.0.0.1:$P4" --separator /
out=$(imap_script "$P4" 'LOGIN alice@example.test alice-pw' 'NAMESPACE' 'LIST "" Archiv*' 'LSUB "" Old*' \
	'EXAMINE Archiv/2019/&ANw-bersicht' 'LOGOUT')
check "--separator /: NAMESPACE says '/'" grep -qF '* NAMESPACE (("" "/")) NIL NIL' <<<"$out"
check "--separator /: LIST shows Archiv/2019" grep -qF '* LIST (\HasChildren) "/" Archiv/2019' <<<"$out"
check "--separator /: LSUB shows Old/Gone" grep -qF '* LSUB () "/" Old/Gone' <<<"$out"
check "--separator /: a nested folder opens by its '/' name" grep -q '^t4 OK \[READ-ONLY\]' <<<"$out"
kill "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null

# ---- the client mirrored before the attack, pointed at serve-imap
if [ -n "$MBSYNC" ]; then
	echo alice-pw >"$T/mb-pass2"
	mbsync_conf "$P1" "$T/mirror" 'alice@example.test' "$T/mb-pass2" >"$T/mbsyncrc-sv"
	# the state files remember the server's UIDVALIDITY: a change would fail
	check "mbsync against serve-imap: no error (no UIDVALIDITY change)" "$MBSYNC" -c "$T/mbsyncrc-sv" -a
	find "$T/mirror" -type f -path '*/cur/*' -o -type f -path '*/new/*' | sort >"$T/mirror-after"
	check "mbsync downloaded nothing and deleted nothing locally" cmp "$T/mirror-before" "$T/mirror-after"
fi

# ---- throttling (last: every client here comes from 127.0.0.1)
out=$(imap_script "$P1" 'LOGIN carol@other.test x1' 'LOGIN carol@other.test x2' 'LOGIN carol@other.test x3')
out=$(imap_script "$P1" 'LOGIN carol@other.test carol-pw')
check "3 wrong passwords, then even the right one is refused for now" grep -q '^t0 NO \[UNAVAILABLE\]' <<<"$out"
check "the log says throttled" grep -q "login refused: carol@other.test from 127.0.0.1: too many failures" "$T/serve.log"

# ---- TLS with a private CA: implicit TLS and STARTTLS
_dovecot_make_tls "$T/ca" || echo "not ok - make a CA"
check "serve-imap with TLS starts" start_serve "$T/tls.log" --listen "127.0.0.1:$P2" --listen-tls "127.0.0.1:$P3" \
	--tls-cert "$T/ca/tls/server.pem" --tls-key "$T/ca/tls/server.key"
tls_check() {  # MODE(implicit|starttls) PORT
	$PY - "$@" "$T/ca/tls/ca.pem" <<'PY'
import socket, ssl, sys
mode, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.minimum_version = ssl.TLSVersion.TLSv1_2
raw = socket.create_connection(('127.0.0.1', port), timeout=20)
if mode == 'starttls':
    f = raw.makefile('rb')
    g = f.readline()
    assert g.startswith(b'* OK'), g
    raw.sendall(b's CAPABILITY\r\n')
    caps = b''
    while True:
        l = f.readline()
        caps += l
        if l.startswith(b's '):
            break
    assert b'STARTTLS' in caps, caps
    raw.sendall(b's2 STARTTLS\r\n')
    l = f.readline()
    assert l.startswith(b's2 OK'), l
    s = ctx.wrap_socket(raw, server_hostname='127.0.0.1')
else:
    s = ctx.wrap_socket(raw, server_hostname='127.0.0.1')
f = s.makefile('rb')
if mode != 'starttls':
    assert f.readline().startswith(b'* OK')
s.sendall(b'a LOGIN bob@example.test bob-pw\r\n')
while True:
    l = f.readline()
    if l.startswith(b'a '):
        assert l.startswith(b'a OK'), l
        break
s.sendall(b'b EXAMINE INBOX\r\n')
uv = None
while True:
    l = f.readline()
    if b'UIDVALIDITY' in l:
        uv = int(l.split(b'UIDVALIDITY ')[1].split(b']')[0])
    if l.startswith(b'b '):
        assert l.startswith(b'b OK'), l
        break
s.sendall(b'c LOGOUT\r\n')
print(uv, s.version())
PY
}
dc_uv=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["folders"]["INBOX"]["uidvalidity"])' "$T/dc-bob@example.test.json")
out=$(tls_check implicit "$P3" 2>&1)
check "implicit TLS: verified by the private CA, LOGIN, same UIDVALIDITY ($out)" grep -q "^$dc_uv TLSv1.[23]" <<<"$out"
out=$(tls_check starttls "$P2" 2>&1)
check "STARTTLS: verified by the private CA, LOGIN, same UIDVALIDITY ($out)" grep -q "^$dc_uv TLSv1.[23]" <<<"$out"
kill "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null
check "SIGTERM stops it, the log says so" grep -q "stopping" "$T/tls.log"

# ---- the keeper's descriptor table: with 48 open files at most, sessions
# are capped to what fits (the log says so) and 45 idle connections don't
# stop the server
read -r P5 P6 <<<"$(_dovecot_free_ports 2)"
printf '#!/bin/bash\nulimit -n 48\nexec "%s" "$@"\n' "$ARCA" >"$T/lowfd"
chmod +x "$T/lowfd"
SERVE_BIN=$T/lowfd check "serve-imap under ulimit -n 48 starts" start_serve "$T/fd.log" --listen "127.0.0.1:$P5" --max-per-address 100
FDS=$SERVE_PID
check "... lowering --max-sessions to what fits" grep -q "max-sessions lowered from 1000 to 16" "$T/fd.log"
out=$($PY - "$P5" <<'PY'
import socket, sys
port = int(sys.argv[1])
conns, ok, bye = [], 0, 0
for i in range(45):
    s = socket.create_connection(('127.0.0.1', port), timeout=10)
    g = s.recv(1000)
    ok += g.startswith(b'* OK')
    bye += g.startswith(b'* BYE [UNAVAILABLE]')
    conns.append((s, g))
# one of the sessions logs in: the keeper still serves
s = next(c for c, g in conns if g.startswith(b'* OK'))
s.sendall(b'a LOGIN alice@example.test alice-pw\r\n')
ans = b''
while b'\r\n' not in ans:
    d = s.recv(1000)
    if not d:
        break
    ans += d
print(ok, bye, ans.split(b' ')[1].decode() if ans else 'EOF')
PY
)
expect_eq "45 connections: 16 served, 29 told BYE, a login works" "$out" "16 29 OK"
check "the server still runs" kill -0 "$FDS"
kill "$FDS" 2>/dev/null; wait "$FDS" 2>/dev/null
check "... and stopped cleanly" grep -q "stopping" "$T/fd.log"

# ---- per address, and the network timeouts (handshake, write)
check "serve-imap with --max-per-address 3, 2 s timeouts starts" start_serve "$T/to.log" --listen "127.0.0.1:$P6" \
	--listen-tls "127.0.0.1:$P3" --tls-cert "$T/ca/tls/server.pem" --tls-key "$T/ca/tls/server.key" \
	--max-per-address 3 --tls-handshake-timeout 2 --write-timeout 2
TO=$SERVE_PID
out=$($PY - "$P6" <<'PY'
import socket, sys
port = int(sys.argv[1])
cs = [socket.create_connection(('127.0.0.1', port), timeout=10) for i in range(4)]
print(' '.join(c.recv(1000).split(b' ')[1].decode() for c in cs))
PY
)
expect_eq "a fourth connection from one address is told BYE" "$out" "OK OK OK BYE"
check "... and the log says why" grep -q "refused: 3 sessions from that address" "$T/to.log"
# a client silent on the TLS port is dropped after the handshake timeout
out=$($PY - "$P3" <<'PY'
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=15)
t0 = time.monotonic()
try:
    d = s.recv(1000)
except socket.timeout:
    d = None
print('EOF' if d == b'' else 'open', int(time.monotonic() - t0))
PY
)
case "$out" in "EOF "[1-5]) echo "ok - a silent client on the TLS port is dropped after the handshake timeout ($out s)" ;;
	*) echo "not ok - a silent client on the TLS port is dropped after the handshake timeout ($out)"; _test_failed=1 ;; esac
# a client that stops reading is dropped after the write timeout
out=$($PY - "$P6" <<'PY'
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(('127.0.0.1', int(sys.argv[1])))
s.settimeout(10)
f = s.makefile('rb')
f.readline()
s.sendall(b'a LOGIN bob@example.test bob-pw\r\nb EXAMINE INBOX\r\n')
while not f.readline().startswith(b'b '):
    pass
# many large answers asked for, none read
s.sendall(b''.join(b'f%d FETCH 1:* BODY.PEEK[]\r\n' % i for i in range(60)))
time.sleep(6)
t0 = time.monotonic()
res = 'open'
try:
    while True:
        d = s.recv(1 << 20)
        if not d:
            res = 'EOF'
            break
except socket.timeout:
    pass
print(res)
PY
)
expect_eq "a client that stops reading is dropped after the write timeout" "$out" EOF
kill "$TO" 2>/dev/null; wait "$TO" 2>/dev/null

# ---- no plain listener off loopback
"$ARCA" serve-imap --repo "$R" --restore-key "$T/rk" --users "$T/users" --listen "0.0.0.0:$P2" >/dev/null 2>"$T/nonloop.err"
expect_eq "a non-loopback address without TLS: refused (exit 1)" "$?" 1
check "... saying it needs TLS" grep -q "needs TLS" "$T/nonloop.err"

# ---- without root, no listener off loopback (even with TLS): the sessions
# would run as the key holder's user
NR=$T/nonroot
mkdir -p "$NR/repo"
cp "$R/config" "$NR/repo/config"
cp "$T/rk" "$T/users" "$T/ca/tls/server.pem" "$T/ca/tls/server.key" "$NR/"
chmod -R a+rX "$NR"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$ARCA" serve-imap --repo "$NR/repo" --restore-key "$NR/rk" \
	--users "$NR/users" --listen "0.0.0.0:$P2" --tls-cert "$NR/server.pem" --tls-key "$NR/server.key" \
	>/dev/null 2>"$T/nonroot.err"
expect_eq "not root, a non-loopback address with TLS: refused (exit 1)" "$?" 1
check "... saying it needs root" grep -q "needs arca serve-imap started as root" "$T/nonroot.err"

kill "$MAIN" 2>/dev/null; wait "$MAIN" 2>/dev/null

# ---- LAYOUT=fs: Dovecot shows '/', the pull records it, serve-imap shows it
D2=$T/dcfs
R2=$T/repo-fs
if dovecot_start "$D2" fs >/dev/null; then
	"$ARCA" init --repo "$R2" --restore-key "$T/rk2" >/dev/null
	chmod 600 "$T/rk2"
	echo alice@example.test >"$T/accounts-fs"
	check "LAYOUT=fs: populate alice" $PY "$TOOLS/populate.py" --host 127.0.0.1 --imap-port "$DOVECOT_IMAP_PORT" \
		--lmtp-port "$DOVECOT_LMTP_PORT" --sieve-port "$DOVECOT_SIEVE_PORT" \
		--master-user admin --master-password masterpw \
		--accounts alice@example.test --messages-dir "$CORPUS" --count 15 --seed 12
	check "LAYOUT=fs: pull" "$ARCA" pull imap --repo "$R2" --host 127.0.0.1 --port "$DOVECOT_IMAP_PORT" \
		--master-user admin --password-file "$T/masterpw" --accounts-from "$T/accounts-fs"
	check "LAYOUT=fs: Dovecot's view" $PY "$TOOLS/imapdump.py" --modseq -o "$T/dcfs.json" 127.0.0.1 \
		"$DOVECOT_IMAP_PORT" "alice@example.test*admin" masterpw
	dovecot_stop >/dev/null
	rm -rf "${D2:?}/mail/"*
	read -r P5 <<<"$(_dovecot_free_ports 1)"
	SERVE_REPO=$R2 SERVE_KEY=$T/rk2 check "LAYOUT=fs: serve-imap starts" start_serve "$T/fs.log" --listen "127.0.0.1:$P5"
	check "LAYOUT=fs: serve-imap's view" $PY "$TOOLS/imapdump.py" --modseq -o "$T/svfs.json" 127.0.0.1 "$P5" \
		alice@example.test alice-pw
	check "LAYOUT=fs: serve-imap shows what Dovecot showed (folders with '/', the gone subscription, messages)" \
		$PY "$TOOLS/imapdump.py" --compare "$T/dcfs.json" "$T/svfs.json"
	check "LAYOUT=fs: Dovecot showed '/' and Old/Gone (the test can fail)" $PY -c 'import json,sys
f=json.load(open(sys.argv[1]))["folders"]
assert f["Old/Gone"]["subscribed"] and not f["Old/Gone"]["exists"], f.get("Old/Gone")
assert {v["delimiter"] for v in f.values() if v["exists"]} == {"/"}' "$T/dcfs.json"
	kill "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null
else
	echo "not ok - dovecot (LAYOUT=fs) starts"; _test_failed=1
fi

for e in serve proc tls sep fs fd to; do check "no error line (nor leak) in the $e instance's stderr" test ! -s "$T/$e.log.err"; done
check "serve-imap logged no protocol break" bash -c "! grep -q 'broke the channel protocol' '$T/serve.log'"
test_done
