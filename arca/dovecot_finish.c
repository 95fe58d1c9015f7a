/* dovecot_finish.c - the doveadm side of `arca restore dovecot`: what
 * Dovecot serves after the restore (mailbox status, one process for many
 * accounts where it can), MODSEQ and next UID raised, every folder checked,
 * Sieve scripts put (dovecot_restore.h, docs/restore.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli.h"
#include "dovecot_restore.h"
#include "doveadm_parse.h"
#include "sieve_names.h"
#include "banned.h"

void dov_reps_clear(struct dov *d)
{
	for (size_t i = 0; i < d->nreps; i++)
		free(d->reps[i].folder);
	free(d->reps);
	d->reps = NULL;
	d->nreps = d->cap = 0;
}

/* Runs doveadm; on failure prints one line naming the account and what
 * failed.  Returns 0 or 1. */
int dov_run(struct dov *d, const char *const *args, const void *in, size_t inlen,
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

void dov_statuses_release(struct statuses *s)
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
	if (dov_run(d, args, NULL, 0, &s->res, what) != 0)
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
				dov_statuses_release(&s1);
		}
		if (!done && (sep1[0] == 0 ||
			      run_status(d, b1, &s1, "force-resync and mailbox status in one doveadm batch") != 0)) {
			dov_statuses_release(&s1);
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
			if (dov_run(d, rs, NULL, 0, &res, f->folder) != 0) {
				doveadm_result_release(&res);
				fails++;
				continue;
			}
			doveadm_result_release(&res);
		}
		if (resync_each || st.uidnext < f->nextuid || st.highestmodseq < f->highestmodseq) {
			if (dov_run(d, up, NULL, 0, &res, f->folder) != 0) {
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
	dov_statuses_release(&s1);
	dov_statuses_release(&s2);
	return fails ? 1 : 0;
}

void dov_sieve_free(struct sieve_body *b, size_t n)
{
	for (size_t i = 0; b != NULL && i < n; i++)
		abuf_release(&b[i].body);
	free(b);
}

/* Reads every script of s; one that can't be read is printed and counted
 * (and left out by sieve_doveadm).  NULL only when out of memory. */
struct sieve_body *dov_sieve_read(struct dov *d, struct repo *r, const struct snapshot *s, int *fails)
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
	if (dov_run(d, la, NULL, 0, &lr, "listing the Sieve scripts") != 0) {
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
		/* the name it goes in under (sieve_names.h): its own, or the
		 * first NAME-restored[-k] that is free or holds these bytes;
		 * never another script of the snapshot's name */
		bool placed = false, eq = false, failed = false;
		for (unsigned k = 0; k < SIEVE_NAME_TRIES && !placed && !failed; k++) {
			char cand[600];
			if (!sieve_restored_name(v->name, k, cand, sizeof(cand)))
				break;
			if (k > 0 && snapshot_has_sieve_named(s, cand))
				continue;   /* another script of the snapshot's */
			abuf_reset(&name);
			abuf_printf(&name, "%s", cand);
			(void)abuf_cstr(&name);
			bool exists = false;
			for (size_t q = 0; q < nl && !exists; q++)
				exists = strcmp(lines[q], cand) == 0;
			if (!exists) {
				placed = true;
				break;
			}
			const char *ga[] = { "sieve", "get", "-u", user, cand, NULL };
			struct doveadm_result gr;
			if (dov_run(d, ga, NULL, 0, &gr, "reading a Sieve script") != 0) {
				failed = true;
			} else {
				/* the answer is "sieve script:\n" and the bytes */
				size_t off = 0;
				if (dva_sieve_get(gr.out.data, gr.out.len, &off) != 0) {
					fprintf(stderr, "%s: %s: doveadm sieve get printed what Dovecot 2.3 does not (no \"sieve script:\"): Sieve script %s not restored\n",
						cli_prog, d->account, cand);
					failed = true;
				} else {
					eq = gr.out.len - off == body.len &&
					     (body.len == 0 || memcmp(gr.out.data + off, body.data, body.len) == 0);
					placed = eq;
				}
			}
			doveadm_result_release(&gr);
		}
		if (failed) {
			fails++;
			continue;
		}
		if (!placed) {
			fprintf(stderr, "%s: %s: Sieve script %s: the account has other scripts of that name and of its -restored names up to -%d: not restored\n",
				cli_prog, d->account, v->name, SIEVE_NAME_TRIES - 1);
			fails++;
			continue;
		}
		const char *nm = (const char *)name.data;
		if (strcmp(nm, v->name) != 0)
			printf("%s: Sieve: the account has another script named %s: the snapshot's %s %s\n",
			       d->account, v->name, eq ? "is there already as" : "goes in as", nm);
		if (eq) {
			same++;
			if (v->active && active_now == NULL) {
				const char *aa[] = { "sieve", "activate", "-u", user, nm, NULL };
				struct doveadm_result ar;
				fails += dov_run(d, aa, NULL, 0, &ar, "activating a Sieve script");
				doveadm_result_release(&ar);
				printf("%s: Sieve: %s activated\n", d->account, nm);
			}
			continue;
		}
		/* put -a activates it in the same process */
		bool activate = v->active && (active_now == NULL || strcmp(active_now, (const char *)name.data) == 0);
		const char *pa[] = { "sieve", "put", "-u", user, activate ? "-a" : (const char *)name.data,
				     activate ? (const char *)name.data : NULL, NULL };
		struct doveadm_result pr;
		if (dov_run(d, pa, body.data, body.len, &pr, "putting a Sieve script") != 0) {
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

/* The steps after the messages are in place, for one account (d->account
 * and d->reps are set to it here).  given: its mailbox status from a
 * commit's doveadm for many accounts, or NULL.  Returns 0 or 1 (failed,
 * said). */
int dov_account_finish(struct dov *d, struct pending *p, struct statuses *given)
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
			printf("%s: Sieve: %llu scripts written as files under %s (no --doveadm), %llu already there, %llu as NAME-restored (another script had the name)\n",
			       p->account, (unsigned long long)p->res.sieve_scripts, p->home,
			       (unsigned long long)p->res.sieve_same, (unsigned long long)p->res.sieve_renamed);
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

/*
 * One `doveadm -f flow mailbox status -F - FIELDS '*'` for the users of
 * items[0..n) (on stdin, one per line); Dovecot 2.3 prints each mailbox
 * as "USER BOX k=v ...".  given[i] gets item i's lines (names point into
 * res, which the caller releases after).  Returns 0 when the answer could
 * be read whole; otherwise every account asks again alone (which says
 * what failed, per account).
 */
int dov_group_status(struct dov *cd, struct pending **items, size_t n, struct doveadm_result *res,
			struct statuses *given)
{
	struct abuf in = ABUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = dva_user_ok(items[i]->user) ? abuf_printf(&in, "%s\n", items[i]->user) : -1;
		/* two accounts of one doveadm user (--doveadm-user): whose
		 * lines would be whose can't be told, so each asks alone */
		for (size_t j = 0; j < i && rc == 0; j++)
			if (strcmp(items[i]->user, items[j]->user) == 0)
				rc = -1;
	}
	if (rc != 0) {
		abuf_release(&in);
		return -1;
	}
	struct doveadm gdv = cd->dv;
	long long t = (long long)cd->dv.timeout_s * (long long)n;
	gdv.timeout_s = t < DOVEADM_TIMEOUT_MAX ? (int)t : DOVEADM_TIMEOUT_MAX;
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
	const char **users = rc == 0 ? calloc(n, sizeof(*users)) : NULL;
	if (owner == NULL || users == NULL)
		rc = -1;
	for (size_t i = 0; i < n && rc == 0; i++)
		users[i] = items[i]->user;
	for (size_t l = 0; l < nl && rc == 0; l++) {
		if (dva_line_user(&lines[l], users, n, &owner[l]) != 0) {
			rc = -1;
			break;
		}
		given[owner[l]].n++;
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
			dov_statuses_release(&given[i]);
	free(users);
	free(owner);
	free(lines);
	return rc;
}
