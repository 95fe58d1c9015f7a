/*
 * alarm.c - standing alarms in the log (alarm.h, docs/alarms.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "alarm.h"
#include "idx.h"
#include "mlog.h"
#include "banned.h"

extern char **environ;

#define ALARM_PAYLOAD_VERSION 1
static const char KEY_PREFIX[] = "\xff" "arca-alarm";
#define KEY_PREFIX_LEN (sizeof(KEY_PREFIX) - 1)

const char *alarm_kind_name(uint8_t kind)
{
	switch (kind) {
	case ALARM_MASS_DELETION: return "mass-deletion";
	case ALARM_FOLDERS_LOST: return "folders-lost";
	case ALARM_UIDVALIDITY: return "uidvalidity-changed";
	case ALARM_SERVER_EMPTIED: return "server-emptied";
	case ALARM_JOURNAL_SILENT: return "journal-silent";
	case ALARM_ACCOUNT_GONE: return "account-gone";
	case ALARM_NETWORK_PROCESS: return "network-process";
	default: return "unknown";
	}
}

void alarm_release(struct alarm *a)
{
	free(a->account);
	free(a->text);
	for (size_t i = 0; i < a->nsuspects; i++)
		free(a->suspects[i].account);
	free(a->suspects);
	free(a->cleared_reason);
	memset(a, 0, sizeof(*a));
}

void alarms_free(struct alarm *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		alarm_release(&v[i]);
	free(v);
}

int alarm_encode(const struct alarm *a, struct abuf *out)
{
	abuf_reset(out);
	if (a->kind == 0 || a->kind > ALARM_KIND_MAX || strlen(a->account) > SNAP_ACCOUNT_MAX ||
	    strlen(a->text) > ALARM_TEXT_MAX || a->nsuspects > ALARM_SUSPECTS_MAX)
		return ARCA_ELIMIT;
	int rc = abuf_add_u8(out, ALARM_PAYLOAD_VERSION);
	rc = rc ? rc : abuf_add_u8(out, a->kind);
	rc = rc ? rc : abuf_add_str(out, a->account);
	rc = rc ? rc : abuf_add_str(out, a->text);
	rc = rc ? rc : abuf_add_varint(out, a->nsuspects);
	for (size_t i = 0; i < a->nsuspects && rc == 0; i++) {
		if (strlen(a->suspects[i].account) > SNAP_ACCOUNT_MAX)
			return ARCA_ELIMIT;
		rc = abuf_add_str(out, a->suspects[i].account);
		rc = rc ? rc : abuf_add(out, a->suspects[i].root, ARCA_ID_LEN);
	}
	return rc;
}

/* Both payloads start with their version byte. */
static int payload_start(struct adec *d, const uint8_t *p, size_t len)
{
	adec_init(d, p, len);
	uint8_t version = adec_u8(d);
	if (d->failed)
		return ARCA_EFORMAT;
	return version == ALARM_PAYLOAD_VERSION ? 0 : ARCA_EVERSION;
}

int alarm_decode(const uint8_t *p, size_t len, struct alarm *a)
{
	memset(a, 0, sizeof(*a));
	struct adec d;
	int vrc = payload_start(&d, p, len);
	if (vrc)
		return vrc;
	a->kind = adec_u8(&d);
	a->account = adec_strdup(&d, SNAP_ACCOUNT_MAX);
	a->text = adec_strdup(&d, ALARM_TEXT_MAX);
	uint64_t n = adec_varint(&d);
	int rc = ARCA_EFORMAT;
	if (d.failed || a->kind == 0 || a->kind > ALARM_KIND_MAX || a->account == NULL ||
	    a->text == NULL || n > ALARM_SUSPECTS_MAX || n > adec_left(&d) / (1 + ARCA_ID_LEN))
		goto fail;
	a->suspects = calloc(n ? n : 1, sizeof(*a->suspects));
	if (a->suspects == NULL) {
		rc = ARCA_ENOMEM;
		goto fail;
	}
	for (; a->nsuspects < n; a->nsuspects++) {
		struct alarm_suspect *s = &a->suspects[a->nsuspects];
		s->account = adec_strdup(&d, SNAP_ACCOUNT_MAX);
		adec_fixed(&d, s->root, ARCA_ID_LEN);
		if (d.failed || s->account == NULL) {
			a->nsuspects += s->account != NULL;
			goto fail;
		}
	}
	if (adec_finish(&d) != 0)
		goto fail;
	return 0;
fail:
	alarm_release(a);
	return rc;
}

int alarm_clear_encode(uint64_t alarm_seq, const char *reason, struct abuf *out)
{
	abuf_reset(out);
	if (strlen(reason) > ALARM_TEXT_MAX)
		return ARCA_ELIMIT;
	int rc = abuf_add_u8(out, ALARM_PAYLOAD_VERSION);
	rc = rc ? rc : abuf_add_u64(out, alarm_seq);
	rc = rc ? rc : abuf_add_str(out, reason);
	return rc;
}

int alarm_clear_decode(const uint8_t *p, size_t len, uint64_t *alarm_seq_r, char **reason_r)
{
	struct adec d;
	int vrc = payload_start(&d, p, len);
	if (vrc)
		return vrc;
	*alarm_seq_r = adec_u64(&d);
	char *reason = adec_strdup(&d, ALARM_TEXT_MAX);
	if (reason == NULL || adec_finish(&d) != 0) {
		free(reason);
		return ARCA_EFORMAT;
	}
	if (reason_r)
		*reason_r = reason;
	else
		free(reason);
	return 0;
}

static void put_u64be(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_u64be(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

int alarm_index_entry(struct idx_txn *t, uint8_t kind, uint64_t seq, uint64_t time_ns,
		      const uint8_t *payload, size_t len)
{
	uint8_t key[KEY_PREFIX_LEN + 9];
	memcpy(key, KEY_PREFIX, KEY_PREFIX_LEN);
	struct abuf v = ABUF_INIT;
	int rc;
	if (kind == MLOG_ALARM) {
		struct alarm a;
		rc = alarm_decode(payload, len, &a);
		if (rc)
			return rc == ARCA_ENOMEM ? rc : ARCA_ECORRUPT;
		alarm_release(&a);
		key[KEY_PREFIX_LEN] = 'A';
		put_u64be(key + KEY_PREFIX_LEN + 1, seq);
		rc = abuf_add_u64(&v, time_ns);
	} else {
		uint64_t aseq;
		rc = alarm_clear_decode(payload, len, &aseq, NULL);
		if (rc)
			return ARCA_ECORRUPT;
		key[KEY_PREFIX_LEN] = 'C';
		put_u64be(key + KEY_PREFIX_LEN + 1, aseq);
		rc = abuf_add_u64(&v, seq);
		rc = rc ? rc : abuf_add_u64(&v, time_ns);
	}
	rc = rc ? rc : abuf_add(&v, payload, len);
	rc = rc ? rc : idx_cache_put(t, key, sizeof(key), v.data, v.len);
	abuf_release(&v);
	return rc;
}

/* ---- raising, clearing, listing ---- */

static void run_hook(const struct alarm *a, const char *exec, struct arca_err *warn_r)
{
	char kind[64], account[1100], text[1100], seq[64];
	snprintf(kind, sizeof(kind), "ARCA_ALARM_KIND=%s", alarm_kind_name(a->kind));
	snprintf(account, sizeof(account), "ARCA_ALARM_ACCOUNT=%s", a->account);
	snprintf(text, sizeof(text), "ARCA_ALARM_TEXT=%s", a->text);
	snprintf(seq, sizeof(seq), "ARCA_ALARM_SEQ=%llu", (unsigned long long)a->seq);
	size_t n = 0;
	while (environ && environ[n])
		n++;
	char **envp = calloc(n + 5, sizeof(char *));
	if (envp == NULL)
		return;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "ARCA_ALARM_", 11) != 0 && strncmp(environ[i], "ARCA_PASSPHRASE=", 16) != 0)
			envp[k++] = environ[i];
	envp[k++] = kind;
	envp[k++] = account;
	envp[k++] = text;
	envp[k++] = seq;
	envp[k] = NULL;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0) {
		free(envp);
		return;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
	char *argv[] = { "/bin/sh", "-c", (char *)exec, NULL };
	pid_t pid;
	int sr = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	close(fds[0]);
	if (sr != 0) {
		close(fds[1]);
		arca_err_set(warn_r, ARCA_EIO, "alarm hook could not start: %s", strerror(sr));
		return;
	}
	FILE *f = fdopen(fds[1], "w");
	if (f) {
		void (*old)(int) = signal(SIGPIPE, SIG_IGN);
		fprintf(f, "Arca ALARM %s (log entry %llu)\naccount: %s\n%s\n",
			alarm_kind_name(a->kind), (unsigned long long)a->seq,
			a->account[0] ? a->account : "(the whole server)", a->text);
		if (a->nsuspects)
			fprintf(f, "snapshots marked suspect: %zu\n", a->nsuspects);
		fclose(f);
		signal(SIGPIPE, old);
	} else {
		close(fds[1]);
	}
	/* A hook that hangs must not hang the pull or the journal: wait at
	 * most ALARM_HOOK_WAIT seconds, then leave it running. */
	int status = 0;
	pid_t w = 0;
	for (int i = 0; i < ALARM_HOOK_WAIT * 20; i++) {
		w = waitpid(pid, &status, WNOHANG);
		if (w != 0 && !(w < 0 && errno == EINTR))
			break;
		struct timespec ts = { 0, 50000000 };
		nanosleep(&ts, NULL);
	}
	if (w == 0)
		arca_err_set(warn_r, ARCA_EIO, "alarm hook still running after %d s (%s): not waited for",
			     ALARM_HOOK_WAIT, exec);
	else if (w < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		arca_err_set(warn_r, ARCA_EIO, "alarm hook failed (%s)", exec);
}

int alarm_raise(struct repo *r, struct alarm *a, const char *exec, struct arca_err *hook_err,
		struct arca_err *err)
{
	struct abuf b = ABUF_INIT;
	int rc = alarm_encode(a, &b);
	if (rc) {
		abuf_release(&b);
		return arca_err_set(err, rc, "alarm too large to log");
	}
	rc = repo_log_append(r, MLOG_ALARM, b.data, b.len, &a->seq, err);
	abuf_release(&b);
	if (rc)
		return rc;
	if (exec)
		run_hook(a, exec, hook_err);
	return 0;
}

int alarm_clear(struct repo *r, uint64_t alarm_seq, const char *reason, struct arca_err *err)
{
	struct alarm *v = NULL;
	size_t n = 0;
	int rc = alarm_list(r, true, &v, &n, err);
	if (rc)
		return rc;
	bool found = false;
	for (size_t i = 0; i < n && !found; i++)
		found = v[i].seq == alarm_seq;
	alarms_free(v, n);
	if (!found)
		return arca_err_set(err, ARCA_ENOENT, "no standing alarm %llu", (unsigned long long)alarm_seq);
	struct abuf b = ABUF_INIT;
	rc = alarm_clear_encode(alarm_seq, reason, &b);
	uint64_t seq;
	rc = rc ? arca_err_set(err, rc, "reason too long") : repo_log_append(r, MLOG_ALARM_CLEAR, b.data, b.len, &seq, err);
	abuf_release(&b);
	return rc;
}

struct list_ctx {
	struct alarm *v;
	size_t n, cap;
	int rc;
};

static int list_one(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, void *vctx)
{
	struct list_ctx *c = vctx;
	if (klen != KEY_PREFIX_LEN + 9)
		return 0;
	char which = (char)key[KEY_PREFIX_LEN];
	uint64_t seq = get_u64be(key + KEY_PREFIX_LEN + 1);
	if (which == 'A') {
		if (vlen < 8)
			return ARCA_ECORRUPT;
		if (c->n == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 16;
			struct alarm *nv = realloc(c->v, cap * sizeof(*nv));
			if (nv == NULL)
				return ARCA_ENOMEM;
			c->v = nv;
			c->cap = cap;
		}
		struct alarm *a = &c->v[c->n];
		int rc = alarm_decode(val + 8, vlen - 8, a);
		if (rc)
			return rc == ARCA_ENOMEM ? rc : ARCA_ECORRUPT;
		a->seq = seq;
		a->time_ns = get_u64le(val);
		c->n++;
	} else if (which == 'C') {
		/* 'A' keys sort before 'C': the alarm is listed already */
		if (vlen < 16)
			return ARCA_ECORRUPT;
		for (size_t i = 0; i < c->n; i++)
			if (c->v[i].seq == seq && !c->v[i].cleared) {
				uint64_t aseq;
				char *reason = NULL;
				if (alarm_clear_decode(val + 16, vlen - 16, &aseq, &reason) != 0)
					return ARCA_ECORRUPT;
				c->v[i].cleared = true;
				c->v[i].cleared_seq = get_u64le(val);
				c->v[i].cleared_ns = get_u64le(val + 8);
				c->v[i].cleared_reason = reason;
			}
	}
	return 0;
}

int alarm_list(struct repo *r, bool standing_only, struct alarm **v_r, size_t *n_r,
	       struct arca_err *err)
{
	*v_r = NULL;
	*n_r = 0;
	struct idx_txn *t;
	int rc = idx_begin(repo_index(r), false, &t, err);
	if (rc)
		return rc;
	struct list_ctx c = { 0 };
	rc = idx_cache_foreach(t, KEY_PREFIX, KEY_PREFIX_LEN, list_one, &c);
	idx_abort(t);
	if (rc) {
		alarms_free(c.v, c.n);
		return arca_err_set(err, rc, "index: damaged alarm records (delete %s/index to rebuild it)", repo_path(r));
	}
	if (standing_only) {
		size_t w = 0;
		for (size_t i = 0; i < c.n; i++) {
			if (c.v[i].cleared)
				alarm_release(&c.v[i]);
			else
				c.v[w++] = c.v[i];
		}
		c.n = w;
	}
	*v_r = c.v;
	*n_r = c.n;
	return 0;
}

bool alarm_any_standing(struct repo *r)
{
	struct alarm *v = NULL;
	size_t n = 0;
	/* an index that can't be read counts as an alarm: fail safe */
	if (alarm_list(r, true, &v, &n, NULL) != 0)
		return true;
	alarms_free(v, n);
	return n > 0;
}

/* ---- the pull's checks ---- */

void alarm_policy_default(struct alarm_policy *p)
{
	p->share_pct = 20;
	p->min_messages = 10;
	p->min_folders = 2;
	p->uidvalidity_accounts = 3;
	p->server_share_pct = 50;
	p->server_min_accounts = 3;
}

static bool over_share(uint64_t lost, uint64_t before, unsigned pct)
{
	/* lost/before > pct/100, in integers */
	return before > 0 && lost * 100 > (uint64_t)pct * before;
}

static int add_suspect(struct alarm *a, const char *account, const uint8_t *root)
{
	if (root == NULL || a->nsuspects >= ALARM_SUSPECTS_MAX)
		return 0;
	struct alarm_suspect *v = realloc(a->suspects, (a->nsuspects + 1) * sizeof(*v));
	if (v == NULL)
		return ARCA_ENOMEM;
	a->suspects = v;
	v[a->nsuspects].account = strdup(account);
	if (v[a->nsuspects].account == NULL)
		return ARCA_ENOMEM;
	memcpy(v[a->nsuspects].root, root, ARCA_ID_LEN);
	a->nsuspects++;
	return 0;
}

static bool root_set(const uint8_t *root)
{
	if (root == NULL)
		return false;
	for (size_t i = 0; i < ARCA_ID_LEN; i++)
		if (root[i])
			return true;
	return false;
}

static int raise_one(struct repo *r, struct alarm *a, const struct alarm_report *rep,
		     struct arca_err *err)
{
	struct arca_err hook = { 0 };
	int rc = alarm_raise(r, a, rep->exec, &hook, err);
	if (rc == 0 && rep->raised)
		rep->raised(rep->ctx, a, hook.code ? hook.msg : NULL);
	alarm_release(a);
	return rc;
}

int alarm_check_pull(struct repo *r, const struct alarm_policy *p,
		     const struct alarm_pull_view *v, size_t n, const struct alarm_report *rep,
		     struct arca_err *err)
{
	uint64_t with_prev = 0, emptied = 0, uidv = 0;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct alarm_pull_view *x = &v[i];
		if (!x->had_previous)
			continue;
		with_prev++;
		bool lost_msgs = over_share(x->lost_messages, x->prev_messages, p->share_pct) &&
				 x->lost_messages >= p->min_messages;
		bool lost_folders = over_share(x->lost_folders, x->prev_folders, p->share_pct) &&
				    x->lost_folders >= p->min_folders;
		if (x->gone || lost_msgs || (x->prev_messages > 0 && x->lost_messages == x->prev_messages))
			emptied++;
		if (x->uidvalidity_changed > 0)
			uidv++;
		if (!x->gone && !lost_msgs && !lost_folders)
			continue;
		struct alarm a = { .kind = x->gone ? ALARM_ACCOUNT_GONE
					  : lost_msgs ? ALARM_MASS_DELETION : ALARM_FOLDERS_LOST };
		char text[400];
		if (x->gone)
			snprintf(text, sizeof(text), "login refused for an account that held %llu messages in %llu folders",
				 (unsigned long long)x->prev_messages, (unsigned long long)x->prev_folders);
		else
			snprintf(text, sizeof(text), "lost %llu of %llu messages and %llu of %llu folders since the last snapshot",
				 (unsigned long long)x->lost_messages, (unsigned long long)x->prev_messages,
				 (unsigned long long)x->lost_folders, (unsigned long long)x->prev_folders);
		a.account = strdup(x->account);
		a.text = strdup(text);
		if (a.account == NULL || a.text == NULL ||
		    (root_set(x->root) && add_suspect(&a, x->account, x->root) != 0)) {
			alarm_release(&a);
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		}
		rc = raise_one(r, &a, rep, err);
	}
	/* the whole server, from this batch */
	bool server = with_prev >= p->server_min_accounts &&
		      emptied * 100 >= (uint64_t)p->server_share_pct * with_prev;
	bool uidv_alarm = uidv >= p->uidvalidity_accounts;
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		if ((pass == 0 && !server) || (pass == 1 && !uidv_alarm))
			continue;
		struct alarm a = { .kind = pass == 0 ? ALARM_SERVER_EMPTIED : ALARM_UIDVALIDITY };
		char text[300];
		if (pass == 0)
			snprintf(text, sizeof(text), "%llu of %llu accounts pulled before were emptied, lost most of their mail, or refuse login",
				 (unsigned long long)emptied, (unsigned long long)with_prev);
		else
			snprintf(text, sizeof(text), "%llu accounts changed UIDVALIDITY of some folders in one pull",
				 (unsigned long long)uidv);
		a.account = strdup("");
		a.text = strdup(text);
		if (a.account == NULL || a.text == NULL) {
			alarm_release(&a);
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < n && rc == 0; i++)
			if (v[i].had_previous && root_set(v[i].root) &&
			    (pass == 0 || v[i].uidvalidity_changed > 0) &&
			    add_suspect(&a, v[i].account, v[i].root) != 0)
				rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		if (rc) {
			alarm_release(&a);
			break;
		}
		rc = raise_one(r, &a, rep, err);
	}
	return rc;
}
