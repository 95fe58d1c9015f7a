/* arca restore dovecot: exact server-side restore into a Dovecot host,
 * merged with the mail that arrived since (docs/restore.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "doveadm.h"
#include "doveadm_parse.h"
#include "faultinject.h"
#include "fsutil.h"
#include "maildir.h"
#include "maildir_merge.h"
#include "mailsync.h"
#include "restore_many.h"
#include "snapshot.h"
#include "banned.h"

static const char USAGE[] =
	"arca restore dovecot --repo REPO --restore-key KEYFILE (--account A ... | --all)\n"
	"                     --maildir PATTERN [--owner UID:GID] [--doveadm \"doveadm -c CONF\"]\n"
	"                     [--snapshot ID | --at TIME] [--folder NAME] [--new-uidvalidity]\n"
	"                     [--sieve | --no-sieve] [--sieve-home PATTERN] [--no-journal]\n"
	"                     [--layout maildirpp|fs] [--separator C] [--doveadm-user PATTERN]\n"
	"                     [--doveadm-timeout S] [--jobs N] [--dry-run]\n\n"
	"Writes each account's Maildir at PATTERN (%u the whole address, %n the local\n"
	"part, %d the domain, e.g. /srv/mail/%d/%n/Maildir) as it was in the snapshot\n"
	"(default: the latest not marked suspect by a standing alarm; --at: the last\n"
	"one at or before TIME): messages with their flags, keywords and dates,\n"
	"dovecot-uidlist with the old UIDVALIDITY and UIDs, dovecot-keywords,\n"
	"subscriptions, and the mail arcad journaled since.\n"
	"Into a Maildir that already holds mail (Dovecot may be running), per folder:\n"
	"  absent                   written exactly\n"
	"  same UIDVALIDITY         the missing messages added, with their UIDs when free\n"
	"  another UIDVALIDITY      the snapshot's UIDVALIDITY and UIDs restored; the\n"
	"                           folder's new mail kept, numbered after them\n"
	"  ... with --new-uidvalidity  the folder's UIDVALIDITY and UIDs kept; the\n"
	"                           snapshot's messages added after them (clients resync)\n"
	"A message is never duplicated (same name, UID or bytes) and no file of the\n"
	"destination is deleted or overwritten; a second run adds nothing.\n"
	"With --doveadm (run without a shell, split on spaces): Sieve scripts go in\n"
	"with doveadm sieve put; then one doveadm process per account (one for\n"
	"many, for Maildirs that didn't exist) runs mailbox status on every folder\n"
	"(after force-resync when a folder was merged), a\n"
	"folder still below the snapshot gets doveadm mailbox update\n"
	"--min-highest-modseq N --min-next-uid M (N the snapshot's HIGHESTMODSEQ,\n"
	"M its next UID, once Dovecot has read the new dovecot-uidlist), and\n"
	"every folder is checked against what Dovecot reports.\n"
	"Without it, --sieve-home PATTERN writes the scripts\n"
	"as files (HOME/sieve/NAME.sieve, HOME/.dovecot.sieve) and MODSEQs are not\n"
	"raised (the commands to run are printed).\n"
	"--owner: the owner of what is written (default: the owner of the nearest\n"
	"existing directory above the Maildir).  --layout: Maildir++ or LAYOUT=fs\n"
	"(default: from doveadm config mail_location, else the existing Maildir's,\n"
	"else the snapshot's).  --folder NAME: only that folder (no journal, no Sieve).\n"
	"--dry-run: say per folder what would be done, write nothing.";

struct frep {
	char *folder;
	enum merge_path path;
	uint32_t uidvalidity, nextuid;
	uint64_t highestmodseq, messages;
};

struct dov {
	const char *pattern, *sieve_home, *folder, *user_pattern;
	struct doveadm dv;
	bool have_doveadm, dry_run, new_uidvalidity, no_journal;
	int sieve;                    /* -1 default (when the snapshot has scripts), 0 no, 1 yes */
	int layout;                   /* MAILDIR_LAYOUT_AUTO: decide per account */
	char sep;                     /* 0: ask doveadm */
	int owner_uid, owner_gid;
	/* per account */
	const char *account;
	struct frep *reps;
	size_t nreps, cap;
	int fails;
	/* the worker's committer thread (started with its first staged account) */
	struct committer *cm;
	struct config_check *cc;      /* the doveadm check, until dov_ready */
};

static void on_warn(void *ctx, const char *what, const char *why)
{
	struct dov *d = ctx;
	fprintf(stderr, "%s: %s: warning: %s: %s\n", cli_prog, d->account ? d->account : "", what, why);
}

/* 1234567 -> "1,234,567" */
static const char *num(uint64_t v, char buf[32])
{
	char t[32];
	int n = snprintf(t, sizeof(t), "%llu", (unsigned long long)v);
	int o = 0;
	for (int i = 0; i < n; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = t[i];
	}
	buf[o] = '\0';
	return buf;
}

static void on_report(void *ctx, const struct merge_report *rep)
{
	struct dov *d = ctx;
	char a[32], b[32], c[32], e[32];
	struct abuf line = ABUF_INIT;
	abuf_printf(&line, "%s: %s%s: ", d->account, rep->dry_run ? "dry run, nothing written: " : "",
		    rep->folder);
	uint64_t renum_added = rep->added - rep->added_same_uid;
	switch (rep->path) {
	case MERGE_PARENT:
		abuf_printf(&line, "holds only folders (directory %s)", rep->dry_run ? "would be made" : "made");
		break;
	case MERGE_EXACT:
		abuf_printf(&line, "written exactly: UIDVALIDITY %u, %s messages with their UIDs (next UID %u)",
			    rep->uidvalidity, num(rep->added, a), rep->nextuid);
		if (rep->present > 0)
			abuf_printf(&line, "; %s already there", num(rep->present, b));
		break;
	case MERGE_SAME:
		if (rep->added == 0)
			abuf_printf(&line, "already complete: UIDVALIDITY %u, all %s messages of the snapshot there",
				    rep->uidvalidity, num(rep->snapshot_msgs, a));
		else
			abuf_printf(&line, "added %s missing messages (%s with their UIDs, %s with new UIDs); UIDVALIDITY %u kept, %s already there",
				    num(rep->added, a), num(rep->added_same_uid, b), num(renum_added, c),
				    rep->uidvalidity, num(rep->present, e));
		if (rep->kept > 0)
			abuf_printf(&line, "; %s of the folder's own messages kept", num(rep->kept, a));
		break;
	case MERGE_RENUMBER:
		abuf_printf(&line, "merged: UIDVALIDITY %u restored (was %u after the rebuild); %s messages restored with their UIDs",
			    rep->uidvalidity, rep->was_uidvalidity, num(rep->added + rep->present, a));
		if (rep->present > 0)
			abuf_printf(&line, " (%s of them were there already)", num(rep->present, b));
		if (rep->kept == 1)
			abuf_printf(&line, "; 1 new message kept as UID %u", rep->kept_first);
		else if (rep->kept > 1)
			abuf_printf(&line, "; %s new messages kept as UIDs %u-%u", num(rep->kept, b),
				    rep->kept_first, rep->kept_last);
		else
			abuf_printf(&line, "; no new message in it");
		break;
	case MERGE_NEW_UIDVALIDITY:
		if (rep->added == 0)
			abuf_printf(&line, "already complete (new UIDVALIDITY %u kept; all %s messages of the snapshot there)",
				    rep->uidvalidity, num(rep->snapshot_msgs, a));
		else
			abuf_printf(&line, "merged with a new UIDVALIDITY: %u kept (the snapshot's was %u: every client resyncs this folder); %s messages restored with new UIDs",
				    rep->uidvalidity, rep->snapshot_uidvalidity, num(rep->added, a));
		if (rep->kept > 0)
			abuf_printf(&line, "; %s messages of the folder kept with their UIDs", num(rep->kept, b));
		break;
	}
	if (rep->present_by_content > 0)
		abuf_printf(&line, "; %s recognised by their bytes (not duplicated)", num(rep->present_by_content, a));
	if (rep->unlisted > 0)
		abuf_printf(&line, "; %s files without a UID yet left for Dovecot to number", num(rep->unlisted, a));
	if (rep->keywords_dropped > 0)
		abuf_printf(&line, "; %s keywords dropped (no Maildir letter left)", num(rep->keywords_dropped, a));
	if (abuf_cstr(&line) == 0) {
		puts((const char *)line.data);
		fflush(stdout);
	}
	abuf_release(&line);
	if (rep->path == MERGE_PARENT)
		return;
	if (d->nreps == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct frep *n = realloc(d->reps, cap * sizeof(*n));
		if (n == NULL) {
			d->fails++;
			return;
		}
		d->reps = n;
		d->cap = cap;
	}
	struct frep *f = &d->reps[d->nreps];
	f->folder = strdup(rep->folder);
	if (f->folder == NULL) {
		d->fails++;
		return;
	}
	f->path = rep->path;
	f->uidvalidity = rep->uidvalidity;
	f->nextuid = rep->nextuid;
	f->highestmodseq = rep->highestmodseq;
	f->messages = rep->messages;
	d->nreps++;
}

static void reps_clear(struct dov *d)
{
	for (size_t i = 0; i < d->nreps; i++)
		free(d->reps[i].folder);
	free(d->reps);
	d->reps = NULL;
	d->nreps = d->cap = 0;
}

/* Runs doveadm; on failure prints one line naming the account and what
 * failed.  Returns 0 or 1. */
static int run(struct dov *d, const char *const *args, const void *in, size_t inlen,
	       struct doveadm_result *res, const char *what)
{
	if (doveadm_run(&d->dv, args, in, inlen, res) == 0)
		return 0;
	struct abuf msg = ABUF_INIT;
	doveadm_describe(&d->dv, args, res, &msg);
	fprintf(stderr, "%s: %s: %s failed: %s\n", cli_prog, d->account, what,
		msg.data ? (const char *)msg.data : "?");
	abuf_release(&msg);
	return 1;
}

/* The lines of a doveadm answer (split in place, lines[] allocated here
 * for at most max); on a malformed answer prints one line naming what was
 * asked.  Returns 0 or 1. */
static int answer_lines(struct dov *d, struct doveadm_result *res, size_t max, char ***lines_r,
			size_t *n_r, const char *what)
{
	*lines_r = NULL;
	*n_r = 0;
	if (res->out.len == 0)
		return 0;
	char **lines = calloc(max, sizeof(char *));
	if (lines == NULL || abuf_cstr(&res->out) != 0) {
		free(lines);
		fprintf(stderr, "%s: %s: out of memory reading doveadm's answer (%s)\n", cli_prog, d->account, what);
		return 1;
	}
	int rc = dva_split_lines((char *)res->out.data, res->out.len, lines, max, n_r);
	if (rc != 0) {
		free(lines);
		*n_r = 0;
		fprintf(stderr, "%s: %s: doveadm's answer (%s) is not what Dovecot prints: %s\n", cli_prog,
			d->account, what, rc == ARCA_ELIMIT ? "too many or too long lines" : "binary bytes in it");
		return 1;
	}
	*lines_r = lines;
	return 0;
}

#define STATUS_FIELDS "uidvalidity uidnext highestmodseq messages"

/* What `doveadm -f flow mailbox status FIELDS '*'` printed, line by line:
 * names[i] the mailbox, st[i] its numbers. */
struct statuses {
	struct doveadm_result res;
	char **names;
	struct dva_status *st;
	size_t n;
};

static void statuses_release(struct statuses *s)
{
	doveadm_result_release(&s->res);
	free(s->names);
	free(s->st);
	memset(s, 0, sizeof(*s));
}

/* Runs args (a mailbox status over '*', alone or last in a batch) into s.
 * Returns 0 or 1 (one line printed). */
static int run_status(struct dov *d, const char *const *args, struct statuses *s, const char *what)
{
	memset(s, 0, sizeof(*s));
	if (run(d, args, NULL, 0, &s->res, what) != 0)
		return 1;
	if (answer_lines(d, &s->res, MAILDIR_FOLDERS_MAX, &s->names, &s->n, "doveadm mailbox status") != 0)
		return 1;
	s->st = calloc(s->n ? s->n : 1, sizeof(*s->st));
	if (s->st == NULL) {
		fprintf(stderr, "%s: %s: out of memory\n", cli_prog, d->account);
		return 1;
	}
	for (size_t i = 0; i < s->n; i++) {
		/* a refused line is left whole, for the message */
		if (dva_status_line(s->names[i], &s->st[i]) != 0) {
			fprintf(stderr, "%s: %s: doveadm mailbox status said \"%.200s\", not a mailbox name and the four numbers asked for\n",
				cli_prog, d->account, s->names[i]);
			return 1;
		}
	}
	return 0;
}

/* What Dovecot reports for folder f (named box by doveadm) against what
 * was written. */
static int check_one(struct dov *d, const struct frep *f, const struct dva_status *st)
{
	if (st->uidvalidity != f->uidvalidity || st->uidnext < f->nextuid || st->highestmodseq < f->highestmodseq ||
	    st->messages < f->messages) {
		fprintf(stderr, "%s: %s: %s: MISMATCH after the restore: Dovecot reports UIDVALIDITY %llu, UIDNEXT %llu, HIGHESTMODSEQ %llu, %llu messages; expected UIDVALIDITY %u, UIDNEXT >= %u, HIGHESTMODSEQ >= %llu, >= %llu messages\n",
			cli_prog, d->account, f->folder, (unsigned long long)st->uidvalidity,
			(unsigned long long)st->uidnext, (unsigned long long)st->highestmodseq,
			(unsigned long long)st->messages, f->uidvalidity, f->nextuid,
			(unsigned long long)f->highestmodseq, (unsigned long long)f->messages);
		return 1;
	}
	printf("%s: %s: Dovecot serves UIDVALIDITY %llu, UIDNEXT %llu, HIGHESTMODSEQ %llu (snapshot %llu), %llu messages\n",
	       d->account, f->folder, (unsigned long long)st->uidvalidity, (unsigned long long)st->uidnext,
	       (unsigned long long)st->highestmodseq, (unsigned long long)f->highestmodseq,
	       (unsigned long long)st->messages);
	return 0;
}

/*
 * Step 3: next UID and HIGHESTMODSEQ up, then check what Dovecot reports
 * (docs/restore.md, "The doveadm calls"):
 *   1. doveadm -f flow batch -u USER : force-resync '*' : mailbox status FIELDS '*'
 *      one process: Dovecot takes in every new dovecot-uidlist, and says
 *      what it now serves (the names also give the separator);
 *   2. doveadm mailbox update -u USER --min-next-uid M --min-highest-modseq N BOX
 *      only for the folders still below what was written (Dovecot 2.3's
 *      doveadm batch can't pass options to mailbox update: "update:
 *      invalid option"), so one process per such folder;
 *   3. when 2 ran: doveadm -f flow mailbox status FIELDS '*', the check.
 * A restore from a Maildir ingest (no MODSEQ; dovecot-uidlist already
 * carries the next UID) thus costs one doveadm process per account, or
 * none of its own when given (a commit's status of many accounts, step 1
 * done for them all in one process).
 * When the batch fails (doveadm batch stops at the first failing command
 * and may not say which folder), each folder goes alone: force-resync and
 * mailbox update, each error naming its folder.
 */
static int raise_and_check(struct dov *d, const char *user, int layout, struct statuses *given)
{
	if (d->nreps == 0)
		return 0;
	int fails = 0;
	bool live = d->have_doveadm && !d->dry_run, resync_each = false;
	struct statuses s1 = { 0 }, s2 = { 0 };
	struct abuf mb = ABUF_INIT;
	if (live) {
		/* Dovecot first takes in the new dovecot-uidlist (a full
		 * sync): raising its next UID before would make it take the
		 * records below that UID for expunged mail and renumber them
		 * ("Expunged message reappeared") */
		/* Folders written into an absent directory have no Dovecot index
		 * yet: the plain sync of mailbox status takes their uidlist in,
		 * and force-resync (which reads every message file: a quarter
		 * of a full restore's time) is needed only where an index of
		 * the folder's earlier life may exist (the merge paths). */
		bool need_resync = false;
		for (size_t i = 0; i < d->nreps; i++)
			if (d->reps[i].path != MERGE_EXACT && d->reps[i].path != MERGE_PARENT)
				need_resync = true;
		char sep1[2] = { doveadm_batch_sep((const char *const[]){ user, NULL }), 0 };
		const char *b1[] = { "-f", "flow", "batch", "-u", user, sep1, "force-resync", "*",
				     sep1, "mailbox", "status", STATUS_FIELDS, "*", NULL };
		const char *b0[] = { "-f", "flow", "mailbox", "status", "-u", user, STATUS_FIELDS, "*", NULL };
		bool done = false;
		if (!need_resync && given != NULL && given->n > 0) {
			/* the commit's one doveadm for many accounts said it */
			s1 = *given;
			memset(given, 0, sizeof(*given));
			done = true;
		}
		if (!done && !need_resync) {
			done = run_status(d, b0, &s1, "mailbox status of the restored folders") == 0;
			if (!done)
				statuses_release(&s1);
		}
		if (!done && (sep1[0] == 0 ||
			      run_status(d, b1, &s1, "force-resync and mailbox status in one doveadm batch") != 0)) {
			statuses_release(&s1);
			resync_each = true;
			const char *st[] = { "-f", "flow", "mailbox", "status", "-u", user, STATUS_FIELDS, "*", NULL };
			if (run_status(d, st, &s1, "listing the mailboxes") != 0) {
				fails = 1;
				goto out;
			}
		}
	}
	char sep = d->sep;
	if (sep == 0 && live) {
		const char **names = calloc(d->nreps, sizeof(*names));
		if (names == NULL) {
			fails = cli_failf("out of memory");
			goto out;
		}
		for (size_t i = 0; i < d->nreps; i++)
			names[i] = d->reps[i].folder;
		sep = dva_detect_sep(names, d->nreps, s1.names, s1.n);
		free(names);
	}
	if (sep == 0)
		sep = layout == MAILDIR_LAYOUT_FS ? '/' : '.';
	bool *ok = calloc(d->nreps, sizeof(*ok));
	if (ok == NULL) {
		fails = cli_failf("out of memory");
		goto out;
	}
	size_t updated = 0;
	for (size_t i = 0; i < d->nreps; i++) {
		const struct frep *f = &d->reps[i];
		if (dva_vname(f->folder, sep, &mb) != 0) {
			fails = cli_failf("out of memory");
			break;
		}
		const char *box = (const char *)mb.data;
		char nuid[16], hms[24];
		snprintf(nuid, sizeof(nuid), "%u", f->nextuid);
		snprintf(hms, sizeof(hms), "%llu", (unsigned long long)f->highestmodseq);
		const char *up[] = { "mailbox", "update", "-u", user, "--min-next-uid", nuid,
				     "--min-highest-modseq", hms, box, NULL };
		if (f->highestmodseq == 0) {
			up[6] = box;
			up[7] = NULL;
		}
		if (!live) {
			printf("%s: %s: %s: doveadm force-resync -u %s '%s'; doveadm mailbox update -u %s --min-next-uid %s%s%s '%s'\n",
			       d->account, f->folder,
			       d->dry_run ? "would run" : "run this (no --doveadm given) so no client sees MODSEQ go backwards",
			       user, box, user, nuid, f->highestmodseq ? " --min-highest-modseq " : "",
			       f->highestmodseq ? hms : "", box);
			continue;
		}
		struct dva_status st;
		int rc = dva_status_find(s1.names, s1.st, s1.n, box, &st);
		if (rc != 0) {
			fprintf(stderr, rc == ARCA_ENOENT
				? "%s: %s: %s: doveadm mailbox status does not report it as \"%s\" (give --separator?)\n"
				: "%s: %s: %s: doveadm mailbox status reports \"%s\" twice\n",
				cli_prog, d->account, f->folder, box);
			fails++;
			continue;
		}
		struct doveadm_result res;
		if (resync_each) {
			const char *rs[] = { "force-resync", "-u", user, box, NULL };
			if (run(d, rs, NULL, 0, &res, f->folder) != 0) {
				doveadm_result_release(&res);
				fails++;
				continue;
			}
			doveadm_result_release(&res);
		}
		if (resync_each || st.uidnext < f->nextuid || st.highestmodseq < f->highestmodseq) {
			if (run(d, up, NULL, 0, &res, f->folder) != 0) {
				doveadm_result_release(&res);
				fails++;
				continue;
			}
			doveadm_result_release(&res);
			updated++;
		}
		ok[i] = true;
	}
	/* the folders that went through get their check, after a failure too */
	bool checkable = true;
	if (live && updated > 0) {
		const char *st[] = { "-f", "flow", "mailbox", "status", "-u", user, STATUS_FIELDS, "*", NULL };
		if (run_status(d, st, &s2, "checking what Dovecot serves") != 0) {
			fails++;
			checkable = false;
		}
	}
	const struct statuses *now = updated > 0 ? &s2 : &s1;
	for (size_t i = 0; live && checkable && i < d->nreps; i++) {
		if (!ok[i] || dva_vname(d->reps[i].folder, sep, &mb) != 0)
			continue;
		struct dva_status st;
		if (dva_status_find(now->names, now->st, now->n, (const char *)mb.data, &st) != 0) {
			fprintf(stderr, "%s: %s: %s: doveadm mailbox status does not report \"%s\" after the restore\n",
				cli_prog, d->account, d->reps[i].folder, (const char *)mb.data);
			fails++;
			continue;
		}
		fails += check_one(d, &d->reps[i], &st);
	}
	free(ok);
out:
	fflush(stdout);
	abuf_release(&mb);
	statuses_release(&s1);
	statuses_release(&s2);
	return fails ? 1 : 0;
}

/* Step 2 with doveadm: put each script (never replacing a different one of
 * the same name: that goes in as NAME-restored), activate the snapshot's
 * active one unless the account has another active already. */
/* A snapshot's Sieve script, read from the repository before doveadm puts
 * it (the put may run in the committer thread, which has no repository). */
struct sieve_body {
	struct abuf body;
	bool ok;
};

static void sieve_bodies_free(struct sieve_body *b, size_t n)
{
	for (size_t i = 0; b != NULL && i < n; i++)
		abuf_release(&b[i].body);
	free(b);
}

/* Reads every script of s; one that can't be read is printed and counted
 * (and left out by sieve_doveadm).  NULL only when out of memory. */
static struct sieve_body *sieve_read(struct dov *d, struct repo *r, const struct snapshot *s, int *fails)
{
	struct sieve_body *b = calloc(s->nsieve ? s->nsieve : 1, sizeof(*b));
	if (b == NULL) {
		fprintf(stderr, "%s: %s: out of memory reading the Sieve scripts\n", cli_prog, d->account);
		(*fails)++;
		return NULL;
	}
	for (size_t i = 0; i < s->nsieve; i++) {
		const struct snap_sieve *v = &s->sieve[i];
		int mfd = memfd_create("arca-sieve", MFD_CLOEXEC);
		uint64_t got = 0;
		struct arca_err err = { 0 };
		if (mfd < 0 || repo_get_stream(r, v->content_type, v->content_id, mfd, v->name, &got, &err) != 0 ||
		    got > (16u << 20) || abuf_reserve(&b[i].body, (size_t)got + 1) != 0 ||
		    pread(mfd, b[i].body.data, (size_t)got, 0) != (ssize_t)got) {
			fprintf(stderr, "%s: %s: Sieve script %s can't be read from the repository: %s\n", cli_prog,
				d->account, v->name, err.msg[0] ? err.msg : "read failed");
			if (mfd >= 0)
				close(mfd);
			(*fails)++;
			continue;
		}
		close(mfd);
		b[i].body.len = (size_t)got;
		b[i].ok = true;
	}
	return b;
}

static int sieve_doveadm(struct dov *d, const struct snapshot *s, const struct sieve_body *bodies,
			 const char *user)
{
	int fails = 0;
	struct doveadm_result lr;
	const char *la[] = { "sieve", "list", "-u", user, NULL };
	if (d->dry_run) {
		printf("%s: Sieve: would put %zu scripts with doveadm sieve put -u %s\n", d->account, s->nsieve, user);
		return 0;
	}
	if (run(d, la, NULL, 0, &lr, "listing the Sieve scripts") != 0) {
		doveadm_result_release(&lr);
		return 1;
	}
	/* the account's scripts: a few more than a snapshot may hold */
	char **lines = NULL;
	size_t nl = 0;
	long act = -1;
	if (answer_lines(d, &lr, 4 * SNAP_SIEVE_MAX, &lines, &nl, "doveadm sieve list") != 0 ||
	    dva_sieve_list(lines, nl, &act) != 0) {
		if (lines != NULL)
			fprintf(stderr, "%s: %s: doveadm sieve list printed what Dovecot 2.3 does not (\"%.200s\"): Sieve not restored\n",
				cli_prog, d->account, (const char *)lr.out.data);
		free(lines);
		doveadm_result_release(&lr);
		return 1;
	}
	const char *active_now = act >= 0 ? lines[act] : NULL;
	struct abuf name = ABUF_INIT, msg = ABUF_INIT;
	size_t put = 0, same = 0;
	for (size_t i = 0; i < s->nsieve; i++) {
		const struct snap_sieve *v = &s->sieve[i];
		if (bodies == NULL || !bodies[i].ok)
			continue;   /* said (and counted) by sieve_read */
		const struct abuf body = bodies[i].body;
		abuf_reset(&name);
		abuf_printf(&name, "%s", v->name);
		(void)abuf_cstr(&name);
		bool exists = false;
		for (size_t k = 0; k < nl && !exists; k++)
			exists = strcmp(lines[k], v->name) == 0;
		if (exists) {
			const char *ga[] = { "sieve", "get", "-u", user, v->name, NULL };
			struct doveadm_result gr;
			if (run(d, ga, NULL, 0, &gr, "reading a Sieve script") != 0) {
				doveadm_result_release(&gr);
				fails++;
				continue;
			}
			bool eq = gr.out.len == body.len && memcmp(gr.out.data, body.data, body.len) == 0;
			doveadm_result_release(&gr);
			if (eq) {
				same++;
				if (v->active && active_now == NULL) {
					const char *aa[] = { "sieve", "activate", "-u", user, v->name, NULL };
					struct doveadm_result ar;
					fails += run(d, aa, NULL, 0, &ar, "activating a Sieve script");
					doveadm_result_release(&ar);
					printf("%s: Sieve: %s activated\n", d->account, v->name);
				}
				continue;
			}
			abuf_reset(&name);
			abuf_printf(&name, "%s-restored", v->name);
			(void)abuf_cstr(&name);
			printf("%s: Sieve: the account has another script named %s: the snapshot's goes in as %s\n",
			       d->account, v->name, (const char *)name.data);
		}
		/* put -a activates it in the same process */
		bool activate = v->active && (active_now == NULL || strcmp(active_now, (const char *)name.data) == 0);
		const char *pa[] = { "sieve", "put", "-u", user, activate ? "-a" : (const char *)name.data,
				     activate ? (const char *)name.data : NULL, NULL };
		struct doveadm_result pr;
		if (run(d, pa, body.data, body.len, &pr, "putting a Sieve script") != 0) {
			doveadm_result_release(&pr);
			fails++;
			continue;
		}
		doveadm_result_release(&pr);
		put++;
		if (activate)
			printf("%s: Sieve: %s activated\n", d->account, (const char *)name.data);
		else if (v->active)
			printf("%s: Sieve: %s stays active (activated after the attack); the snapshot's active script was %s\n",
			       d->account, active_now, v->name);
	}
	printf("%s: Sieve: %zu scripts put with doveadm sieve put, %zu already there\n", d->account, put, same);
	fflush(stdout);
	abuf_release(&name);
	abuf_release(&msg);
	free(lines);
	doveadm_result_release(&lr);
	return fails ? 1 : 0;
}

/* The owner of the nearest existing directory above path. */
static void owner_above(const char *path, int *uid, int *gid)
{
	char *p = strdup(path);
	while (p != NULL) {
		struct stat st;
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			*uid = (int)st.st_uid;
			*gid = (int)st.st_gid;
			break;
		}
		char *sl = strrchr(p, '/');
		if (sl == NULL || sl == p)
			break;
		*sl = '\0';
	}
	free(p);
}

/*
 * Staging.  When an account's Maildir doesn't exist at all (a host rebuilt
 * empty), the restore is written into DEST.arca-restore next to it, made
 * durable with one syncfs, and renamed into place.  Dovecot never sees a
 * half-restored Maildir, and no message needs a temporary name of its own
 * nor a sync per folder.  If DEST appears meanwhile (mail delivered, a
 * login), the staging directory is dropped and the restore merges into
 * DEST as usual.  It sits in a directory the mail user may write to, so it
 * is removed with fs_remove_tree (no symlink followed).
 */
#define STAGE_SUFFIX ".arca-restore"

/* DEST.arca-restore for dest (trailing '/' dropped); "" with --dry-run or
 * --folder, which never stage. */
static int stage_path(const struct dov *d, const char *dest, struct abuf *stage)
{
	abuf_reset(stage);
	if (d->dry_run || d->folder != NULL)
		return abuf_cstr(stage);
	size_t n = strlen(dest);
	while (n > 1 && dest[n - 1] == '/')
		n--;
	if (abuf_add(stage, dest, n) != 0 || abuf_printf(stage, "%s", STAGE_SUFFIX) != 0)
		return ARCA_ENOMEM;
	return abuf_cstr(stage);
}

/* STAGE.lock, flock()ed for as long as a run may write or remove STAGE:
 * two restores of one account never share (or delete) one stage.  1: held
 * by another run. */
static int stage_lock(const char *stage, int *fd_r, struct arca_err *err)
{
	*fd_r = -1;
	char *lp = NULL;
	if (asprintf(&lp, "%s.lock", stage) < 0)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	int rc = 0, fd = -1;
	/* the holder unlinks the file when done: a lock taken on a file
	 * unlinked meanwhile is no lock, so check it is still the one named */
	for (int tries = 0; tries < 8; tries++) {
		fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			rc = arca_err_errno(err, ARCA_EIO, errno, "create %s", lp);
			break;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			rc = errno == EWOULDBLOCK ? 1 : arca_err_errno(err, ARCA_EIO, errno, "lock %s", lp);
			break;
		}
		struct stat a, b;
		if (fstat(fd, &a) == 0 && stat(lp, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
			break;
		close(fd);
		fd = -1;
		rc = 1;   /* replaced each time: as if held */
	}
	if (rc == 0 && fd < 0)
		rc = 1;
	if (rc) {
		if (fd >= 0)
			close(fd);
	} else {
		*fd_r = fd;
	}
	free(lp);
	return rc;
}

static void stage_unlock(const char *stage, int fd)
{
	if (fd < 0)
		return;
	char *lp = NULL;
	if (asprintf(&lp, "%s.lock", stage) >= 0)
		unlink(lp);
	free(lp);
	close(fd);
}

/* Move the complete stage to dest, never over anything: renameat2
 * RENAME_NOREPLACE, or where the file system lacks it (NFS, CIFS) an
 * exclusive mkdir of dest and a rename over that empty directory.  1: dest
 * exists (appeared meanwhile), 0: moved, -1: errno. */
static int stage_move(const char *stage, const char *dest, int owner_uid, int owner_gid)
{
	if (renameat2(AT_FDCWD, stage, AT_FDCWD, dest, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EEXIST || errno == ENOTEMPTY)
		return 1;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (mkdir(dest, 0700) != 0)
		return errno == EEXIST ? 1 : -1;
	/* the mail user's, as the stage is: a crash before the rename leaves
	 * an empty Maildir root Dovecot can use, which the re-run merges into */
	if (owner_uid >= 0 && chown(dest, (uid_t)owner_uid, (gid_t)owner_gid) != 0) {
		int e = errno;
		(void)rmdir(dest);
		errno = e;
		return -1;
	}
	if (rename(stage, dest) == 0)
		return 0;
	int e = errno;
	(void)rmdir(dest);   /* ours, unless something was put in it meanwhile */
	errno = e;
	return e == EEXIST || e == ENOTEMPTY ? 1 : -1;
}

/* The staged restore is complete and durable (restore_maildir ends with
 * restore_sync): now in place.  1: dest appeared meanwhile (nothing moved,
 * the stage is gone), 0: done, -1: an error (printed). */
static int stage_finish(const char *account, const char *stage, const char *dest, int owner_uid,
			int owner_gid)
{
	struct arca_err err = { 0 };
	fault_crash_point();   /* durable, not in place */
	fault_stop_point("stage-move");   /* a test makes dest appear here */
	int mv = stage_move(stage, dest, owner_uid, owner_gid);
	if (mv > 0) {
		printf("%s: %s appeared while the restore was being written: merging into it instead\n",
		       account, dest);
		if (fs_remove_tree(stage, &err) != 0)
			fprintf(stderr, "%s: %s: warning: %s\n", cli_prog, account, err.msg);
		return 1;
	}
	if (mv < 0) {
		fprintf(stderr, "%s: %s: move %s to %s: %s (the restore is complete there: move it by hand, or re-run)\n",
			cli_prog, account, stage, dest, strerror(errno));
		return -1;
	}
	fault_crash_point();   /* in place, the move not yet durable */
	/* the parent of dest as named without trailing '/' (the stage's) */
	char *parent = fs_dirname(stage);
	int rc = parent ? fs_fsync_dir(parent, &err) : ARCA_ENOMEM;
	free(parent);
	if (rc != 0) {
		fprintf(stderr, "%s: %s: %s\n", cli_prog, account, err.msg[0] ? err.msg : "out of memory");
		return -1;
	}
	return 0;
}

/*
 * An account written and waiting for its last steps: Sieve, doveadm's
 * status and MODSEQ raise, the check, the summary line; and, when it was
 * staged, first the sync and the move into place.  The committer thread
 * does those for staged accounts in batches while the worker writes the
 * next ones: one syncfs and one doveadm process for every account that
 * finished writing meanwhile (group commit), instead of one each.
 */
struct pending {
	struct pending *next;
	struct snap_info si;          /* owned copy: a re-run when dest appeared */
	char *account, *user, *dest, *home, *stage;   /* account: si.account */
	int stage_fd, owner_uid, owner_gid, layout;
	bool journal_only;
	struct restore_result res;
	struct snapshot *s;           /* Sieve scripts (no messages loaded) */
	struct sieve_body *bodies;    /* read by the worker: the committer has no repository */
	struct frep *reps;
	size_t nreps;
	int fails;                    /* failures already seen and said */
};

static void pending_free(struct pending *p)
{
	if (p == NULL)
		return;
	if (p->stage != NULL)
		stage_unlock(p->stage, p->stage_fd);
	for (size_t i = 0; i < p->nreps; i++)
		free(p->reps[i].folder);
	free(p->reps);
	sieve_bodies_free(p->bodies, p->s ? p->s->nsieve : 0);
	snapshot_free(p->s);
	free(p->si.account);
	free(p->user);
	free(p->dest);
	free(p->home);
	free(p->stage);
	free(p);
}

/* A heap copy of pd (strings copied; s, bodies, the stage lock and d's
 * reports moved in on success). */
static struct pending *pending_take(const struct pending *pd, const struct snap_info *si,
				    const char *stage, int stage_fd, struct dov *d)
{
	struct pending *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	*p = *pd;
	p->next = NULL;
	p->si = (struct snap_info){ .seq = si->seq, .time_ns = si->time_ns };
	memcpy(p->si.root, si->root, ARCA_ID_LEN);
	p->si.account = strdup(si->account);
	p->user = strdup(pd->user);
	p->dest = strdup(pd->dest);
	p->home = strdup(pd->home ? pd->home : "");
	p->stage = strdup(stage);
	p->account = p->si.account;
	p->reps = NULL;
	p->nreps = 0;
	p->s = NULL;
	p->bodies = NULL;
	p->stage_fd = -1;
	if (p->si.account == NULL || p->user == NULL || p->dest == NULL || p->home == NULL || p->stage == NULL) {
		free(p->stage);
		p->stage = NULL;   /* the lock stays the caller's */
		pending_free(p);
		return NULL;
	}
	p->s = pd->s;
	p->bodies = pd->bodies;
	p->stage_fd = stage_fd;
	p->reps = d->reps;
	p->nreps = d->nreps;
	return p;
}

/* The steps after the messages are in place, for one account (d->account
 * and d->reps are set to it here).  given: its mailbox status from a
 * commit's doveadm for many accounts, or NULL.  Returns 0 or 1 (failed,
 * said). */
static int account_finish(struct dov *d, struct pending *p, struct statuses *given)
{
	d->account = p->account;
	d->reps = p->reps;
	d->nreps = d->cap = p->nreps;
	int fails = p->fails;
	const struct snapshot *s = p->s;
	if (s && s->nsieve > 0 && d->folder == NULL) {
		if (d->sieve == 0)
			printf("%s: Sieve: %zu scripts in the snapshot, not restored (--no-sieve)\n", p->account, s->nsieve);
		else if (d->have_doveadm)
			fails += sieve_doveadm(d, s, p->bodies, p->user);
		else if (d->sieve_home && !d->dry_run)
			printf("%s: Sieve: %llu scripts written as files under %s (no --doveadm)\n", p->account,
			       (unsigned long long)p->res.sieve_scripts, p->home);
		else if (!d->dry_run)
			fprintf(stderr, "%s: %s: warning: the snapshot has %zu Sieve scripts, not restored: give --doveadm or --sieve-home\n",
				cli_prog, p->account, s->nsieve);
	} else if (d->sieve == 1 && d->folder == NULL && !p->journal_only) {
		printf("%s: Sieve: the snapshot has no Sieve scripts\n", p->account);
	}
	/* MODSEQ, next UID, and the check */
	fails += raise_and_check(d, p->user, p->layout, given);
	printf("%s: %s: %llu folders, %llu messages added%s\n", p->account,
	       fails ? "done WITH ERRORS (see above)" : d->dry_run ? "dry run done" : "restored",
	       (unsigned long long)p->res.folders, (unsigned long long)p->res.messages,
	       d->dry_run ? " (would be)" : "");
	fflush(stdout);
	/* the reports stay p's */
	d->reps = NULL;
	d->nreps = d->cap = 0;
	d->account = NULL;
	return fails ? 1 : 0;
}

#define COMMIT_BATCH_MAX 64    /* accounts per syncfs and doveadm process */
#define COMMIT_QUEUE_MAX 64    /* written and waiting: the worker waits beyond */
#define COMMIT_INTERVAL_MS 1000

struct committer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pending *head, *tail;  /* written, waiting */
	size_t queued;
	struct pending *redo;         /* dest appeared: the worker merges them */
	bool closing;
	int fails;
	struct dov d;                 /* the thread's own: account, reps, fails */
};

/* A user name doveadm -F can take, and whose lines "USER BOX k=v" are not
 * ambiguous: no blank, no control byte. */
static bool user_groupable(const char *u)
{
	if (*u == '\0')
		return false;
	for (; *u; u++)
		if ((unsigned char)*u <= ' ' || *u == 0x7f)
			return false;
	return true;
}

/*
 * One `doveadm -f flow mailbox status -F - FIELDS '*'` for the users of
 * items[0..n) (on stdin, one per line); Dovecot 2.3 prints each mailbox
 * as "USER BOX k=v ...".  given[i] gets item i's lines (names point into
 * res, which the caller releases after).  Returns 0 when the answer could
 * be read whole; otherwise every account asks again alone (which says
 * what failed, per account).
 */
static int group_status(struct dov *cd, struct pending **items, size_t n, struct doveadm_result *res,
			struct statuses *given)
{
	struct abuf in = ABUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = user_groupable(items[i]->user) ? abuf_printf(&in, "%s\n", items[i]->user) : -1;
	if (rc != 0) {
		abuf_release(&in);
		return -1;
	}
	struct doveadm gdv = cd->dv;
	gdv.timeout_s = cd->dv.timeout_s * (int)n;
	const char *args[] = { "-f", "flow", "mailbox", "status", "-F", "-", STATUS_FIELDS, "*", NULL };
	rc = doveadm_run(&gdv, args, in.data, in.len, res);
	abuf_release(&in);
	char **lines = NULL;
	size_t nl = 0;
	size_t max = (size_t)MAILDIR_FOLDERS_MAX * n;
	if (rc == 0 && res->out.len > 0) {
		lines = calloc(max, sizeof(char *));
		rc = lines == NULL || abuf_cstr(&res->out) != 0 ? -1
		     : dva_split_lines((char *)res->out.data, res->out.len, lines, max, &nl);
	}
	size_t *owner = rc == 0 ? calloc(nl ? nl : 1, sizeof(*owner)) : NULL;
	if (owner == NULL)
		rc = -1;
	/* whose line: the longest user name it starts with, then a space */
	for (size_t l = 0; l < nl && rc == 0; l++) {
		size_t best = n, blen = 0;
		for (size_t i = 0; i < n; i++) {
			size_t ul = strlen(items[i]->user);
			if (ul > blen && strncmp(lines[l], items[i]->user, ul) == 0 && lines[l][ul] == ' ') {
				best = i;
				blen = ul;
			}
		}
		if (best == n) {
			rc = -1;
			break;
		}
		owner[l] = best;
		given[best].n++;
		lines[l] += blen + 1;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t cnt = given[i].n;
		given[i].n = 0;
		given[i].names = calloc(cnt ? cnt : 1, sizeof(char *));
		given[i].st = calloc(cnt ? cnt : 1, sizeof(struct dva_status));
		if (given[i].names == NULL || given[i].st == NULL)
			rc = -1;
	}
	for (size_t l = 0; l < nl && rc == 0; l++) {
		struct statuses *g = &given[owner[l]];
		if (dva_status_line(lines[l], &g->st[g->n]) != 0) {
			rc = -1;
			break;
		}
		g->names[g->n++] = lines[l];
	}
	if (rc != 0)
		for (size_t i = 0; i < n; i++)
			statuses_release(&given[i]);
	free(owner);
	free(lines);
	return rc;
}

/* Durable, in place, then finished: the committer's work on one batch.
 * Returns the accounts that failed (each said). */
static int commit_batch(struct committer *cm, struct pending *batch)
{
	struct dov *cd = &cm->d;
	size_t n = 0;
	for (struct pending *p = batch; p; p = p->next)
		n++;
	struct pending **all = calloc(n, sizeof(*all)), **moved = calloc(n, sizeof(*moved));
	struct statuses *given = calloc(n, sizeof(*given));
	bool *failed = calloc(n, sizeof(*failed));
	int fails = 0;
	if (all == NULL || moved == NULL || given == NULL || failed == NULL) {
		free(all);
		free(moved);
		free(given);
		free(failed);
		for (struct pending *p = batch, *nx; p; p = nx) {
			nx = p->next;
			fprintf(stderr, "%s: %s: out of memory finishing the restore: it stays in %s (re-run)\n",
				cli_prog, p->account, p->stage);
			pending_free(p);
			fails++;
		}
		return fails;
	}
	size_t k = 0;
	for (struct pending *p = batch; p; p = p->next)
		all[k++] = p;
	/* 1. durable: one syncfs per file system holding a stage */
	dev_t synced[16];
	size_t nsynced = 0, nmoved = 0;
	for (size_t i = 0; i < n; i++) {
		struct pending *p = all[i];
		struct stat st;
		struct arca_err err = { 0 };
		int rc = stat(p->stage, &st) == 0 ? 0 : arca_err_errno(&err, ARCA_EIO, errno, "stat %s", p->stage);
		bool done = false;
		for (size_t j = 0; rc == 0 && j < nsynced && !done; j++)
			done = synced[j] == st.st_dev;
		if (rc == 0 && !done) {
			rc = fault_hit(FAULT_FSYNC) ? arca_err_errno(&err, ARCA_EIO, EIO, "sync %s", p->stage)
						    : restore_sync(p->stage, &err);
			if (rc == 0 && nsynced < sizeof(synced) / sizeof(synced[0]))
				synced[nsynced++] = st.st_dev;
		}
		failed[i] = rc != 0;
		if (rc != 0) {
			fprintf(stderr, "%s: %s: restoring into %s: %s (what is already there is untouched; re-run to complete)\n",
				cli_prog, p->account, p->stage, err.msg);
			struct arca_err e2 = { 0 };
			(void)fs_remove_tree(p->stage, &e2);
			fails++;
		}
	}
	/* 2. in place; where dest appeared meanwhile, back to the worker */
	for (size_t i = 0; i < n; i++) {
		struct pending *p = all[i];
		if (failed[i])
			continue;
		int st = stage_finish(p->account, p->stage, p->dest, p->owner_uid, p->owner_gid);
		stage_unlock(p->stage, p->stage_fd);
		p->stage_fd = -1;
		free(p->stage);
		p->stage = NULL;
		if (st > 0) {
			all[i] = NULL;   /* the worker's now */
			pthread_mutex_lock(&cm->mu);
			p->next = cm->redo;
			cm->redo = p;
			pthread_mutex_unlock(&cm->mu);
		} else if (st < 0) {
			fails++;
		} else {
			moved[nmoved++] = p;
		}
	}
	/* 3. one doveadm for their status, then each account's last steps */
	struct doveadm_result res = { 0 };
	bool grouped = cd->have_doveadm && nmoved > 0 && group_status(cd, moved, nmoved, &res, given) == 0;
	for (size_t i = 0; i < nmoved; i++)
		fails += account_finish(cd, moved[i], grouped ? &given[i] : NULL);
	doveadm_result_release(&res);
	for (size_t i = 0; i < n; i++) {
		statuses_release(&given[i]);
		pending_free(all[i]);
	}
	free(given);
	free(failed);
	free(moved);
	free(all);
	return fails;
}

static void *committer_main(void *arg)
{
	struct committer *cm = arg;
	struct timespec prev = { 0 };
	pthread_mutex_lock(&cm->mu);
	for (;;) {
		while (cm->head == NULL && !cm->closing)
			pthread_cond_wait(&cm->cv, &cm->mu);
		if (cm->head == NULL)
			break;
		/* a commit at most every COMMIT_INTERVAL_MS, unless a batch is
		 * full or the worker is done: each doveadm process costs Dovecot
		 * ~50 ms of start-up, however few accounts it is given */
		struct timespec until = prev;
		until.tv_nsec += (long)COMMIT_INTERVAL_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!cm->closing && cm->queued < COMMIT_BATCH_MAX &&
		       pthread_cond_timedwait(&cm->cv, &cm->mu, &until) == 0)
			;
		clock_gettime(CLOCK_MONOTONIC, &prev);
		/* everything written meanwhile, up to a batch */
		struct pending *batch = cm->head, *last = batch;
		size_t n = 1;
		while (last->next != NULL && n < COMMIT_BATCH_MAX) {
			last = last->next;
			n++;
		}
		cm->head = last->next;
		if (cm->head == NULL)
			cm->tail = NULL;
		last->next = NULL;
		cm->queued -= n;
		pthread_cond_broadcast(&cm->cv);
		pthread_mutex_unlock(&cm->mu);
		int f = commit_batch(cm, batch);
		pthread_mutex_lock(&cm->mu);
		cm->fails += f;
	}
	pthread_mutex_unlock(&cm->mu);
	return NULL;
}

/* Hands p to the worker's committer (started on first use); waits while
 * COMMIT_QUEUE_MAX are queued.  0, or -1 (no thread: p stays the
 * caller's). */
static int committer_add(struct dov *d, struct pending *p)
{
	struct committer *cm = d->cm;
	if (cm == NULL) {
		cm = calloc(1, sizeof(*cm));
		if (cm == NULL)
			return -1;
		cm->d = *d;   /* the options; account, reps and fails its own */
		cm->d.account = NULL;
		cm->d.reps = NULL;
		cm->d.nreps = cm->d.cap = 0;
		cm->d.fails = 0;
		cm->d.cm = NULL;
		pthread_condattr_t ca;
		pthread_mutex_init(&cm->mu, NULL);
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&cm->cv, &ca);
		pthread_condattr_destroy(&ca);
		if (pthread_create(&cm->thread, NULL, committer_main, cm) != 0) {
			pthread_cond_destroy(&cm->cv);
			pthread_mutex_destroy(&cm->mu);
			free(cm);
			return -1;
		}
		d->cm = cm;
	}
	pthread_mutex_lock(&cm->mu);
	while (cm->queued >= COMMIT_QUEUE_MAX)
		pthread_cond_wait(&cm->cv, &cm->mu);
	if (cm->tail != NULL)
		cm->tail->next = p;
	else
		cm->head = p;
	cm->tail = p;
	cm->queued++;
	pthread_cond_broadcast(&cm->cv);
	pthread_mutex_unlock(&cm->mu);
	return 0;
}

static int dov_one(void *ctx, struct repo *r, const struct snap_info *si);

/* After a worker's last account: waits for its committer, then merges the
 * accounts whose Maildir appeared while their stage was written.  Returns
 * the failures (said). */
static int dov_done(void *ctx, struct repo *r)
{
	struct dov *d = ctx;
	struct committer *cm = d->cm;
	if (cm == NULL)
		return 0;
	pthread_mutex_lock(&cm->mu);
	cm->closing = true;
	pthread_cond_broadcast(&cm->cv);
	pthread_mutex_unlock(&cm->mu);
	pthread_join(cm->thread, NULL);
	d->cm = NULL;
	int fails = cm->fails;
	for (struct pending *p = cm->redo, *nx; p; p = nx) {
		nx = p->next;
		reps_clear(d);
		fails += dov_one(d, r, &p->si) != 0;
		pending_free(p);
	}
	pthread_cond_destroy(&cm->cv);
	pthread_mutex_destroy(&cm->mu);
	free(cm);
	/* a redo staged again (dest went away meanwhile) has a new committer */
	if (d->cm != NULL)
		fails += dov_done(ctx, r);
	return fails;
}

static int dov_one(void *ctx, struct repo *r, const struct snap_info *si)
{
	struct dov *d = ctx;
	d->account = si->account;
	d->fails = 0;
	struct abuf dest = ABUF_INIT, home = ABUF_INIT, user = ABUF_INIT, stage = ABUF_INIT;
	struct snapshot *s = NULL;
	int fails = 0, stage_fd = -1;
	if (restore_expand(d->pattern, si->account, &dest) != 0 ||
	    restore_expand(d->user_pattern, si->account, &user) != 0 ||
	    (d->sieve_home && restore_expand(d->sieve_home, si->account, &home) != 0)) {
		fprintf(stderr, "%s: account \"%s\" can't be a directory name in %s: not restored\n",
			cli_prog, si->account, d->pattern);
		fails = 1;
		goto out;
	}
	if (d->have_doveadm && strpbrk((const char *)user.data, "*?") != NULL) {
		/* doveadm -u takes these as wildcards: the commands would run
		 * for every user the name matches */
		fprintf(stderr, "%s: %s: the doveadm user \"%s\" holds '*' or '?', which doveadm -u takes as wildcards: not restored (give --doveadm-user)\n",
			cli_prog, si->account, (const char *)user.data);
		fails = 1;
		goto out;
	}
	int layout = d->layout;
	if (layout == MAILDIR_LAYOUT_AUTO) {
		struct maildir_folder *fl = NULL;
		size_t nf = 0;
		enum maildir_layout found;
		struct arca_err e2 = { 0 };
		struct stat st;
		/* an existing Maildir with folders says which */
		if (stat((const char *)dest.data, &st) == 0 &&
		    maildir_list_folders((const char *)dest.data, MAILDIR_LAYOUT_AUTO, &found, &fl, &nf, &e2) == 0 &&
		    nf > 1)
			layout = (int)found;
		maildir_folders_free(fl, nf);
	}
	struct restore_opts ro = { .dest = (const char *)dest.data, .owner_uid = d->owner_uid,
				   .owner_gid = d->owner_gid, .account = si->account,
				   .no_journal = d->no_journal, .journal_until = UINT64_MAX,
				   .warn = on_warn, .ctx = d, .merge = true,
				   .new_uidvalidity = d->new_uidvalidity, .dry_run = d->dry_run,
				   .folder = d->folder, .layout = layout, .report = on_report };
	if (ro.owner_uid < 0)
		owner_above((const char *)dest.data, &ro.owner_uid, &ro.owner_gid);
	bool journal_only = restore_journal_only(si);
	struct arca_err err = { 0 };
	if (!journal_only && snapshot_load(r, si->root, &s, &err) != 0) {
		fprintf(stderr, "%s: %s: %s\n", cli_prog, si->account, err.msg);
		fails = 1;
		goto out;
	}
	bool want_sieve = s && s->nsieve > 0 && d->sieve != 0 && d->folder == NULL;
	if (want_sieve && !d->have_doveadm && d->sieve_home)
		ro.sieve_home = (const char *)home.data;   /* files, as restore maildir does */
	if (layout == MAILDIR_LAYOUT_AUTO && s)
		layout = s->layout;
	char hex[2 * ARCA_ID_LEN + 1], t[40];
	hex_encode(hex, si->root, ARCA_ID_LEN);
	cli_format_time(si->time_ns, t);
	if (stage_path(d, (const char *)dest.data, &stage) != 0) {
		fprintf(stderr, "%s: %s: out of memory\n", cli_prog, si->account);
		fails = 1;
		goto out;
	}
	if (stage.len > 0) {
		/* a stage left by an interrupted run goes, whether dest exists
		 * now or not; a new one only when dest doesn't exist */
		/* its directory (the account's home) may not exist yet */
		char *par = fs_dirname((const char *)stage.data);
		int lr = par == NULL ? arca_err_set(&err, ARCA_ENOMEM, "out of memory")
				     : merge_mkdirs(par, ro.owner_uid, ro.owner_gid, &err);
		free(par);
		if (lr == 0)
			lr = stage_lock((const char *)stage.data, &stage_fd, &err);
		if (lr != 0) {
			if (lr > 0)
				fprintf(stderr, "%s: %s: another restore of this account is writing %s: not restored\n",
					cli_prog, si->account, (const char *)stage.data);
			else
				fprintf(stderr, "%s: %s: %s\n", cli_prog, si->account, err.msg);
			fails = 1;
			goto out;
		}
		if (fs_remove_tree((const char *)stage.data, &err) != 0) {
			fprintf(stderr, "%s: %s: %s (a staging directory left by an interrupted restore)\n",
				cli_prog, si->account, err.msg);
			fails = 1;
			goto out;
		}
		struct stat dst;
		if (lstat((const char *)dest.data, &dst) != 0 && errno == ENOENT) {
			ro.dest = (const char *)stage.data;
			ro.staged = true;
		}
	}
	if (journal_only)
		printf("%s: restoring from the journal only (no snapshot) into %s%s\n", si->account,
		       (const char *)dest.data, ro.staged ? " (new: staged next to it)" : "");
	else
		printf("%s: restoring snapshot %.16s (%s) into %s (%s layout%s%s)\n", si->account, hex, t,
		       (const char *)dest.data, layout == MAILDIR_LAYOUT_FS ? "LAYOUT=fs" : "Maildir++",
		       d->dry_run ? "; dry run" : "", ro.staged ? "; new: staged next to it" : "");
	fflush(stdout);
	struct restore_result res;
	memset(&err, 0, sizeof(err));
	/* a staged account is made durable and moved in by the committer,
	 * with other accounts' stages: one syncfs and one doveadm for many */
	ro.no_sync = ro.staged;
	int rc = restore_maildir(r, journal_only ? NULL : si->root, &ro, &res, &err);
	if (rc && ro.staged) {
		struct arca_err e2 = { 0 };
		(void)fs_remove_tree(ro.dest, &e2);   /* nothing of it was in place */
		ro.dest = (const char *)dest.data;
	}
	if (rc) {
		fprintf(stderr, "%s: %s: restoring into %s: %s (what is already there is untouched; re-run to complete)\n",
			cli_prog, si->account, ro.dest, err.msg[0] ? err.msg : arca_strerror(rc));
		fails = 1;
		goto out;
	}
	if (res.journal_added || res.journal_dup)
		printf("%s: journal: %llu journaled messages added, %llu were there already\n", si->account,
		       (unsigned long long)res.journal_added, (unsigned long long)res.journal_dup);
	if (res.subscriptions_added)
		printf("%s: subscriptions: %llu added\n", si->account, (unsigned long long)res.subscriptions_added);
	struct pending pd = { .account = (char *)si->account, .user = (char *)user.data,
			      .dest = (char *)dest.data, .home = (char *)home.data, .stage_fd = -1,
			      .owner_uid = ro.owner_uid, .owner_gid = ro.owner_gid, .layout = layout,
			      .journal_only = journal_only, .res = res, .s = s };
	if (s && s->nsieve > 0 && d->folder == NULL && d->sieve != 0 && d->have_doveadm && !d->dry_run) {
		pd.bodies = sieve_read(d, r, s, &fails);
		if (pd.bodies == NULL)
			goto out;
	}
	pd.fails = d->fails + fails;
	if (ro.staged) {
		struct pending *p = pending_take(&pd, si, (const char *)stage.data, stage_fd, d);
		if (p == NULL || committer_add(d, p) != 0) {
			fprintf(stderr, "%s: %s: out of memory, or no thread to finish the restore: not restored (re-run)\n",
				cli_prog, si->account);
			if (p != NULL) {
				p->stage_fd = -1;   /* the lock is still ours: unlocked below */
				pending_free(p);    /* with s, the Sieve bodies and the reports */
				s = NULL;
				d->reps = NULL;
				d->nreps = d->cap = 0;
			} else {
				sieve_bodies_free(pd.bodies, s ? s->nsieve : 0);
			}
			struct arca_err e2 = { 0 };
			(void)fs_remove_tree((const char *)stage.data, &e2);
			fails = 1;
			goto out;
		}
		/* the pending account owns these now */
		s = NULL;
		stage_fd = -1;
		abuf_reset(&stage);
		d->reps = NULL;
		d->nreps = d->cap = 0;
		goto out;
	}
	pd.reps = d->reps;
	pd.nreps = d->nreps;
	fails = account_finish(d, &pd, NULL);
	sieve_bodies_free(pd.bodies, s ? s->nsieve : 0);
	d->reps = pd.reps;   /* freed below */
	d->nreps = pd.nreps;
out:
	snapshot_free(s);
	if (stage.len > 0)
		stage_unlock((const char *)stage.data, stage_fd);
	reps_clear(d);
	abuf_release(&dest);
	abuf_release(&home);
	abuf_release(&user);
	abuf_release(&stage);
	d->account = NULL;
	return fails ? 1 : 0;
}

/* `doveadm config -h mail_location`, run in a thread while the restore key
 * is derived (each takes a few tenths of a second, one CPU each). */
struct config_check {
	pthread_t thread;
	bool started, joined;
	struct dov d;                 /* a copy: dv, and "doveadm" as the account */
	const char *doveadm;
	int rc;                       /* 0, or the exit code (said) */
	int layout;                   /* what mail_location says, or AUTO */
};

static void *config_check_main(void *arg)
{
	struct config_check *cc = arg;
	const char *ca[] = { "config", "-h", "mail_location", NULL };
	struct doveadm_result res;
	if (run(&cc->d, ca, NULL, 0, &res, "asking Dovecot's mail_location") != 0) {
		cc->rc = cli_failf("doveadm does not work as given (--doveadm \"%s\"): nothing was restored", cc->doveadm);
	} else {
		bool known = false, fs = false;
		bool text = res.out.len == 0 ||
			    (abuf_cstr(&res.out) == 0 && memchr(res.out.data, '\0', res.out.len) == NULL);
		const char *loc = res.out.len > 0 && text ? (const char *)res.out.data : "";
		if (!text || dva_mail_location(loc, &known, &fs) != 0)
			cc->rc = cli_failf("Dovecot's mail_location is %.200s: arca restore dovecot writes Maildir only", loc);
		else if (known)
			cc->layout = fs ? MAILDIR_LAYOUT_FS : MAILDIR_LAYOUT_MAILDIRPP;
	}
	doveadm_result_release(&res);
	return NULL;
}

/* The check's verdict, before anything is written: 0, or the exit code.
 * Joins the thread (once). */
static int dov_ready(void *ctx)
{
	struct dov *d = ctx;
	struct config_check *cc = d->cc;
	if (cc == NULL)
		return 0;
	if (cc->started && !cc->joined)
		pthread_join(cc->thread, NULL);
	cc->joined = true;
	if (cc->rc == 0 && d->layout == MAILDIR_LAYOUT_AUTO)
		d->layout = cc->layout;
	d->cc = NULL;
	return cc->rc;
}

int cmd_restore_dovecot(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "restore-key", required_argument, NULL, 'k' },
		{ "account", required_argument, NULL, 'a' },
		{ "all", no_argument, NULL, 'A' },
		{ "maildir", required_argument, NULL, 'm' },
		{ "owner", required_argument, NULL, 'o' },
		{ "doveadm", required_argument, NULL, 'D' },
		{ "doveadm-user", required_argument, NULL, 'U' },
		{ "doveadm-timeout", required_argument, NULL, 'T' },
		{ "snapshot", required_argument, NULL, 's' },
		{ "at", required_argument, NULL, 't' },
		{ "folder", required_argument, NULL, 'F' },
		{ "sieve", no_argument, NULL, 'S' },
		{ "no-sieve", no_argument, NULL, 'N' },
		{ "sieve-home", required_argument, NULL, 'H' },
		{ "new-uidvalidity", no_argument, NULL, 'V' },
		{ "no-journal", no_argument, NULL, 'J' },
		{ "layout", required_argument, NULL, 'L' },
		{ "separator", required_argument, NULL, 'P' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *repo = NULL, *keyfile = NULL, *snap = NULL, *at = NULL, *doveadm = NULL,
		   *layout = NULL;
	char *accounts[256];
	size_t naccounts = 0;
	bool all = false;
	int jobs = 0, timeout = 60;
	struct dov d = { .sieve = -1, .owner_uid = -1, .owner_gid = -1, .user_pattern = "%u" };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'a':
			if (naccounts == sizeof(accounts) / sizeof(accounts[0]))
				return cli_failf("too many --account options (use --all)");
			accounts[naccounts++] = optarg;
			break;
		case 'A': all = true; break;
		case 'm': d.pattern = optarg; break;
		case 'o':
			if (sscanf(optarg, "%d:%d", &d.owner_uid, &d.owner_gid) != 2 ||
			    d.owner_uid < 0 || d.owner_gid < 0)
				return cli_failf("--owner takes numeric UID:GID");
			break;
		case 'D': doveadm = optarg; break;
		case 'U': d.user_pattern = optarg; break;
		case 'T': timeout = atoi(optarg); break;
		case 's': snap = optarg; break;
		case 't': at = optarg; break;
		case 'F': d.folder = optarg; break;
		case 'S': d.sieve = 1; break;
		case 'N': d.sieve = 0; break;
		case 'H': d.sieve_home = optarg; break;
		case 'V': d.new_uidvalidity = true; break;
		case 'J': d.no_journal = true; break;
		case 'L': layout = optarg; break;
		case 'P':
			if (strlen(optarg) != 1)
				return cli_failf("--separator takes one character");
			d.sep = optarg[0];
			break;
		case 'j': jobs = atoi(optarg); break;
		case 'n': d.dry_run = true; break;
		case 'h': puts(USAGE); return 0;
		default: return cli_usage(USAGE);
		}
	}
	if (optind != argc || repo == NULL || keyfile == NULL || d.pattern == NULL ||
	    (snap != NULL && at != NULL) || (all == (naccounts > 0)))
		return cli_usage(USAGE);
	if (snap != NULL && naccounts != 1)
		return cli_failf("--snapshot names one account's snapshot: give exactly one --account");
	if (d.folder != NULL && naccounts != 1)
		return cli_failf("--folder restores one folder of one account: give exactly one --account");
	if (!restore_pattern_ok(d.pattern))
		return cli_failf("--maildir %s: the pattern must hold %%u or %%n (e.g. /srv/mail/%%d/%%n/Maildir), or every account would go to the same Maildir",
				 d.pattern);
	if (d.pattern[0] != '/')
		return cli_failf("--maildir %s: give an absolute path", d.pattern);
	if (d.sieve_home && !restore_pattern_ok(d.sieve_home))
		return cli_failf("--sieve-home %s: the pattern must hold %%u or %%n", d.sieve_home);
	uint64_t until = UINT64_MAX;
	if (at != NULL && cli_parse_time(at, &until) != 0)
		return cli_failf("--at %s: not a time (use RFC 3339, e.g. 2026-11-28T06:00:00Z)", at);
	d.layout = MAILDIR_LAYOUT_AUTO;
	if (layout != NULL) {
		if (strcmp(layout, "fs") == 0)
			d.layout = MAILDIR_LAYOUT_FS;
		else if (strcmp(layout, "maildirpp") == 0 || strcmp(layout, "maildir++") == 0)
			d.layout = MAILDIR_LAYOUT_MAILDIRPP;
		else
			return cli_failf("--layout takes maildirpp or fs");
	}
	if (access(keyfile, R_OK) != 0)
		return cli_failf("restore key %s: %s (the offline key made by arca init)", keyfile, strerror(errno));
	int rc = 0;
	struct config_check cc = { .layout = MAILDIR_LAYOUT_AUTO };
	if (doveadm != NULL) {
		if (doveadm_init(&d.dv, doveadm, timeout) != 0)
			return cli_failf("--doveadm \"%s\": give the program and its options, e.g. \"doveadm -c /etc/dovecot/dovecot.conf\"",
					 doveadm);
		d.have_doveadm = true;
		/* before anything is written (dov_ready), while the key is
		 * derived: doveadm must work, and say how Dovecot stores mail */
		cc.d = d;
		cc.d.account = "doveadm";
		cc.doveadm = doveadm;
		if (pthread_create(&cc.thread, NULL, config_check_main, &cc) == 0) {
			cc.started = true;
		} else {
			config_check_main(&cc);
			cc.joined = true;
		}
		d.cc = &cc;
	}
	struct restore_many m = { .repo = repo, .keyfile = keyfile, .at = at, .accounts = accounts,
				  .naccounts = naccounts, .jobs = jobs, .no_journal = d.no_journal,
				  .journal_until = until, .one = dov_one, .done = dov_done, .ready = dov_ready,
				  .ctx = &d };
	if (snap != NULL) {
		/* one account, one snapshot: no workers needed */
		struct repo *r;
		rc = cli_open_repo(repo, REPO_OPEN_READ, keyfile, &r);
		if (rc == 0) {
			struct snap_info si;
			rc = restore_pick_one(r, accounts[0], snap, at, d.no_journal, until, &si);
			if (rc == 0 && (rc = dov_ready(&d)) != 0)
				snap_info_release(&si);
			else if (rc == 0) {
				rc = dov_one(&d, r, &si);
				if (dov_done(&d, r) != 0)
					rc = 1;
				snap_info_release(&si);
			}
			repo_close(r);
		}
	} else {
		rc = restore_many_run(&m);
	}
	(void)dov_ready(&d);   /* joined, if the repository never opened */
	doveadm_free(&d.dv);
	return rc;
}
