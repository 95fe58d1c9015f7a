/*
 * arca export --repo REPO --restore-key KEYFILE --account A
 *     [--folder NAME [--uid N]] [--snapshot ID | --at TIME]
 *     (--mbox FILE|DIR | --eml DIR) [--with-status] [--force]
 *
 * One account, folder or message out of the vault as mboxrd or as a tree
 * of .eml files (docs/export.md).  No server needed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "commands.h"
#include "export.h"
#include "fsutil.h"
#include "repo.h"
#include "snapshot.h"
#include "banned.h"

static const char USAGE[] =
	"arca export --repo REPO --restore-key KEYFILE --account ACCOUNT\n"
	"            [--folder NAME [--uid N]] [--snapshot ID | --at TIME]\n"
	"            (--mbox FILE|DIR | --eml DIR) [--with-status] [--force]\n\n"
	"Writes the account (every folder), one folder, or one message of a\n"
	"snapshot (default: the latest, passing over suspect ones) as files:\n"
	"  --mbox FILE   with --folder: one mboxrd file (one message with --uid)\n"
	"  --mbox DIR    without --folder: DIR/<folder path>.mbox per folder\n"
	"  --eml DIR     DIR/<folder path>/<uid>.eml, the exact bytes, mtime set to\n"
	"                the INTERNALDATE, and DIR/<folder path>/index.tsv with each\n"
	"                message's uid, flags, keywords, date and size\n"
	"  --with-status add Status:/X-Status:/X-Keywords: headers to mbox messages\n"
	"                (as Dovecot's mbox does; off: the bytes are unchanged)\n"
	"  --force       write over existing files (else they are refused)\n"
	"Folder names become paths with unsafe characters escaped (docs/export.md).";

struct ex {
	struct repo *r;
	int spool;
	bool force, with_status;
	uint64_t folders, messages, bytes;
};

static void meta_of(const struct snap_folder *f, const struct snap_msg *m, const char **kw,
		    struct export_meta *em)
{
	size_t n = 0;
	for (size_t k = 0; k < f->nkeywords && k < SNAP_KEYWORDS_MAX; k++)
		if (m->keywords & (1ULL << k))
			kw[n++] = f->keywords[k];
	*em = (struct export_meta){ .uid = m->uid, .flags = m->flags, .keywords = kw, .nkeywords = n,
				    .date_sec = m->date_sec, .date_nsec = m->date_nsec, .size = m->size };
}

/* The message's bytes into the spool (from offset 0). */
static int fetch(struct ex *x, const struct snap_folder *f, const struct snap_msg *m,
		 uint64_t *len_r, struct arca_err *err)
{
	char what[600];
	snprintf(what, sizeof(what), "%s uid %u", f->name, m->uid);
	if (ftruncate(x->spool, 0) != 0 || lseek(x->spool, 0, SEEK_SET) != 0)
		return arca_err_errno(err, ARCA_EIO, errno, "the export spool (memfd)");
	return repo_get_stream(x->r, m->content_type, m->content_id, x->spool, what, len_r, err);
}

static int mkparent(const char *path, struct arca_err *err)
{
	char *d = fs_dirname(path);
	if (d == NULL)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	int rc = fs_mkdirs(d, 0700, err);
	free(d);
	return rc;
}

/* One folder (or one message of it) into one mbox file. */
static int folder_mbox(struct ex *x, struct snap_folder *f, const char *path, bool has_uid,
		       uint32_t uid, struct arca_err *err)
{
	int rc = mkparent(path, err);
	struct export_file *ef = NULL;
	if (rc == 0)
		rc = export_file_open(path, x->force, &ef, err);
	bool found = !has_uid;
	for (size_t i = 0; i < f->nmsgs && rc == 0; i++) {
		const struct snap_msg *m = &f->msgs[i];
		if (has_uid && m->uid != uid)
			continue;
		found = true;
		uint64_t len;
		rc = fetch(x, f, m, &len, err);
		const char *kw[SNAP_KEYWORDS_MAX];
		struct export_meta em;
		meta_of(f, m, kw, &em);
		if (rc == 0)
			rc = export_mbox_message(ef, &em, x->with_status, x->spool, 0, len, err);
		if (rc == 0) {
			x->messages++;
			x->bytes += len;
		}
	}
	if (rc == 0 && !found)
		rc = arca_err_set(err, ARCA_ENOENT, "%s has no message with UID %u in this snapshot",
				  f->name, uid);
	if (rc) {
		export_file_abort(ef);
		return rc;
	}
	rc = export_file_commit(ef, INT64_MIN, 0, err);
	char *d = rc == 0 ? fs_dirname(path) : NULL;
	if (d) {
		rc = export_sync_dir(d, err);
		free(d);
	}
	if (rc == 0)
		x->folders++;
	return rc;
}

/* One folder (or one message) as DIR/<path>/<uid>.eml and index.tsv. */
static int folder_eml(struct ex *x, struct snap_folder *f, const char *dir, bool has_uid,
		      uint32_t uid, struct arca_err *err)
{
	int rc = fs_mkdirs(dir, 0700, err);
	struct abuf index = ABUF_INIT, name = ABUF_INIT;
	if (rc == 0 && export_index_header(&index))
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	bool found = !has_uid;
	for (size_t i = 0; i < f->nmsgs && rc == 0; i++) {
		const struct snap_msg *m = &f->msgs[i];
		if (has_uid && m->uid != uid)
			continue;
		found = true;
		abuf_reset(&name);
		/* records without a UID (ingested from new/ before Dovecot
		 * numbered them) are named by their place in the folder */
		if ((m->uid ? abuf_printf(&name, "%s/%u.eml", dir, m->uid)
			    : abuf_printf(&name, "%s/new-%zu.eml", dir, i)) || abuf_cstr(&name)) {
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
			break;
		}
		uint64_t len;
		rc = fetch(x, f, m, &len, err);
		struct export_file *ef = NULL;
		if (rc == 0)
			rc = export_file_open((const char *)name.data, x->force, &ef, err);
		if (rc == 0)
			rc = export_file_copy(ef, x->spool, 0, len, err);
		if (rc == 0) {
			rc = export_file_commit(ef, m->date_sec, m->date_nsec, err);
			ef = NULL;
		}
		export_file_abort(ef);
		const char *kw[SNAP_KEYWORDS_MAX];
		struct export_meta em;
		meta_of(f, m, kw, &em);
		em.size = len;
		if (rc == 0 && export_index_line(&em, &index))
			rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		if (rc == 0) {
			x->messages++;
			x->bytes += len;
		}
	}
	if (rc == 0 && !found)
		rc = arca_err_set(err, ARCA_ENOENT, "%s has no message with UID %u in this snapshot",
				  f->name, uid);
	abuf_reset(&name);
	if (rc == 0 && (abuf_printf(&name, "%s/index.tsv", dir) || abuf_cstr(&name)))
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
	struct export_file *ef = NULL;
	if (rc == 0)
		rc = export_file_open((const char *)name.data, x->force, &ef, err);
	if (rc == 0)
		rc = export_file_write(ef, index.data, index.len, err);
	if (rc == 0) {
		rc = export_file_commit(ef, INT64_MIN, 0, err);
		ef = NULL;
	}
	export_file_abort(ef);
	if (rc == 0)
		rc = export_sync_dir(dir, err);
	if (rc == 0)
		x->folders++;
	abuf_release(&index);
	abuf_release(&name);
	return rc;
}

int cmd_export(int argc, char **argv)
{
	const char *repo = NULL, *keyfile = NULL, *account = NULL, *folder = NULL, *snap = NULL,
		   *at = NULL, *mbox = NULL, *eml = NULL;
	unsigned long uid = 0;
	bool has_uid = false, bad = false;
	struct ex x = { .spool = -1 };
	enum { O_REPO = 256, O_KEY, O_ACCOUNT, O_FOLDER, O_UID, O_SNAP, O_AT, O_MBOX, O_EML,
	       O_STATUS, O_FORCE, O_HELP };
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, O_REPO },
		{ "restore-key", required_argument, NULL, O_KEY },
		{ "account", required_argument, NULL, O_ACCOUNT },
		{ "folder", required_argument, NULL, O_FOLDER },
		{ "uid", required_argument, NULL, O_UID },
		{ "snapshot", required_argument, NULL, O_SNAP },
		{ "at", required_argument, NULL, O_AT },
		{ "mbox", required_argument, NULL, O_MBOX },
		{ "eml", required_argument, NULL, O_EML },
		{ "with-status", no_argument, NULL, O_STATUS },
		{ "force", no_argument, NULL, O_FORCE },
		{ "help", no_argument, NULL, O_HELP },
		{ 0 },
	};
	int c;
	char *end;
	while (!bad && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_REPO: repo = optarg; break;
		case O_KEY: keyfile = optarg; break;
		case O_ACCOUNT: account = optarg; break;
		case O_FOLDER: folder = optarg; break;
		case O_UID:
			uid = strtoul(optarg, &end, 10);
			bad = *end || uid == 0 || uid > UINT32_MAX;
			has_uid = true;
			break;
		case O_SNAP: snap = optarg; break;
		case O_AT: at = optarg; break;
		case O_MBOX: mbox = optarg; break;
		case O_EML: eml = optarg; break;
		case O_STATUS: x.with_status = true; break;
		case O_FORCE: x.force = true; break;
		case O_HELP: puts(USAGE); return 0;
		default: bad = true;
		}
	}
	if (bad || optind != argc || repo == NULL || keyfile == NULL || account == NULL ||
	    (mbox == NULL) == (eml == NULL) || (has_uid && folder == NULL) || (snap && at) ||
	    (x.with_status && mbox == NULL))
		return cli_usage(USAGE);
	x.spool = memfd_create("arca-export", MFD_CLOEXEC);
	if (x.spool < 0)
		return cli_failf("memfd_create: %s", strerror(errno));
	if (cli_open_repo(repo, REPO_OPEN_READ, keyfile, &x.r) != 0) {
		close(x.spool);
		return 1;
	}
	struct snap_info si;
	memset(&si, 0, sizeof(si));
	struct snapshot *s = NULL;
	struct arca_err err = { 0 };
	int rc = cli_pick_snapshot(x.r, account, snap, at, &si);
	if (rc) {
		repo_close(x.r);
		close(x.spool);
		return rc;
	}
	rc = snapshot_load(x.r, si.root, &s, &err);
	struct abuf rel = ABUF_INIT, path = ABUF_INIT;
	bool any = false;
	for (size_t i = 0; rc == 0 && s && i < s->nfolders; i++) {
		struct snap_folder *f = &s->folders[i];
		if (folder ? strcmp(folder, f->name) != 0 : !(f->attrs & SNAP_FOLDER_SELECTABLE))
			continue;
		any = true;
		rc = snapshot_load_msgs(x.r, f, &err);
		if (rc == 0 && export_folder_path(f->name, &rel) != 0)
			rc = arca_err_set(&err, ARCA_EINVAL, "folder %s: no path for it", f->name);
		abuf_reset(&path);
		if (rc == 0 && mbox && folder)
			rc = abuf_add(&path, mbox, strlen(mbox));
		else if (rc == 0 && mbox)
			rc = abuf_printf(&path, "%s/%s.mbox", mbox, (const char *)rel.data);
		else if (rc == 0)
			rc = abuf_printf(&path, "%s/%s", eml, (const char *)rel.data);
		if (rc == 0 && abuf_cstr(&path))
			rc = ARCA_ENOMEM;
		if (rc == ARCA_ENOMEM)
			arca_err_set(&err, rc, "out of memory");
		if (rc == 0 && mbox)
			rc = folder_mbox(&x, f, (const char *)path.data, has_uid, (uint32_t)uid, &err);
		else if (rc == 0)
			rc = folder_eml(&x, f, (const char *)path.data, has_uid, (uint32_t)uid, &err);
	}
	if (rc == 0 && folder && !any)
		rc = arca_err_set(&err, ARCA_ENOENT, "the snapshot of %s has no folder %s (arca ls lists them)",
				  account, folder);
	if (rc == 0) {
		char hex[2 * ARCA_ID_LEN + 1], t[40];
		hex_encode(hex, si.root, ARCA_ID_LEN);
		cli_format_time(si.time_ns, t);
		printf("exported %s from snapshot %.16s (%s): %llu folders, %llu messages (%.1f MiB) to %s\n",
		       account, hex, t, (unsigned long long)x.folders, (unsigned long long)x.messages,
		       (double)x.bytes / 1048576.0, mbox ? mbox : eml);
	} else {
		cli_fail(&err);
	}
	abuf_release(&rel);
	abuf_release(&path);
	snapshot_free(s);
	snap_info_release(&si);
	repo_close(x.r);
	close(x.spool);
	return rc ? 1 : 0;
}
