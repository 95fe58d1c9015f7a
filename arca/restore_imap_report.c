/*
 * restore_imap_report.c - `arca restore imap`: what one account's restore
 * says (docs/restore-imap.md, "Output and exit status").
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fsutil.h"
#include "restore_imap.h"
#include "restore_many.h"
#include "sieve_names.h"
#include "banned.h"

static void report_to(struct run *u, const struct snap_info *si, int rc, const struct arca_err *err,
		      FILE *out, FILE *errf)
{
	const struct opts *o = u->o;
	char hex[2 * ARCA_ID_LEN + 1] = "", t[40] = "";
	bool journal_only = si && restore_journal_only(si);
	if (si && !journal_only) {
		hex_encode(hex, si->root, ARCA_ID_LEN);
		cli_format_time(si->time_ns, t);
	}
	for (size_t i = 0; i < u->warnings.n; i++)
		fprintf(errf, "%s: warning: %s\n", cli_prog, u->warnings.v[i]);
	for (size_t i = 0; i < u->failed.n; i++)
		fprintf(errf, "%s: FAILED %s\n", cli_prog, u->failed.v[i]);
	if (rc)
		fprintf(errf, "%s: %s: %s%s\n", cli_prog, u->account,
			err->msg[0] ? err->msg : arca_strerror(rc),
			u->appended ? " (what was appended stays; run the restore again to finish: nothing is appended twice)" : "");
	if (o->json) {
		fprintf(out, "{\"account\":");
		cli_json_str(out, u->account);
		fprintf(out, ",\"target\":");
		cli_json_str(out, u->target ? u->target : u->account);
		fprintf(out, ",\"ok\":%s,\"snapshot\":\"%s\",\"appended\":%llu,\"already\":%llu,"
		       "\"created\":%llu,\"subscribed\":%llu,\"failed\":%zu,\"folders\":[",
		       rc ? "false" : "true", hex, (unsigned long long)u->appended,
		       (unsigned long long)(u->already + u->j_already), (unsigned long long)u->created,
		       (unsigned long long)u->subscribed, u->failed.n);
		for (size_t i = 0; i < u->nreports; i++) {
			const struct folder_report *fr = &u->reports[i];
			fprintf(out, "%s{\"name\":", i ? "," : "");
			cli_json_str(out, fr->name);
			fprintf(out, ",\"created\":%s,\"appended\":%llu,\"already\":%llu,\"failed\":%llu%s}",
			       fr->created ? "true" : "false", (unsigned long long)fr->appended,
			       (unsigned long long)fr->already, (unsigned long long)fr->failed,
			       fr->journal ? ",\"journal\":true" : "");
		}
		fprintf(out, "],\"failed_messages\":[");
		for (size_t i = 0; i < u->failed.n; i++) {
			fprintf(out, "%s", i ? "," : "");
			cli_json_str(out, u->failed.v[i]);
		}
		fprintf(out, "]");
		fprintf(out, ",\"journal_appended\":%llu,\"journal_already\":%llu",
		       (unsigned long long)u->j_appended, (unsigned long long)u->j_already);
		if (u->overlay)
			fprintf(out, ",\"overlay_messages\":%llu", (unsigned long long)u->overlay_msgs);
		if (u->sieve_done)
			fprintf(out, ",\"sieve_put\":%zu,\"sieve_same\":%zu,\"sieve_renamed\":%zu,\"sieve_activated\":%s,"
			       "\"sieve_active_kept\":%s",
			       u->sieve.put, u->sieve.same, u->sieve.renamed, u->sieve.activated ? "true" : "false",
			       u->sieve.active_kept ? "true" : "false");
		if (rc) {
			fprintf(out, ",\"error\":");
			cli_json_str(out, err->msg);
		}
		fprintf(out, "}\n");
	} else {
		for (size_t i = 0; i < u->nreports; i++) {
			const struct folder_report *fr = &u->reports[i];
			fprintf(out, "%s: %s%s:%s appended %llu, already there %llu%s", u->target, fr->name,
			       fr->journal ? " (journaled mail)" : "", fr->created ? " created," : "", (unsigned long long)fr->appended,
			       (unsigned long long)fr->already, fr->failed ? ", FAILED " : "");
			if (fr->failed)
				fprintf(out, "%llu", (unsigned long long)fr->failed);
			fprintf(out, "\n");
		}
		if (rc == 0) {
			fprintf(out, "restored %s", u->account);
			if (strcmp(u->target, u->account) != 0)
				fprintf(out, " into %s", u->target);
			size_t nfolders = 0;
			for (size_t i = 0; i < u->nreports; i++)
				nfolders += !u->reports[i].journal;
			if (journal_only)
				fprintf(out, " from the journal only (no snapshot) on %s: %llu folders created,", o->host,
				       (unsigned long long)u->created);
			else
				fprintf(out, " from snapshot %.16s (%s) on %s: %zu folders (%llu created),", hex, t,
				       o->host, nfolders, (unsigned long long)u->created);
			fprintf(out, " appended %llu, already there %llu, failed %zu", (unsigned long long)u->appended,
			       (unsigned long long)u->already + u->j_already, u->failed.n);
			if (u->j_appended || u->j_already)
				fprintf(out, "; journaled mail: appended %llu, already there %llu",
				       (unsigned long long)u->j_appended, (unsigned long long)u->j_already);
			if (u->overlay_msgs)
				fprintf(out, "; %llu messages with the flags users set through serve-imap",
				       (unsigned long long)u->overlay_msgs);
			if (u->sieve_done)
				fprintf(out, "; Sieve: put %zu, unchanged %zu%s", u->sieve.put, u->sieve.same,
				       u->sieve.activated ? ", active script set" :
				       u->sieve.active_already ? ", active script already set" : "");
			if (u->sieve_done && u->sieve.renamed)
				fprintf(out, " (%zu as NAME%s: the server has other scripts of their names, left as they are)",
				       u->sieve.renamed, SIEVE_RESTORED_SUFFIX);
			if (u->sieve_done && u->sieve.active_kept)
				fprintf(out, " (the server's active script %s stays active; the snapshot's is put, not activated)",
				       u->sieve.server_active);
			fprintf(out, "\n");
		}
	}
	fflush(out);
}

/* The account's report.  Workers (--jobs) write it whole under a lock
 * shared by all of them, so accounts' lines never interleave. */
void rimap_report(struct run *u, const struct snap_info *si, int rc, const struct arca_err *err)
{
	if (u->out_lock == NULL) {
		report_to(u, si, rc, err, stdout, stderr);
		return;
	}
	char *ob = NULL, *eb = NULL;
	size_t on = 0, en = 0;
	FILE *o = open_memstream(&ob, &on), *e = open_memstream(&eb, &en);
	if (o == NULL || e == NULL) {
		if (o)
			fclose(o);
		if (e)
			fclose(e);
		free(ob);
		free(eb);
		report_to(u, si, rc, err, stdout, stderr);
		return;
	}
	report_to(u, si, rc, err, o, e);
	fclose(o);
	fclose(e);
	int l = pthread_mutex_lock(u->out_lock);
	if (l == EOWNERDEAD)
		l = pthread_mutex_consistent(u->out_lock);
	struct arca_err ignored = { 0 };
	(void)fs_write_all(STDERR_FILENO, eb, en, "stderr", &ignored);
	(void)fs_write_all(STDOUT_FILENO, ob, on, "stdout", &ignored);
	if (l == 0)
		pthread_mutex_unlock(u->out_lock);
	free(ob);
	free(eb);
}

/* 0 restored, 3 some messages failed, 1 error. */
