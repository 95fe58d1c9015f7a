#!/bin/bash
# The ManageSieve client (lib/imap/managesieve.c) against a real Dovecot
# (Pigeonhole): upload three scripts for alice with doveadm (a name with a
# space, a non-ASCII name with quotes, LF and CRLF line ends, one script of
# ~200 KB), activate one, give bob one of his own, then fetch alice's with
# test_managesieve --fetch three ways (master user by separator, master user
# with an authorization id, alice herself) and compare byte for byte, the
# active flag included.  Then: a change of the active script is seen, an
# account without scripts gives none, a wrong password and STARTTLS against a
# server without TLS fail with clear messages.
set -u
. "$(dirname "$0")/../lib/common.sh"
. "$ARCA_ROOT/tests/lib/dovecot.sh"

BIN=${ARCA_BIN_ASAN:-$ARCA_ROOT/build-asan}/tests/test_managesieve
[ -x "$BIN" ] || BIN=${ARCA_BIN:-$ARCA_ROOT/build}/tests/test_managesieve
if [ ! -x "$BIN" ]; then
	echo "not ok - test_managesieve is built (make, make asan)"
	exit 1
fi
T=$(test_tmpdir managesieve)
trap 'dovecot_stop "$T/dc" >/dev/null 2>&1; _test_cleanup' EXIT
if ! dovecot_start "$T/dc" >/dev/null; then
	echo "not ok - dovecot starts"
	exit 1
fi
echo "ok - dovecot starts (ManageSieve on port $DOVECOT_SIEVE_PORT)"
PORT=$DOVECOT_SIEVE_PORT

# ---- the scripts --------------------------------------------------------
mkdir -p "$T/src"
NAME1='spam filter'
NAME2='Übung "q"'
NAME3='big-€'
printf 'require "fileinto";\nif header :contains "subject" "[SPAM]" {\n  fileinto "Junk";\n}\n' >"$T/src/1"
printf 'require ["vacation"];\r\n# CRLF line ends, kept as they are\r\nvacation :days 3 "away";\r\n' >"$T/src/2"
{
	echo 'require "fileinto";'
	for i in $(seq 1 4000); do
		echo "# line $i: padding to make the script larger than any read buffer ......"
	done
	echo 'if address :is "from" "boss@example.test" { fileinto "Boss"; }'
} >"$T/src/3"
printf 'discard;\n' >"$T/src/bob"

put() {  # USER NAME FILE [-a]
	dovecot_doveadm sieve put -u "$1" ${4:-} "$2" <"$3"
}
upload_alice() {
	put alice@example.test "$NAME1" "$T/src/1" &&
	put alice@example.test "$NAME2" "$T/src/2" -a &&
	put alice@example.test "$NAME3" "$T/src/3"
}
check "upload three scripts for alice, activate \"$NAME2\"" upload_alice
check "upload one script for bob" put bob@example.test "bob's" "$T/src/bob" -a
check "the third script is larger than 200 KB" test "$(stat -c %s "$T/src/3")" -gt 200000

# ---- fetch and compare --------------------------------------------------

# compare OUT ACTIVE_NAME NAME FILE [NAME FILE ...]: OUT/manifest lists
# exactly these scripts, OUT/NNNN.sieve equal the files, only ACTIVE_NAME active.
compare() {
	local out=$1 active=$2 count=$(( ($# - 2) / 2 )) got idx act len name want
	shift 2
	got=$(wc -l <"$out/manifest")
	[ "$got" -eq "$count" ] || { echo "$got scripts, want $count"; cat "$out/manifest"; return 1; }
	while [ $# -gt 0 ]; do
		local n=$1 f=$2 found=""
		shift 2
		while read -r idx act len name; do
			[ "$name" = "$n" ] || continue
			found=1
			cmp "$out/$idx.sieve" "$f" || { echo "$n differs"; return 1; }
			[ "$len" -eq "$(stat -c %s "$f")" ] || { echo "$n: length $len"; return 1; }
			if [ "$n" = "$active" ]; then want=1; else want=0; fi
			[ "$act" = "$want" ] || { echo "$n: active $act"; return 1; }
		done <"$out/manifest"
		[ -n "$found" ] || { echo "$n not fetched"; cat "$out/manifest"; return 1; }
	done
}

fetch() {  # OUT ARGS...
	local out=$1
	shift
	mkdir -p "$out" && "$BIN" --fetch 127.0.0.1 "$PORT" "$@" --out "$out" >"$out/manifest"
}

ALICE=("$NAME1" "$T/src/1" "$NAME2" "$T/src/2" "$NAME3" "$T/src/3")
check "fetch as alice@example.test*admin (master user by separator)" \
	fetch "$T/f1" 'alice@example.test*admin' masterpw
check "  exactly alice's three scripts, byte for byte, \"$NAME2\" active" \
	compare "$T/f1" "$NAME2" "${ALICE[@]}"
check "fetch as admin with authzid alice@example.test" \
	fetch "$T/f2" admin masterpw --authzid alice@example.test
check "  exactly alice's three scripts, byte for byte, \"$NAME2\" active" \
	compare "$T/f2" "$NAME2" "${ALICE[@]}"
check "fetch as alice@example.test herself" fetch "$T/f3" alice@example.test pw
check "  the same scripts" compare "$T/f3" "$NAME2" "${ALICE[@]}"
check "fetch bob's with the master user" fetch "$T/f4" 'bob@example.test*admin' masterpw
check "  only bob's script, active" compare "$T/f4" "bob's" "bob's" "$T/src/bob"
check "fetch carol's (none)" fetch "$T/f5" 'carol@other.test*admin' masterpw
check "  no scripts" test ! -s "$T/f5/manifest"

check "activate \"$NAME1\" instead" dovecot_doveadm sieve activate -u alice@example.test "$NAME1"
check "fetch again" fetch "$T/f6" 'alice@example.test*admin' masterpw
check "  \"$NAME1\" is now the active one" compare "$T/f6" "$NAME1" "${ALICE[@]}"
check "deactivate all" dovecot_doveadm sieve deactivate -u alice@example.test
check "fetch again" fetch "$T/f7" 'alice@example.test*admin' masterpw
check "  none is active" compare "$T/f7" "" "${ALICE[@]}"

# ---- failures -----------------------------------------------------------
"$BIN" --fetch 127.0.0.1 "$PORT" 'alice@example.test*admin' wrong >/dev/null 2>"$T/err1"
rc=$?
check "a wrong master password fails (exit 2)" test $rc -eq 2
check "  naming the server, the login and Dovecot's answer" \
	grep -q "managesieve 127.0.0.1:$PORT: AUTHENTICATE as \"alice@example.test\*admin\": the server answered NO \"Authentication failed.\"" "$T/err1"
"$BIN" --fetch 127.0.0.1 "$PORT" admin masterpw --authzid nobody@example.test >/dev/null 2>"$T/err2"
check "an unknown authorization id fails" test $? -eq 2
"$BIN" --fetch 127.0.0.1 "$PORT" alice@example.test pw --starttls >/dev/null 2>"$T/err3"
rc=$?
check "STARTTLS asked of a server without TLS fails" test $rc -eq 2
check "  saying the server does not offer it" grep -q "STARTTLS was asked for but the server does not offer it" "$T/err3"
"$BIN" --fetch 127.0.0.1 1 alice@example.test pw >/dev/null 2>"$T/err4"
check "a closed port fails" test $? -eq 2

check "dovecot stops" dovecot_stop "$T/dc"
test_done
