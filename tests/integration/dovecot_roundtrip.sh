#!/bin/bash
# Issue 2 end to end on a real Dovecot, for both Maildir layouts:
# deliver real corpus mail by LMTP, file it into folders and set flags and
# keywords over IMAP, dump the IMAP view, ingest every account while Dovecot
# runs and mail keeps arriving, stop Dovecot, wipe the mail store, restore,
# start Dovecot again, and compare the IMAP view: folders, subscriptions,
# UIDVALIDITY, UIDNEXT, UIDs, flags, keywords, INTERNALDATE, sizes, bytes.
set -u
. "$(dirname "$0")/../lib/common.sh"
. "$ARCA_ROOT/tests/lib/dovecot.sh"
. "$ARCA_ROOT/tests/lib/corpus.sh"
PY=/usr/bin/python3
TOOLS=$ARCA_ROOT/tests/tools
export ARCA_PASSPHRASE=roundtrip-pass ARCA_TEST_FAST_KDF=1
T=$(test_tmpdir dovecot)
ACCTS="alice@example.test bob@example.test carol@other.test"
CORPUS=$(corpus_dir) || { echo "not ok - corpus available"; exit 1; }

dump_all() {  # TAG
	local a
	for a in $ACCTS; do
		$PY "$TOOLS/imapdump.py" -o "$T/$1-$a.json" 127.0.0.1 "$DOVECOT_IMAP_PORT" "$a*admin" masterpw || return 1
	done
}

for layout in maildirpp fs; do
	D=$T/$layout
	if ! dovecot_start "$D" "$layout" >/dev/null; then
		echo "not ok - $layout: dovecot starts"; _test_failed=1; continue
	fi
	check "$layout: populate 3 accounts with real mail" \
		$PY "$TOOLS/populate.py" --host 127.0.0.1 --imap-port "$DOVECOT_IMAP_PORT" \
		--lmtp-port "$DOVECOT_LMTP_PORT" --master-user admin --master-password masterpw \
		--accounts "${ACCTS// /,}" --messages-dir "$CORPUS" --count 60 --seed 3
	check "$layout: dump the IMAP view before" dump_all before
	"$ARCA" init --repo "$T/repo-$layout" --restore-key "$T/rk-$layout" >/dev/null
	# keep delivering while the ingest runs: files appear and move mid-scan
	( for i in 1 2 3 4 5 6; do
		$PY "$TOOLS/populate.py" --host 127.0.0.1 --imap-port "$DOVECOT_IMAP_PORT" \
			--lmtp-port "$DOVECOT_LMTP_PORT" --master-user admin --master-password masterpw \
			--accounts alice@example.test --messages-dir "$CORPUS" --count 10 --seed $((100 + i)) \
			--lmtp-only >/dev/null 2>&1 || true
	  done ) &
	deliverer=$!
	check "$layout: ingest every account while Dovecot runs and mail arrives" \
		"$ARCA" ingest maildir --repo "$T/repo-$layout" --pattern "$DOVECOT_MAIL_ROOT/%d/%n/Maildir"
	wait $deliverer
	# the state to compare is the one of a quiet mailbox: ingest again, now
	# incremental, and dump
	check "$layout: incremental ingest" \
		"$ARCA" ingest maildir --repo "$T/repo-$layout" --pattern "$DOVECOT_MAIL_ROOT/%d/%n/Maildir"
	# the files as the snapshot saw them (the dump's SELECTs make Dovecot
	# sync, and it may rewrite a dovecot-uidlist then)
	cp -a "$DOVECOT_MAIL_ROOT" "$T/store-$layout"
	check "$layout: dump the IMAP view at the snapshot" dump_all snap
	check "$layout: verify with the restore key" \
		"$ARCA" verify --repo "$T/repo-$layout" --restore-key "$T/rk-$layout"
	check "$layout: dovecot stops" dovecot_stop "$D"
	# the attack: the mail store is gone
	rm -rf "$DOVECOT_MAIL_ROOT"
	for a in $ACCTS; do
		n=${a%@*} d=${a#*@}
		check "$layout: restore $a" "$ARCA" restore maildir --repo "$T/repo-$layout" \
			--account "$a" --restore-key "$T/rk-$layout" \
			--owner "$DOVECOT_MAIL_UID:$DOVECOT_MAIL_GID" "$DOVECOT_MAIL_ROOT/$d/$n/Maildir"
	done
	# Dovecot's own files, byte for byte, and each dovecot-uidlist as Dovecot
	# reads it (not restored: its index files, caches it rebuilds; the
	# root's maildirfolder and dovecot-uidvalidity: docs/format/maildir.md)
	check "$layout: the restored files are Dovecot's, dovecot-uidlist included" \
		$PY "$TOOLS/treecmp.py" --uidlist-live "$T/store-$layout" "$DOVECOT_MAIL_ROOT" \
		--ignore-glob 'dovecot-uidvalidity*' \
		--ignore-glob 'dovecot.index*' --ignore-glob 'dovecot.list.index*' \
		--ignore-glob 'dovecot.mailbox.log*' --ignore-path '*/Maildir/maildirfolder'
	chown "$DOVECOT_MAIL_UID:$DOVECOT_MAIL_GID" "$DOVECOT_MAIL_ROOT" "$DOVECOT_MAIL_ROOT"/* "$DOVECOT_MAIL_ROOT"/*/*
	if ! dovecot_start "$D" "$layout" >/dev/null; then
		echo "not ok - $layout: dovecot starts on the restored store"; _test_failed=1; continue
	fi
	check "$layout: dump the IMAP view after restore" dump_all after
	for a in $ACCTS; do
		check "$layout: $a: IMAP view after restore equals the snapshot's" \
			$PY "$TOOLS/imapdump.py" --compare "$T/snap-$a.json" "$T/after-$a.json"
	done
	dovecot_stop "$D" >/dev/null
done
test_done
