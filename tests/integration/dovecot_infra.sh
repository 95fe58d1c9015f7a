#!/bin/bash
# Self-test of the Dovecot test infrastructure (tests/lib/dovecot.sh,
# tests/lib/corpus.sh, tests/tools/populate.py, tests/tools/imapdump.py).
# For each Maildir layout: start a private Dovecot, populate two accounts with
# corpus mail, dump them twice over IMAP, check the dumps are equal and
# non-trivial, check the on-disk layout, stop Dovecot, check nothing is left.
# Prints TAP lines "ok - NAME" / "not ok - NAME".
set -u
ROOT=${ARCA_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
TOOLS=$ROOT/tests/tools
. "$ROOT/tests/lib/dovecot.sh"
. "$ROOT/tests/lib/corpus.sh"

TMP=$(mktemp -d /tmp/arca-dovecot-infra.XXXXXX)
cleanup() {
	local d
	for d in "$TMP"/*/; do
		[ -s "$d/run/master.pid" ] && dovecot_stop "${d%/}" >/dev/null 2>&1
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

fails=0
ok() { echo "ok - $1"; }
nok() { echo "not ok - $1"; fails=$((fails + 1)); }
check() {  # NAME COMMAND...
	local name=$1; shift
	if "$@"; then ok "$name"; else nok "$name"; fi
}

if CORPUS=$(corpus_dir); then
	ok "corpus available ($(tr -d '\n' <"$CORPUS/.complete") messages)"
else
	nok "corpus available"
	exit 1
fi

ACCTS=alice@example.test,bob@example.test

# Checks a dump is non-trivial: non-ASCII folder names, keywords, system
# flags, special-use attributes, a subscribed missing folder, UID gaps.
nontrivial() {
	$PY - "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1], encoding='utf-8'))['folders']
names = set(d)
errs = []
def need(c, what):
    if not c:
        errs.append(what)
need(any('Übersicht' in n for n in names), 'folder Übersicht')
need(any('Été' in n for n in names), 'folder Été')
need(any('日本語' in n for n in names), 'folder 日本語')
attrs = {a for f in d.values() for a in f['attributes']}
need({'\\Sent', '\\Drafts', '\\Trash', '\\Junk', '\\Archive'} <= attrs, 'special-use')
need(any(not f['exists'] and f['subscribed'] for f in d.values()), 'subscribed missing folder')
need(any(f['subscribed'] for f in d.values()) and any(not f['subscribed'] for f in d.values()), 'mixed subscriptions')
inbox = d['INBOX']['messages']
flags = {x for m in inbox for x in m['flags']}
need({'\\Seen', '\\Answered', '\\Flagged', '\\Deleted'} <= flags, 'system flags')
kws = {x for x in flags if not x.startswith('\\')}
need(len(kws) > 3, 'more than 3 keywords in INBOX')
need(any('\\Seen' not in m['flags'] for m in inbox), 'unread messages')
uids = [m['uid'] for m in inbox]
need(uids != list(range(1, len(uids) + 1)), 'UID gaps')
need(all(len(m.get('sha256', '')) == 64 for m in inbox), 'body hashes')
total = sum(len(f.get('messages', [])) for f in d.values())
need(total >= 50, 'at least 50 messages')
if errs:
    print('# missing: ' + ', '.join(errs))
    sys.exit(1)
EOF
}

# Checks facts about the on-disk Maildir for the layout.
ondisk() {  # LAYOUT MAILDIR
	local layout=$1 md=$2
	[ -d "$md/cur" ] && [ -d "$md/new" ] && [ -d "$md/tmp" ] || return 1
	[ -f "$md/dovecot-uidlist" ] && [ -f "$md/subscriptions" ] || return 1
	if [ "$layout" = fs ]; then
		# LAYOUT=fs: plain directories, no maildirfolder files
		[ -d "$md/Archiv/2019/&ANw-bersicht/cur" ] || return 1
		[ ! -e "$md/Archiv/2019/&ANw-bersicht/maildirfolder" ] || return 1
		[ -f "$md/Projets/&AMk-t&AOk-/dovecot-uidlist" ] || return 1
	else
		[ -f "$md/.Archiv.2019.&ANw-bersicht/maildirfolder" ] || return 1
		[ -f "$md/.Projets.&AMk-t&AOk-/dovecot-uidlist" ] || return 1
	fi
	# every message file belongs to the unprivileged mail user
	[ -z "$(find "$md" -type f ! -uid "$DOVECOT_MAIL_UID" | head -1)" ]
}

for layout in maildirpp fs; do
	start=$SECONDS
	D=$TMP/$layout
	if dovecot_start "$D" "$layout"; then
		ok "$layout: dovecot starts (imap $DOVECOT_IMAP_PORT lmtp $DOVECOT_LMTP_PORT sieve $DOVECOT_SIEVE_PORT)"
	else
		nok "$layout: dovecot starts"
		continue
	fi
	check "$layout: doveadm mailbox list" dovecot_doveadm mailbox list -u alice@example.test
	if $PY "$TOOLS/populate.py" --host 127.0.0.1 --imap-port "$DOVECOT_IMAP_PORT" \
		--lmtp-port "$DOVECOT_LMTP_PORT" --sieve-port "$DOVECOT_SIEVE_PORT" \
		--master-user admin --master-password masterpw --accounts "$ACCTS" \
		--messages-dir "$CORPUS" --count 50 --seed 42; then
		ok "$layout: populate 2 accounts x 50 messages"
	else
		nok "$layout: populate 2 accounts x 50 messages"
	fi
	for a in alice@example.test bob@example.test; do
		u=${a%@*}
		for i in 1 2; do
			$PY "$TOOLS/imapdump.py" -o "$TMP/$layout-$u-$i.json" \
				127.0.0.1 "$DOVECOT_IMAP_PORT" "$a*admin" masterpw ||
				echo "# imapdump $a failed"
		done
		check "$layout: $u: two dumps equal" \
			$PY "$TOOLS/imapdump.py" --compare "$TMP/$layout-$u-1.json" "$TMP/$layout-$u-2.json"
		check "$layout: $u: dump is non-trivial" nontrivial "$TMP/$layout-$u-1.json"
		check "$layout: $u: plain login sees the same" \
			$PY "$TOOLS/imapdump.py" --folders-only -o "$TMP/$layout-$u-plain.json" \
			127.0.0.1 "$DOVECOT_IMAP_PORT" "$a" pw
	done
	if $PY "$TOOLS/imapdump.py" --compare "$TMP/$layout-alice-1.json" "$TMP/$layout-bob-1.json" >/dev/null; then
		nok "$layout: compare detects differences (alice vs bob)"
	else
		ok "$layout: compare detects differences (alice vs bob)"
	fi
	check "$layout: on-disk layout" ondisk "$layout" "$(dovecot_maildir alice@example.test)"
	check "$layout: sieve script active" \
		test -L "$DOVECOT_MAIL_ROOT/example.test/alice/.dovecot.sieve" -a \
		-f "$DOVECOT_MAIL_ROOT/example.test/alice/sieve/arca.sieve"
	pid=$DOVECOT_PID
	check "$layout: dovecot_stop" dovecot_stop
	if kill -0 "$pid" 2>/dev/null || _dovecot_instance_pids "$D" | grep -q .; then
		nok "$layout: no process left"
		ps -eo pid,args | grep -F "arca-test" | sed 's/^/# /'
	else
		ok "$layout: no process left"
	fi
	echo "# $layout took $((SECONDS - start)) s"
	unset DOVECOT_DIR
done

# Two instances at once get different ports and both answer.
if dovecot_start "$TMP/c1"; then
	p1=$DOVECOT_IMAP_PORT
	if dovecot_start "$TMP/c2" fs; then
		if [ "$p1" != "$DOVECOT_IMAP_PORT" ] && _dovecot_imap_greets "$p1" &&
			_dovecot_imap_greets "$DOVECOT_IMAP_PORT"; then
			ok "two concurrent instances"
		else
			nok "two concurrent instances"
		fi
		dovecot_stop "$TMP/c2"
	else
		nok "two concurrent instances"
	fi
	dovecot_stop "$TMP/c1"
	unset DOVECOT_DIR
else
	nok "two concurrent instances"
fi

[ "$fails" -eq 0 ]
