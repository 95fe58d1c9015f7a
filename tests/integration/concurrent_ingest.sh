#!/bin/bash
# Two runs against one repository at once (issue 2: "Two runs against one
# repository at once are safe"): two `arca ingest` of different accounts, and
# of the same account, started with different delays and thread counts, 20
# times, some into a fresh repository (both write new packs), some into the
# previous one (incremental, a new message each time); meanwhile `arca
# snapshots` and `arca verify` run in a loop.  Every run must succeed, the
# repository must verify with the restore key, and every snapshot must
# restore exactly what its Maildir held.
set -u
. "$(dirname "$0")/../lib/common.sh"
T=$(test_tmpdir concurrent)
# Private copies: a rebuild while the test runs must not swap the binaries.
# A: the last rounds and the four-at-once run (the ASan build when there is
# one); F: the other rounds, set-up, checks.
cp "$ARCA" "$T/arca" && A=$T/arca
if [ -x "$ARCA_FAST" ]; then cp "$ARCA_FAST" "$T/arca-fast" && F=$T/arca-fast; else F=$A; fi
# Debian's python3 (the tools' #! line): a version manager's shim in PATH
# can take a good part of a second to start.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
export ARCA_PASSPHRASE=concurrent-test-pass ARCA_TEST_FAST_KDF=1
ROUNDS=${CONCURRENT_ROUNDS:-20}

$PY "$ARCA_ROOT/tests/tools/mkmaildir.py" "$T/m1" --messages 300 --big 2 --seed 21
$PY "$ARCA_ROOT/tests/tools/mkmaildir.py" "$T/m2" --messages 300 --big 1 --seed 22

# ingest_bg N BIN ACCOUNT MAILDIR: after a random delay of 0-80 ms, with 1 or
# 2 reader threads; exit code in $T/rcN, JSON on $T/outN, stderr in $T/errN
ingest_bg() {
	local n=$1 bin=$2 acct=$3 md=$4
	sleep "0.0$((RANDOM % 9))"
	ARCA_THREADS=$((RANDOM % 2 + 1)) "$bin" ingest maildir --repo "$T/repo" --account "$acct" \
		--json "$md" >"$T/out$n" 2>"$T/err$n"
	echo $? >"$T/rc$n"
}
# readers BIN: `arca snapshots` and `arca verify` (with the restore key every
# other time) in a loop until $T/stop
readers() {
	local bin=$1 rounds=0 bad=0 key
	while [ ! -e "$T/stop" ]; do
		key=()
		[ $((rounds % 2)) -eq 1 ] && key=(--restore-key "$T/rk")
		"$bin" snapshots --repo "$T/repo" --json >"$T/snaps" 2>"$T/rerr" &&
			head -c 1 "$T/snaps" | grep -q '\[' && tail -c 2 "$T/snaps" | grep -q ']' ||
			{ bad=$((bad + 1)); echo "# snapshots during ingest:"; head -3 "$T/rerr" "$T/snaps"; }
		"$bin" verify --repo "$T/repo" "${key[@]}" >/dev/null 2>"$T/verr" ||
			{ bad=$((bad + 1)); echo "# verify during ingest:"; head -5 "$T/verr"; }
		rounds=$((rounds + 1))
	done
	echo "$rounds $bad" >"$T/readers"
}

bad_rc=0; bad_verify=0; bad_restore=0; bad_readers=0; reader_rounds=0; snaps=0; bad_tmp=0
for i in $(seq 1 "$ROUNDS"); do
	bin=$F
	[ $i -gt $((ROUNDS - 4)) ] && bin=$A     # the last rounds with ASan
	if [ $((i % 4)) -eq 1 ] || [ $((i % 4)) -eq 2 ]; then
		rm -rf "$T/repo" "$T/rk"
		"$F" init --repo "$T/repo" --restore-key "$T/rk" >/dev/null
	else
		# incremental: one new message in each Maildir
		for m in m1 m2; do
			printf 'Subject: round %d\n\nnew\n' $i >"$T/$m/new/$((1600000000 + i)).M${i}P1.round"
		done
	fi
	if [ $((i % 2)) -eq 1 ]; then
		acct1=a@x md1=$T/m1 acct2=b@x md2=$T/m2
	else
		acct1=s@x md1=$T/m1 acct2=s@x md2=$T/m1
	fi
	rm -f "$T/stop" "$T/rc1" "$T/rc2"
	readers "$bin" &
	rpid=$!
	ingest_bg 1 "$bin" "$acct1" "$md1" &
	p1=$!
	ingest_bg 2 "$bin" "$acct2" "$md2" &
	p2=$!
	wait $p1 $p2
	touch "$T/stop"
	wait $rpid
	read -r rr rb <"$T/readers"
	reader_rounds=$((reader_rounds + rr)); bad_readers=$((bad_readers + rb))
	for n in 1 2; do
		if [ "$(cat "$T/rc$n")" != 0 ]; then
			bad_rc=$((bad_rc + 1)); echo "# round $i, ingest $n: exit $(cat "$T/rc$n")"; head -5 "$T/err$n"
		fi
	done
	if ! "$F" verify --repo "$T/repo" --restore-key "$T/rk" >"$T/v" 2>&1; then
		bad_verify=$((bad_verify + 1)); echo "# round $i:"; head -5 "$T/v"
	fi
	# both snapshots, by id, each exactly its Maildir
	for n in 1 2; do
		id=$(grep -o '"id":"[0-9a-f]*"' "$T/out$n" | cut -d'"' -f4)
		[ $n = 1 ] && { acct=$acct1; md=$md1; } || { acct=$acct2; md=$md2; }
		rm -rf "$T/o"
		if [ -z "$id" ] ||
		   ! "$F" restore maildir --repo "$T/repo" --account "$acct" --restore-key "$T/rk" \
			--snapshot "$id" "$T/o" >/dev/null 2>"$T/rerr" ||
		   ! $PY "$ARCA_ROOT/tests/tools/treecmp.py" "$md" "$T/o" >"$T/cmp" 2>&1; then
			bad_restore=$((bad_restore + 1))
			echo "# round $i, snapshot ${id:-(none)} of $acct:"; head -3 "$T/rerr" "$T/cmp"
		else
			snaps=$((snaps + 1))
		fi
	done
	if [ -n "$(ls -A "$T/repo/tmp" 2>/dev/null)" ]; then
		bad_tmp=$((bad_tmp + 1)); echo "# round $i: left in tmp/: $(ls "$T/repo/tmp" | head -3)"
	fi
done
check "two concurrent ingests both succeeded, $ROUNDS times" test $bad_rc -eq 0
check "the repository verified with the restore key after each round" test $bad_verify -eq 0
check "every snapshot restored exactly its Maildir ($snaps of $((ROUNDS * 2)))" test $bad_restore -eq 0
check "snapshots and verify never failed while ingests ran ($reader_rounds rounds)" \
	test $bad_readers -eq 0 -a $reader_rounds -ge $ROUNDS
check "no temporary file was left behind" test $bad_tmp -eq 0

# Four at once: two accounts, each twice.
rm -rf "$T/repo" "$T/rk"
"$F" init --repo "$T/repo" --restore-key "$T/rk" >/dev/null
ingest_bg 1 "$A" a@x "$T/m1" &
ingest_bg 2 "$A" b@x "$T/m2" &
ingest_bg 3 "$A" a@x "$T/m1" &
ingest_bg 4 "$A" b@x "$T/m2" &
wait
check "four ingests at once all succeeded" \
	eval 'cat "$T"/err[1-4]; [ "$(cat "$T"/rc[1-4] | tr -d "\n")" = 0000 ]'
check "... the repository has their 4 snapshots and verifies with the restore key" \
	eval '[ "$("$A" snapshots --repo "$T/repo" --json | grep -c "\"id\"")" -eq 4 ] &&
	      "$A" verify --repo "$T/repo" --restore-key "$T/rk"'
for acct in a@x b@x; do
	md=$T/m1
	[ $acct = b@x ] && md=$T/m2
	rm -rf "$T/o"
	check "... the latest snapshot of $acct restores exactly" \
		eval '"$A" restore maildir --repo "$T/repo" --account $acct --restore-key "$T/rk" "$T/o" >/dev/null &&
		      $PY "$ARCA_ROOT/tests/tools/treecmp.py" "$md" "$T/o"'
done
test_done
