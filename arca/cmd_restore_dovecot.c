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
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "overlay.h"
#include "dovecot_restore.h"
#include "fsutil.h"
#include "maildir.h"
#include "restore_many.h"
#include "banned.h"

static const char USAGE[] =
	"arca restore dovecot --repo REPO --restore-key KEYFILE (--account A ... | --all)\n"
	"                     --maildir PATTERN [--owner UID:GID] [--doveadm \"doveadm -c CONF\"]\n"
	"                     [--snapshot ID | --at TIME] [--folder NAME] [--new-uidvalidity]\n"
	"                     [--sieve | --no-sieve] [--sieve-home PATTERN] [--no-journal]\n"
	"                     [--layout maildirpp|fs] [--separator C] [--doveadm-user PATTERN]\n"
	"                     [--doveadm-timeout S] [--jobs N] [--dry-run] [--overlay FILE]\n\n"
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
	"--dry-run: say per folder what would be done, write nothing.\n"
	"--overlay FILE (what arca serve-imap --overlay kept): the flags and keywords\n"
	"users changed while the vault served them replace the snapshot's for those\n"
	"messages, and HIGHESTMODSEQ is raised above the MODSEQs they were served with.";

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
	if (rep->unusable > 0) {
		/* said one by one (on_warn); the account is not whole */
		fprintf(stderr, "%s: %s: %s: %llu messages not restored: their names can't be file names\n",
			cli_prog, d->account, rep->folder, (unsigned long long)rep->unusable);
		d->fails++;
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

/* Step 2 with doveadm: put each script (never replacing a different one of
 * the same name: that goes in as NAME-restored), activate the snapshot's
 * active one unless the account has another active already. */

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

static int dov_one(void *ctx, struct repo *r, const struct snap_info *si);

/* After a worker's last account: waits for its committer, then merges the
 * accounts whose Maildir appeared while their stage was written.  Returns
 * the failures (said). */
static int dov_done(void *ctx, struct repo *r)
{
	struct dov *d = ctx;
	struct pending *redo;
	int fails = dov_commit_close(d->cm, &redo);
	d->cm = NULL;
	/* merged into the Maildir that appeared, never staged again (a
	 * dangling symlink at dest would make that loop forever) */
	d->no_stage = true;
	for (struct pending *p = redo, *nx; p; p = nx) {
		nx = p->next;
		dov_reps_clear(d);
		fails += dov_one(d, r, &p->si) != 0;
		dov_pending_free(p);
	}
	d->no_stage = false;
	return fails;
}

static int dov_one(void *ctx, struct repo *r, const struct snap_info *si)
{
	struct dov *d = ctx;
	d->account = si->account;
	d->fails = 0;
	struct abuf dest = ABUF_INIT, home = ABUF_INIT, user = ABUF_INIT, stage = ABUF_INIT;
	struct snapshot *s = NULL;
	int fails = 0, stage_fd = -1, sync_fd = -1;
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
				   .folder = d->folder, .layout = layout, .report = on_report,
				   .overlay = d->overlay };
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
	if (dov_stage_path(d, (const char *)dest.data, &stage) != 0) {
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
			lr = dov_stage_lock((const char *)stage.data, &stage_fd, &err);
		if (lr != 0) {
			if (lr > 0)
				fprintf(stderr, "%s: %s: another restore of this account is writing %s: not restored\n",
					cli_prog, si->account, (const char *)stage.data);
			else
				fprintf(stderr, "%s: %s: %s\n", cli_prog, si->account, err.msg);
			fails = 1;
			goto out;
		}
		if (dov_stage_clear((const char *)stage.data, &err) != 0) {
			fprintf(stderr, "%s: %s: %s\n", cli_prog, si->account, err.msg);
			fails = 1;
			goto out;
		}
		/* dest as named without trailing '/' (so a symlink there is
		 * seen, not followed): the stage's name without its suffix */
		char *bare = strndup((const char *)stage.data, stage.len - strlen(STAGE_SUFFIX));
		struct stat dst;
		bool absent = bare != NULL && lstat(bare, &dst) != 0 && errno == ENOENT;
		free(bare);
		if (absent && !d->no_stage) {
			if (dov_stage_make((const char *)stage.data, ro.owner_uid, ro.owner_gid, &err) != 0 ||
			    (sync_fd = open((const char *)stage.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
				if (err.msg[0] == '\0')
					arca_err_errno(&err, ARCA_EIO, errno, "open %s", (const char *)stage.data);
				fprintf(stderr, "%s: %s: %s: not restored\n", cli_prog, si->account, err.msg);
				struct arca_err e2 = { 0 };
				(void)dov_stage_clear((const char *)stage.data, &e2);
				fails = 1;
				goto out;
			}
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
	if (res.overlay_msgs || res.overlay_kw_dropped)
		printf("%s: overlay: %llu messages with the flags users set through serve-imap%s\n", si->account,
		       (unsigned long long)res.overlay_msgs,
		       res.overlay_kw_dropped ? " (some keywords left out: a folder takes 64)" : "");
	struct pending pd = { .account = (char *)si->account, .user = (char *)user.data,
			      .dest = (char *)dest.data, .home = (char *)home.data, .stage_fd = -1,
			      .sync_fd = sync_fd,
			      .owner_uid = ro.owner_uid, .owner_gid = ro.owner_gid, .layout = layout,
			      .journal_only = journal_only, .res = res, .s = s };
	if (s && s->nsieve > 0 && d->folder == NULL && d->sieve != 0 && d->have_doveadm && !d->dry_run) {
		pd.bodies = dov_sieve_read(d, r, s, &fails);
		if (pd.bodies == NULL) {
			struct arca_err e2 = { 0 };
			if (ro.staged)
				(void)fs_remove_tree((const char *)stage.data, &e2);
			goto out;
		}
	}
	pd.fails = d->fails + fails;
	if (ro.staged) {
		struct pending *p = dov_pending_take(&pd, si, (const char *)stage.data, stage_fd, d);
		if (p == NULL || dov_commit_add(d, p) != 0) {
			fprintf(stderr, "%s: %s: out of memory, or no thread to finish the restore: not restored (re-run)\n",
				cli_prog, si->account);
			if (p != NULL) {
				p->stage_fd = -1;   /* the lock is still ours: unlocked below */
				dov_pending_free(p);    /* with s, sync_fd, the Sieve bodies and the reports */
				s = NULL;
				sync_fd = -1;
				d->reps = NULL;
				d->nreps = d->cap = 0;
			} else {
				dov_sieve_free(pd.bodies, s ? s->nsieve : 0);
			}
			struct arca_err e2 = { 0 };
			(void)fs_remove_tree((const char *)stage.data, &e2);
			fails = 1;
			goto out;
		}
		/* the pending account owns these now */
		s = NULL;
		stage_fd = -1;
		sync_fd = -1;
		abuf_reset(&stage);
		d->reps = NULL;
		d->nreps = d->cap = 0;
		goto out;
	}
	pd.reps = d->reps;
	pd.nreps = d->nreps;
	fails = dov_account_finish(d, &pd, NULL);
	dov_sieve_free(pd.bodies, s ? s->nsieve : 0);
	d->reps = pd.reps;   /* freed below */
	d->nreps = pd.nreps;
out:
	if (sync_fd >= 0)
		close(sync_fd);
	snapshot_free(s);
	if (stage.len > 0)
		dov_stage_unlock((const char *)stage.data, stage_fd);
	dov_reps_clear(d);
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
	if (dov_run(&cc->d, ca, NULL, 0, &res, "asking Dovecot's mail_location") != 0) {
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
		{ "overlay", required_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *overlay_path = NULL;
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
		case 'O': overlay_path = optarg; break;
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
				  .ctx = &d, .maildir_pattern = d.pattern, .stage_suffix = STAGE_SUFFIX,
				  .home_pattern = d.have_doveadm || d.sieve == 0 ? NULL : d.sieve_home,
				  .overlay_path = overlay_path, .overlay_out = &d.overlay };
	if (snap != NULL) {
		/* one account, one snapshot: no workers needed */
		struct repo *r;
		rc = cli_open_repo(repo, REPO_OPEN_READ, keyfile, &r);
		struct overlay *ov = NULL;
		if (rc == 0 && overlay_path != NULL && (rc = cli_open_overlay(overlay_path, r, false, &ov)) != 0)
			repo_close(r);
		d.overlay = ov;
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
		d.overlay = NULL;
		overlay_free(ov);
	} else {
		rc = restore_many_run(&m);
	}
	(void)dov_ready(&d);   /* joined, if the repository never opened */
	doveadm_free(&d.dv);
	return rc;
}
