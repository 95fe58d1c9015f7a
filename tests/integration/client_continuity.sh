#!/bin/bash
# Issue 5, the story's ending: clients that mirrored their mail before the
# attack keep everything.  Two clients mirror alice's and bob's accounts
# from Dovecot: mbsync (isync) into a local Maildir (Sync All, as a user
# would set it up) and a scripted client that caches messages by UID
# (tests/tools/uidcache.py).  The vault pulls.  Then the mail store is
# wiped and Dovecot is gone; `arca serve-imap` serves the vault and both
# clients are pointed at it: no UIDVALIDITY change, nothing downloaded,
# nothing deleted locally, the same bytes.  Then a new Dovecot comes up
# empty, new mail arrives, `arca restore dovecot` merges the vault in, and
# the same clients, pointed back at Dovecot, see no change but the new mail.
set -u
export LC_ALL=C   # sort and comm agree on the order
. "$(dirname "$0")/../lib/common.sh"
. "$ARCA_ROOT/tests/lib/dovecot.sh"
. "$ARCA_ROOT/tests/lib/corpus.sh"
PY=/usr/bin/python3
TOOLS=$ARCA_ROOT/tests/tools
export ARCA_PASSPHRASE=continuity-pass ARCA_TEST_FAST_KDF=1
T=$(test_tmpdir cont)
ACCTS="alice@example.test bob@example.test"
CORPUS=$(corpus_dir) || { echo "not ok - corpus available"; exit 1; }
command -v mbsync >/dev/null || { echo "not ok - mbsync installed (package isync)"; exit 1; }

mbsync_rc() {  # ACCOUNT PORT: the account's mbsyncrc (written fresh: the client is "pointed" at PORT)
	local a=$1 port=$2 m=$T/mirror-$1
	mkdir -p "$m"
	cat >"$T/mbsyncrc-$a" <<EOF
IMAPAccount far
Host 127.0.0.1
Port $port
User $a
Pass pw
SSLType None
AuthMechs LOGIN
Timeout 30

IMAPStore far
Account far

MaildirStore near
Path $m/
Inbox $m/INBOX
SubFolders Verbatim

Channel mirror
Far :far:
Near :near:
Patterns *
Create Near
Sync All
SyncState *
EOF
}
mbsync_run() {  # ACCOUNT PORT: one sync; its output in $T/mbsync-ACCOUNT.out
	mbsync_rc "$1" "$2"
	mbsync -c "$T/mbsyncrc-$1" -a >"$T/mbsync-$1.out" 2>&1
}
manifest() {  # ACCOUNT: every mirrored message file (name and content hash) and each folder's far UIDVALIDITY
	local m=$T/mirror-$1
	(cd "$m" && find . -type f -path '*/cur/*' -o -type f -path '*/new/*' | sort |
		while read -r f; do printf '%s %s\n' "$f" "$(sha256sum <"$f" | cut -c1-64)"; done
	 find . -name .mbsyncstate | sort | while read -r s; do
		printf '%s %s\n' "$s" "$(grep '^FarUidValidity' "$s")"; done) | sort
}
nfiles() { find "$T/mirror-$1" -type f \( -path '*/cur/*' -o -path '*/new/*' \) | wc -l; }
free_port() { _dovecot_free_ports 1; }
wait_port() {  # PORT: up to 10 s for a listener
	local i
	for i in $(seq 100); do
		$PY -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# ---- before the attack: Dovecot with real mail, two clients mirror it, the vault pulls
dovecot_start "$T/dc" maildirpp >/dev/null || { echo "not ok - dovecot starts"; exit 1; }
check "populate alice and bob (real mail, folders, flags, keywords)" \
	$PY "$TOOLS/populate.py" --host 127.0.0.1 --imap-port "$DOVECOT_IMAP_PORT" \
	--lmtp-port "$DOVECOT_LMTP_PORT" --master-user admin --master-password masterpw \
	--accounts "${ACCTS// /,}" --messages-dir "$CORPUS" --count 40 --seed 11
for a in $ACCTS; do
	check "$a: mbsync mirrors the account from Dovecot" mbsync_run "$a" "$DOVECOT_IMAP_PORT"
	check "$a: the UID-caching client mirrors the account" \
		$PY "$TOOLS/uidcache.py" save 127.0.0.1 "$DOVECOT_IMAP_PORT" "$a" pw "$T/cache-$a.json"
	manifest "$a" >"$T/manifest0-$a"
done
expect_eq "alice's mirror holds mail" "$([ "$(nfiles alice@example.test)" -gt 30 ] && echo yes)" yes
echo masterpw >"$T/masterpw"
printf '%s\n' $ACCTS >"$T/accounts"
R=$T/repo
"$ARCA" init --repo "$R" --restore-key "$T/rk" >/dev/null
check "the vault pulls both accounts" \
	"$ARCA" pull imap --repo "$R" --host 127.0.0.1 --port "$DOVECOT_IMAP_PORT" \
	--master-user admin --password-file "$T/masterpw" --accounts-from "$T/accounts"

# ---- the attack: the mail store is formatted, Dovecot is gone
dovecot_stop "$T/dc"
rm -rf "$DOVECOT_MAIL_ROOT"

# ---- the vault serves every account read-only
: >"$T/users"
for a in $ACCTS; do printf '%s:{SHA512-CRYPT}%s\n' "$a" "$(openssl passwd -6 pw)" >>"$T/users"; done
SP=$(free_port)
t0=$(date +%s.%N)
"$ARCA" serve-imap --repo "$R" --restore-key "$T/rk" --listen "127.0.0.1:$SP" \
	--users "$T/users" >"$T/serve.log" 2>&1 &
SERVE=$!
check "serve-imap listens" wait_port "$SP"
greet=$($PY - "$SP" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.settimeout(5)
print(s.recv(200).split(b"\r\n")[0].decode())
EOF
)
t1=$(date +%s.%N)
expect_eq "serve-imap greets (within a second of start)" \
	"$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a < 1.0) ? "yes" : "no " (b - a) " s" }')" yes
case $greet in "* OK"*) echo "ok - greeting is * OK";; *) echo "not ok - greeting is * OK (got '$greet')"; _test_failed=1;; esac
for a in $ACCTS; do
	check "$a: mbsync against serve-imap succeeds" mbsync_run "$a" "$SP"
	check_fails "$a: mbsync reports no UIDVALIDITY change" grep -qi uidvalidity "$T/mbsync-$a.out"
	manifest "$a" >"$T/manifest1-$a"
	check "$a: mbsync downloaded nothing and deleted nothing (mirror unchanged)" \
		diff "$T/manifest0-$a" "$T/manifest1-$a"
	check "$a: the UID-caching client sees the same UIDVALIDITYs, UIDs, flags and bytes" \
		$PY "$TOOLS/uidcache.py" check 127.0.0.1 "$SP" "$a" pw "$T/cache-$a.json" --sample 1000
done
kill "$SERVE" 2>/dev/null
wait "$SERVE" 2>/dev/null

# ---- the rebuilt server: empty, new mail arrives, then the vault is restored into it
dovecot_start "$T/dc2" maildirpp >/dev/null || { echo "not ok - the rebuilt dovecot starts"; exit 1; }
check "new mail arrives for alice on the rebuilt server" \
	$PY "$TOOLS/imapstep.py" --port "$DOVECOT_IMAP_PORT" --user "alice@example.test*admin" \
	--password masterpw deliver "$DOVECOT_LMTP_PORT" alice@example.test "after the rebuild" 2 r1
read -r OWN_UID OWN_GID < <(_dovecot_mail_owner)
check "arca restore dovecot merges the vault into the rebuilt server" \
	"$ARCA" restore dovecot --repo "$R" --restore-key "$T/rk" --all \
	--maildir "$DOVECOT_MAIL_ROOT/%d/%n/Maildir" --owner "$OWN_UID:$OWN_GID" \
	--doveadm "doveadm -c $DOVECOT_CONF"
for a in $ACCTS; do
	new=0
	[ "$a" = alice@example.test ] && new=2
	check "$a: the UID-caching client, back on Dovecot, sees no change but $new new" \
		$PY "$TOOLS/uidcache.py" check 127.0.0.1 "$DOVECOT_IMAP_PORT" "$a" pw "$T/cache-$a.json" \
		--sample 1000 --allow-new "$new"
	check "$a: mbsync against the restored Dovecot succeeds" mbsync_run "$a" "$DOVECOT_IMAP_PORT"
	check_fails "$a: mbsync reports no UIDVALIDITY change" grep -qi uidvalidity "$T/mbsync-$a.out"
	manifest "$a" >"$T/manifest2-$a"
	# the old files all still there, unchanged; only the new mail added
	check "$a: nothing deleted or changed in the mirror" \
		bash -c "comm -23 '$T/manifest0-$a' '$T/manifest2-$a' | grep -q . && exit 1 || exit 0"
	expect_eq "$a: mbsync downloaded exactly the new mail" \
		"$(comm -13 "$T/manifest0-$a" "$T/manifest2-$a" | grep -c '/\(cur\|new\)/')" "$new"
done
dovecot_stop "$T/dc2"
test_done
