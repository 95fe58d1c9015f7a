#!/bin/bash
# arcad runs `arca pull imap` on a schedule (arcad/puller.c): pulls happen
# by themselves, their progress and results show in `arca status`, a mail
# server that can't be reached is retried with backoff, and the journal
# falling silent raises a standing alarm (log entry, hook, arca status).
set -u
. "$(dirname "$0")/../lib/common.sh"
. "$ARCA_ROOT/tests/lib/dovecot.sh"
. "$ARCA_ROOT/tests/lib/arcad.sh"
. "$ARCA_ROOT/tests/lib/corpus.sh"
PY=/usr/bin/python3
TOOLS=$ARCA_ROOT/tests/tools
export ARCA_PASSPHRASE=arcad-pull ARCA_TEST_FAST_KDF=1
T=$(test_tmpdir apull)
CORPUS=$(corpus_dir) || { echo "not ok - corpus available"; exit 1; }
ACCTS="alice@example.test bob@example.test carol@other.test"

state() {  # REPO KEY: a field of REPO/state/pull.json
	$PY -c 'import json,sys; print(json.load(open(sys.argv[1]+"/state/pull.json")).get(sys.argv[2],""))' "$1" "$2" 2>/dev/null
}
at_least() {  # REPO KEY N: the state's KEY is >= N (evaluated each time)
	[ "$(state "$1" "$2")" -ge "$3" ] 2>/dev/null
}
wait_for() {  # SECONDS COMMAND...: until COMMAND succeeds
	local n=$(($1 * 10)); shift
	while [ "$n" -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; n=$((n - 1)); done
	return 1
}

dovecot_start "$T/dc" maildirpp >/dev/null || { echo "not ok - dovecot starts"; exit 1; }
check "populate 3 accounts" $PY "$TOOLS/populate.py" --host 127.0.0.1 --imap-port "$DOVECOT_IMAP_PORT" \
	--lmtp-port "$DOVECOT_LMTP_PORT" --sieve-port "$DOVECOT_SIEVE_PORT" --master-user admin \
	--master-password masterpw --accounts "${ACCTS// /,}" --messages-dir "$CORPUS" --count 15 --seed 5
echo masterpw >"$T/masterpw"
printf '%s\n' $ACCTS >"$T/accounts"
R=$T/repo
"$ARCA" init --repo "$R" --restore-key "$T/rk" >/dev/null
read -r port <<<"$(arcad_free_ports 1)"

# pulls every 10 s, and a journal that must not stay silent for more than 4 s
check "arcad starts with scheduled pulls and a journal-silence alarm" \
	arcad_start "$T/a" "$R" "$port" --pull-every 10s --pull-host 127.0.0.1 \
	--pull-port "$DOVECOT_IMAP_PORT" --pull-master-user admin --pull-password-file "$T/masterpw" \
	--pull-accounts-from "$T/accounts" --pull-sieve-port "$DOVECOT_SIEVE_PORT" --pull-parallel 2 \
	--journal-silence 4s --alarm-exec "cat >>'$T/hook.txt'"
check "the first pull runs by itself" wait_for 60 at_least "$R" runs 1
expect_eq "first pull: 3 accounts done" "$(state "$R" done)" 3
expect_eq "first pull: 3 new snapshots" "$(state "$R" new_snapshots)" 3
expect_eq "first pull: result ok" "$(state "$R" last_result)" ok
"$ARCA" status --repo "$R" >"$T/status.txt"
check "arca status shows the pulls" grep -q "^pulls (arcad, every 10 s): last finished .*: ok" "$T/status.txt"
check "arca status --json carries the pull state" \
	sh -c "'$ARCA' status --repo '$R' --json | $PY -c 'import json,sys; d=json.load(sys.stdin); assert d[\"pull\"][\"runs\"]>=1'"
check "a second pull comes by itself (nothing changed)" wait_for 40 at_least "$R" runs 2
expect_eq "second pull: 3 unchanged" "$(state "$R" unchanged)" 3
# the journal stayed silent since the start
check "journal silence raises an alarm" wait_for 20 grep -q "ALARM: no mail journaled" "$T/a/arcad.log"
check "the silence alarm is in arca status" sh -c "'$ARCA' status --repo '$R' | grep -q 'ALARM .*journal-silent'"
check "the hook heard of it" grep -q "journal-silent" "$T/hook.txt"
check "arcad stops cleanly on SIGTERM" arcad_stop "$T/a"
check "pulls left a verifiable repository" "$ARCA" verify --repo "$R" --restore-key "$T/rk"

# a mail server that can't be reached: the run fails, the next comes sooner
read -r dead <<<"$(arcad_free_ports 1)"
R2=$T/repo2
"$ARCA" init --repo "$R2" --restore-key "$T/rk2" >/dev/null
read -r port2 <<<"$(arcad_free_ports 1)"
check "arcad starts against an unreachable server" \
	arcad_start "$T/b" "$R2" "$port2" --pull-every 1h --pull-host 127.0.0.1 --pull-port "$dead" \
	--pull-master-user admin --pull-password-file "$T/masterpw" --pull-accounts-from "$T/accounts"
check "the failed run is recorded" wait_for 40 at_least "$R2" failures_in_a_row 1
$PY - "$R2" <<'PY'
import json, sys, datetime
d = json.load(open(sys.argv[1] + "/state/pull.json"))
f = datetime.datetime.strptime(d["finished"], "%Y-%m-%dT%H:%M:%SZ")
n = datetime.datetime.strptime(d["next"], "%Y-%m-%dT%H:%M:%SZ")
wait = (n - f).total_seconds()
ok = 50 <= wait <= 70 and d["last_result"] == "failed"
print(("ok" if ok else "not ok") + " - backoff: retried in %d s, not in an hour (%s)" % (wait, d["last_result"]))
PY
check "arca status says why" sh -c "'$ARCA' status --repo '$R2' | grep -q 'every account failed'"
check "arcad stops" arcad_stop "$T/b"
dovecot_stop "$T/dc" >/dev/null
test_done
