#!/bin/bash
# arca pull imap over TLS against a Dovecot with a private CA: implicit TLS
# and STARTTLS (IMAP and ManageSieve) work when the certificate checks out,
# and are refused — before any password is sent — when it doesn't (unknown
# CA, wrong name).  Plain text to a host that isn't loopback is refused.
# Also: per-account credentials instead of a master user, and the account
# list from a command (doveadm user '*').
set -u
. "$(dirname "$0")/../lib/common.sh"
. "$ARCA_ROOT/tests/lib/dovecot.sh"
. "$ARCA_ROOT/tests/lib/corpus.sh"
PY=/usr/bin/python3
TOOLS=$ARCA_ROOT/tests/tools
export ARCA_PASSPHRASE=tls-pass ARCA_TEST_FAST_KDF=1
T=$(test_tmpdir tls)
CORPUS=$(corpus_dir) || { echo "not ok - corpus available"; exit 1; }

DOVECOT_TLS=1 dovecot_start "$T/dc" fs >/dev/null || { echo "not ok - dovecot with TLS starts"; exit 1; }
check "populate alice and bob" $PY "$TOOLS/populate.py" --host 127.0.0.1 --imap-port "$DOVECOT_IMAP_PORT" \
	--lmtp-port "$DOVECOT_LMTP_PORT" --sieve-port "$DOVECOT_SIEVE_PORT" --master-user admin \
	--master-password masterpw --accounts alice@example.test,bob@example.test \
	--messages-dir "$CORPUS" --count 10 --seed 9
echo masterpw >"$T/masterpw"
R=$T/repo
"$ARCA" init --repo "$R" --restore-key "$T/rk" >/dev/null
pull() {  # HOST PORT extra...
	local host=$1 port=$2; shift 2
	"$ARCA" pull imap --repo "$R" --host "$host" --port "$port" --master-user admin \
		--password-file "$T/masterpw" --account alice@example.test "$@"
}

check "implicit TLS to 127.0.0.1 with the CA" pull 127.0.0.1 "$DOVECOT_IMAPS_PORT" --tls --ca-file "$DOVECOT_TLS_CA"
check "implicit TLS to localhost (name checked) with the CA" pull localhost "$DOVECOT_IMAPS_PORT" --tls --ca-file "$DOVECOT_TLS_CA"
check "STARTTLS for IMAP and ManageSieve" pull 127.0.0.1 "$DOVECOT_IMAP_PORT" --starttls \
	--ca-file "$DOVECOT_TLS_CA" --sieve-port "$DOVECOT_SIEVE_PORT"
pull 127.0.0.1 "$DOVECOT_IMAPS_PORT" --tls >"$T/out" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && grep -q "certificate not trusted" "$T/out"; then
	echo "ok - a CA the system doesn't know is refused (exit $rc)"
else
	echo "not ok - unknown CA refused (exit $rc)"; cat "$T/out"; _test_failed=1
fi
# a certificate for localhost/127.0.0.1 presented for another name: "127.1"
# reaches 127.0.0.1 (inet_aton form) but is checked as a name

pull 127.1 "$DOVECOT_IMAPS_PORT" --tls --ca-file "$DOVECOT_TLS_CA" >"$T/out" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && grep -q "certificate not trusted" "$T/out"; then
	echo "ok - a certificate for another name is refused"
else
	echo "not ok - wrong name refused (exit $rc)"; cat "$T/out"; _test_failed=1
fi
check "no failed LOGIN reached Dovecot during the refused handshakes" \
	sh -c "! grep -q 'auth failed' '$DOVECOT_DIR/dovecot.log'"
check_fails "plain IMAP to a host that isn't loopback is refused" \
	pull arca-elsewhere.invalid 143
check "grep: the refusal says why" sh -c "'$ARCA' pull imap --repo '$R' --host arca-elsewhere.invalid --port 143 --master-user admin --password-file '$T/masterpw' --account a@b 2>&1 | grep -q 'without TLS'"

# per-account credentials, accounts from a command
printf 'alice@example.test pw\nbob@example.test pw\n' >"$T/creds"
check "per-account credentials (no master user)" \
	"$ARCA" pull imap --repo "$R" --host 127.0.0.1 --port "$DOVECOT_IMAPS_PORT" --tls \
	--ca-file "$DOVECOT_TLS_CA" --credentials "$T/creds" --account bob@example.test
"$ARCA" pull imap --repo "$R" --host 127.0.0.1 --port "$DOVECOT_IMAPS_PORT" --tls \
	--ca-file "$DOVECOT_TLS_CA" --master-user admin --password-file "$T/masterpw" \
	--accounts-from "doveadm -c $DOVECOT_CONF user '*'" --json >"$T/all.json" 2>"$T/all.err"
n=$(grep -c '"ok":true' "$T/all.json")
if [ "$n" -eq 3 ]; then echo "ok - accounts from doveadm user '*': 3 pulled"; else echo "not ok - accounts from a command: $n pulled"; cat "$T/all.err"; _test_failed=1; fi
check "verify" "$ARCA" verify --repo "$R" --restore-key "$T/rk"
dovecot_stop "$T/dc" >/dev/null
test_done
