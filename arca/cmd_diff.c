/*
 * arca diff --repo REPO --account A --restore-key KEYFILE FROM TO [--json]
 * What changed in an account between two snapshots: folders, UIDVALIDITY,
 * messages added and removed, flag and keyword changes.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "commands.h"
#include "pack.h"
#include "snapshot.h"
#include "banned.h"

static const char USAGE[] =
	"arca diff --repo REPO --account ACCOUNT --restore-key KEYFILE [--json] FROM TO\n\n"
	"FROM and TO are snapshot ids (or unique prefixes), or times (--at style,\n"
	"RFC 3339: the last snapshot at or before it).  Lists folders created,\n"
	"deleted or given a new UIDVALIDITY, and per folder the messages added,\n"
	"removed and whose flags or keywords changed.";

struct side {
	struct snap_info info;
	struct snapshot *snap;
};

static int load_side(struct repo *r, const char *account, const char *spec, struct side *s)
{
	/* a time has a '-' in the date; ids are hex */
	bool is_time = strchr(spec, '-') != NULL;
	int rc = cli_pick_snapshot(r, account, is_time ? NULL : spec, is_time ? spec : NULL, &s->info);
	if (rc)
		return rc;
	struct arca_err err = { 0 };
	if (snapshot_load(r, s->info.root, &s->snap, &err) != 0)
		return cli_fail(&err);
	return 0;
}

static struct snap_folder *find_folder(struct snapshot *s, const char *name)
{
	for (size_t i = 0; i < s->nfolders; i++)
		if (strcmp(s->folders[i].name, name) == 0)
			return &s->folders[i];
	return NULL;
}

/* Messages are matched by UID within one UIDVALIDITY, else by file name. */
static int cmp_key(const struct snap_msg *a, const struct snap_msg *b)
{
	if (a->uid != b->uid)
		return a->uid < b->uid ? -1 : 1;
	return strcmp(a->base, b->base);
}

static int cmp_msgs(const void *x, const void *y)
{
	return cmp_key(x, y);
}

static void keyword_names(FILE *f, const struct snap_folder *fo, uint64_t kw)
{
	for (size_t k = 0; k < fo->nkeywords; k++)
		if (kw & (1ULL << k))
			fprintf(f, " %s", fo->keywords[k]);
}

/* Every keyword set in (fa, ka) is also set, by name, in (fb, kb). */
static bool same_keywords(const struct snap_folder *fa, uint64_t ka,
			  const struct snap_folder *fb, uint64_t kb)
{
	for (size_t i = 0; i < fa->nkeywords; i++) {
		if (!(ka & (1ULL << i)))
			continue;
		bool found = false;
		for (size_t l = 0; l < fb->nkeywords && !found; l++)
			found = (kb & (1ULL << l)) && strcmp(fa->keywords[i], fb->keywords[l]) == 0;
		if (!found)
			return false;
	}
	return true;
}

struct counts {
	uint64_t added, removed, changed, folders_added, folders_removed, uidvalidity;
};

static void emit(bool json, bool *first, const char *what, const char *folder,
		 const struct snap_msg *m)
{
	if (json) {
		printf("%s\n  {\"change\":\"%s\",\"folder\":", *first ? "" : ",", what);
		cli_json_str(stdout, folder);
		if (m != NULL) {
			printf(",\"uid\":%u,\"name\":", m->uid);
			cli_json_str(stdout, m->base);
			printf(",\"size\":%llu", (unsigned long long)m->size);
		}
		putchar('}');
	} else {
		printf("%-14s %s", what, folder);
		if (m != NULL)
			printf("  uid %u  %s  %llu bytes", m->uid, m->base, (unsigned long long)m->size);
		putchar('\n');
	}
	*first = false;
}

static int diff_folder(struct repo *r, struct snap_folder *a, struct snap_folder *b,
		       bool json, bool *first, struct counts *c)
{
	struct arca_err err = { 0 };
	if (snapshot_load_msgs(r, a, &err) != 0 || snapshot_load_msgs(r, b, &err) != 0)
		return cli_fail(&err);
	if (a->uidvalidity != b->uidvalidity) {
		emit(json, first, "uidvalidity", b->name, NULL);
		c->uidvalidity++;
	}
	if (a->nmsgs > 1)
		qsort(a->msgs, a->nmsgs, sizeof(*a->msgs), cmp_msgs);
	if (b->nmsgs > 1)
		qsort(b->msgs, b->nmsgs, sizeof(*b->msgs), cmp_msgs);
	size_t i = 0, j = 0;
	while (i < a->nmsgs || j < b->nmsgs) {
		int k = i == a->nmsgs ? 1 : j == b->nmsgs ? -1 : cmp_key(&a->msgs[i], &b->msgs[j]);
		if (k < 0) {
			emit(json, first, "removed", a->name, &a->msgs[i++]);
			c->removed++;
		} else if (k > 0) {
			emit(json, first, "added", b->name, &b->msgs[j++]);
			c->added++;
		} else {
			const struct snap_msg *x = &a->msgs[i++], *y = &b->msgs[j++];
			/* keyword tables may be numbered differently: compare names */
			bool kw_same = same_keywords(a, x->keywords, b, y->keywords) &&
				       same_keywords(b, y->keywords, a, x->keywords);
			if (x->flags != y->flags || !kw_same ||
			    memcmp(x->content_id, y->content_id, ARCA_ID_LEN) != 0) {
				if (json) {
					emit(json, first, "changed", b->name, y);
				} else {
					printf("%-14s %s  uid %u  flags ", "changed", b->name, y->uid);
					for (int l = 0; l < 26; l++)
						if (x->flags & (1u << l))
							putchar('A' + l);
					keyword_names(stdout, a, x->keywords);
					printf(" -> ");
					for (int l = 0; l < 26; l++)
						if (y->flags & (1u << l))
							putchar('A' + l);
					keyword_names(stdout, b, y->keywords);
					putchar('\n');
				}
				c->changed++;
			}
		}
	}
	return 0;
}

int cmd_diff(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "account", required_argument, NULL, 'a' },
		{ "restore-key", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *repo = NULL, *account = NULL, *keyfile = NULL;
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': repo = optarg; break;
		case 'a': account = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'j': json = true; break;
		case 'h': puts(USAGE); return 0;
		default: return cli_usage(USAGE);
		}
	}
	if (repo == NULL || account == NULL || keyfile == NULL || optind + 2 != argc)
		return cli_usage(USAGE);
	struct repo *r;
	int rc = cli_open_repo(repo, REPO_OPEN_READ, keyfile, &r);
	if (rc)
		return rc;
	struct side from = { 0 }, to = { 0 };
	rc = load_side(r, account, argv[optind], &from);
	rc = rc ? rc : load_side(r, account, argv[optind + 1], &to);
	struct counts cnt = { 0 };
	bool first = true;
	if (rc == 0 && json)
		printf("{\"changes\":[");
	for (size_t i = 0; rc == 0 && i < from.snap->nfolders; i++) {
		struct snap_folder *a = &from.snap->folders[i];
		struct snap_folder *b = find_folder(to.snap, a->name);
		if (b == NULL) {
			emit(json, &first, "folder-removed", a->name, NULL);
			cnt.folders_removed++;
			cnt.removed += a->message_count;
		} else {
			rc = diff_folder(r, a, b, json, &first, &cnt);
		}
	}
	for (size_t i = 0; rc == 0 && i < to.snap->nfolders; i++) {
		struct snap_folder *b = &to.snap->folders[i];
		if (find_folder(from.snap, b->name) == NULL) {
			emit(json, &first, "folder-added", b->name, NULL);
			cnt.folders_added++;
			cnt.added += b->message_count;
		}
	}
	if (rc == 0) {
		if (json)
			printf("%s],\"added\":%llu,\"removed\":%llu,\"changed\":%llu,\"folders_added\":%llu,"
			       "\"folders_removed\":%llu,\"uidvalidity_changed\":%llu}\n", first ? "" : "\n",
			       (unsigned long long)cnt.added, (unsigned long long)cnt.removed,
			       (unsigned long long)cnt.changed, (unsigned long long)cnt.folders_added,
			       (unsigned long long)cnt.folders_removed, (unsigned long long)cnt.uidvalidity);
		else
			printf("%llu added, %llu removed, %llu changed; %llu folders added, %llu removed, %llu with a new UIDVALIDITY\n",
			       (unsigned long long)cnt.added, (unsigned long long)cnt.removed,
			       (unsigned long long)cnt.changed, (unsigned long long)cnt.folders_added,
			       (unsigned long long)cnt.folders_removed, (unsigned long long)cnt.uidvalidity);
	}
	snapshot_free(from.snap);
	snapshot_free(to.snap);
	if (from.info.account)
		snap_info_release(&from.info);
	if (to.info.account)
		snap_info_release(&to.info);
	repo_close(r);
	return rc;
}
