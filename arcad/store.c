/*
 * store.c - arcad's store process: the only one that holds the ingest key
 * and writes the repository.  It takes messages from the listener, stores
 * each with its envelope in the journal, makes a whole batch durable with
 * one fdatasync (group commit: whatever arrived while the previous sync ran
 * is the next batch), and only then answers 250 for its recipients.
 */
#include "arcad.h"
#include "alarm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "journal.h"
#include "lmtp.h"
#include "repo.h"
#include "banned.h"

/* Bytes journaled today per account (quota), a small open hash table. */
struct usage {
	char **keys;
	uint64_t *bytes;
	size_t cap, n;
	uint64_t day;          /* UTC day number the counts are for */
	uint64_t total;
};

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static void usage_clear(struct usage *u)
{
	for (size_t i = 0; i < u->cap; i++)
		free(u->keys[i]);
	free(u->keys);
	free(u->bytes);
	memset(u, 0, sizeof(*u));
}

static uint64_t *usage_slot(struct usage *u, const char *account)
{
	if (u->n * 2 >= u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 1024;
		struct usage nu = { calloc(cap, sizeof(char *)), calloc(cap, sizeof(uint64_t)), cap, 0,
				    u->day, u->total };
		if (nu.keys == NULL || nu.bytes == NULL) {
			free(nu.keys);
			free(nu.bytes);
			return NULL;
		}
		for (size_t i = 0; i < u->cap; i++) {
			if (u->keys[i] == NULL)
				continue;
			size_t j = fnv(u->keys[i]) & (cap - 1);
			while (nu.keys[j] != NULL)
				j = (j + 1) & (cap - 1);
			nu.keys[j] = u->keys[i];
			nu.bytes[j] = u->bytes[i];
			nu.n++;
		}
		free(u->keys);
		free(u->bytes);
		*u = nu;
	}
	size_t j = fnv(account) & (u->cap - 1);
	while (u->keys[j] != NULL && strcmp(u->keys[j], account) != 0)
		j = (j + 1) & (u->cap - 1);
	if (u->keys[j] == NULL) {
		u->keys[j] = strdup(account);
		if (u->keys[j] == NULL)
			return NULL;
		u->n++;
	}
	return &u->bytes[j];
}

static uint64_t utc_day(uint64_t ns)
{
	return ns / (86400ull * 1000000000ull);
}

static int usage_load_one(const struct journal_rec *rec, void *ctx)
{
	struct usage *u = ctx;
	uint64_t *b = usage_slot(u, rec->account);
	if (b == NULL)
		return ARCA_ENOMEM;
	*b += rec->size;
	u->total += rec->size;
	return 0;
}

struct store {
	const struct arcad_config *c;
	struct repo *r;
	struct journal *j;
	int fd;
	struct usage use;
	bool accepting;
	char why[IPC_TEXT_MAX];
	uint64_t last_heal_ns;
	uint64_t last_alarm_ns;
	uint64_t messages, records, batches;
	uint64_t last_mail_ns;            /* wall clock of the last journaled message (or start) */
	bool silence_raised;              /* the journal-silence alarm of this silence is logged */
};

/* No journaled mail for journal-silence seconds: the mail server stopped
 * sending copies (reconfigured, or taken over).  A standing alarm in the
 * log, once per silence. */
static void check_silence(struct store *s)
{
	if (s->c->journal_silence == 0 || s->silence_raised)
		return;
	uint64_t now = arca_now_ns();
	if (now - s->last_mail_ns < (uint64_t)s->c->journal_silence * 1000000000ull)
		return;
	s->silence_raised = true;
	char text[200];
	snprintf(text, sizeof(text), "no mail journaled for %llu s (journal-silence is %u s)",
		 (unsigned long long)((now - s->last_mail_ns) / 1000000000ull), s->c->journal_silence);
	struct alarm a = { .kind = ALARM_JOURNAL_SILENT, .account = (char *)"", .text = text };
	struct arca_err e = { 0 }, hook = { 0 };
	if (alarm_raise(s->r, &a, s->c->alarm_exec, &hook, &e) != 0)
		arcad_log(LOG_ALERT, "ALARM: %s (could not be logged in the repository: %s)", text, e.msg);
	else
		arcad_log(LOG_ALERT, "ALARM: %s (log entry %llu; arca status)", text, (unsigned long long)a.seq);
	if (hook.code)
		arcad_log(LOG_WARNING, "%s", hook.msg);
}

/* Alarms: at most one log line per minute each (a flood must not flood
 * the log too). */
static void alarm_line(struct store *s, const char *what)
{
	uint64_t t = arca_mono_ns();
	if (s->last_alarm_ns && t - s->last_alarm_ns < 60ull * 1000000000ull)
		return;
	s->last_alarm_ns = t;
	arcad_log(LOG_ALERT, "ALARM: %s", what);
}

static uint64_t disk_free(const char *path)
{
	struct statvfs v;
	if (statvfs(path, &v) != 0)
		return UINT64_MAX;   /* unknown: don't refuse on that alone */
	return (uint64_t)v.f_bavail * v.f_frsize;
}

/* Recompute whether new mail can be taken; tell the listener on change. */
static void update_status(struct store *s, bool force)
{
	bool ok = true;
	char why[IPC_TEXT_MAX] = "";
	if (!journal_healthy(s->j)) {
		ok = false;
		snprintf(why, sizeof(why), "451 4.3.0 the vault cannot write its journal; try again later");
	} else if (disk_free(s->c->repo) < s->c->disk_reserve) {
		ok = false;
		snprintf(why, sizeof(why), "452 4.3.1 the vault's disk reserve is reached");
	} else if (s->c->quota_total_day && s->use.total >= s->c->quota_total_day) {
		ok = false;
		snprintf(why, sizeof(why), "452 4.3.1 the vault's journal quota for today is reached");
	}
	if (!ok && s->accepting)
		alarm_line(s, why + 10);
	if (!force && ok == s->accepting)
		return;
	s->accepting = ok;
	snprintf(s->why, sizeof(s->why), "%s", why);
	struct ipc_status st = { .accepting = ok };
	snprintf(st.text, sizeof(st.text), "%s", why);
	struct abuf b = ABUF_INIT;
	if (ipc_status_encode(&st, &b) == 0)
		(void)ipc_write_all(s->fd, b.data, b.len);
	abuf_release(&b);
	arcad_log(ok ? LOG_NOTICE : LOG_WARNING, ok ? "accepting mail" : "not accepting mail: %s", why);
}

/* What the store answers a recipient (index into replies[]). */
enum reply {
	RP_PENDING,      /* added: 250 once committed, 451 if the commit fails */
	RP_NOT_JOURNAL,
	RP_NOT_ACCEPTING,
	RP_TOO_BIG,
	RP_QUOTA,
	RP_NOMEM,
	RP_FAILED,
	RP_OK,
};
static const char *const replies[] = {
	[RP_PENDING] = "451 4.3.0 journal write failed; try again later",
	[RP_NOT_JOURNAL] = "550 5.1.1 not a journal address",
	[RP_NOT_ACCEPTING] = NULL,   /* s->why */
	[RP_TOO_BIG] = "552 5.3.4 message too big for the vault",
	[RP_QUOTA] = "452 4.2.2 journal quota for today reached",
	[RP_NOMEM] = "451 4.3.0 out of memory",
	[RP_FAILED] = "451 4.3.0 journal write failed; try again later",
	[RP_OK] = "250 2.0.0 journaled",
};

/* A message waiting for its batch's commit. */
struct waiting_msg {
	uint64_t txn;
	uint16_t n;
	uint8_t *codes;     /* enum reply per recipient */
};

/* One message: map recipients, check quotas, add to the journal. */
static void take(struct store *s, const struct ipc_deliver *d, uint8_t *codes)
{
	struct journal_rcpt rc[IPC_RCPT_MAX];
	static char accounts[IPC_RCPT_MAX][JOURNAL_REC_ACCOUNT_MAX + 1];
	size_t nr = 0;
	uint64_t day = utc_day(d->time_ns);
	if (day != s->use.day) {
		usage_clear(&s->use);
		s->use.day = day;
	}
	for (size_t i = 0; i < d->nrcpt; i++) {
		enum journal_dir dir;
		struct arca_err e = { 0 };
		if (journal_addr_map(d->rcpts[i], s->c->journal_domain, accounts[nr],
				     sizeof(accounts[nr]), &dir, &e) != 0) {
			codes[i] = RP_NOT_JOURNAL;
			continue;
		}
		if (!s->accepting) {
			codes[i] = RP_NOT_ACCEPTING;
			continue;
		}
		if (d->body_len > s->c->max_message_size) {
			codes[i] = RP_TOO_BIG;
			continue;
		}
		uint64_t *used = usage_slot(&s->use, accounts[nr]);
		if (used == NULL) {
			codes[i] = RP_NOMEM;
			continue;
		}
		if (s->c->quota_account_day && *used + d->body_len > s->c->quota_account_day) {
			codes[i] = RP_QUOTA;
			char what[IPC_TEXT_MAX];
			snprintf(what, sizeof(what), "journal quota reached for %.200s", accounts[nr]);
			alarm_line(s, what);
			continue;
		}
		rc[nr].address = (char *)d->rcpts[i];
		rc[nr].account = accounts[nr];
		rc[nr].direction = (uint8_t)dir;
		codes[i] = RP_PENDING;
		nr++;
	}
	if (nr == 0)
		return;
	struct journal_envelope env = {
		.time_ns = d->time_ns, .client = (char *)d->client, .helo = (char *)d->helo,
		.mail_from = (char *)d->mail_from, .flags = d->flags, .rcpts = rc, .nrcpt = nr,
	};
	struct arca_err e = { 0 };
	if (journal_add(s->j, &env, d->body, (size_t)d->body_len, &e) != 0) {
		arcad_log(LOG_ERR, "journal: %s", e.msg);
		for (size_t i = 0; i < d->nrcpt; i++)
			if (codes[i] == RP_PENDING)
				codes[i] = RP_FAILED;
		if (!journal_healthy(s->j))
			update_status(s, false);
		return;
	}
	for (size_t k = 0; k < nr; k++) {
		uint64_t *used = usage_slot(&s->use, accounts[k]);
		if (used)
			*used += d->body_len;
	}
	s->use.total += d->body_len * nr;
	s->messages++;
	s->last_mail_ns = arca_now_ns();
	s->silence_raised = false;
	s->records += nr;
}

struct waiting {
	struct waiting_msg *m;
	size_t n, cap;
};

/* Commit the batch, then send every waiting result. */
static int finish_batch(struct store *s, struct waiting *w)
{
	if (w->n == 0)
		return 0;
	struct arca_err e = { 0 };
	bool committed = journal_pending(s->j) == 0 || journal_commit(s->j, &e) == 0;
	if (!committed) {
		arcad_log(LOG_ERR, "journal commit failed, nothing of this batch is acknowledged: %s", e.msg);
		update_status(s, false);
	}
	s->batches++;
	struct abuf out = ABUF_INIT;
	int rc = 0;
	static struct ipc_result res;
	for (size_t m = 0; m < w->n; m++) {
		struct waiting_msg *wm = &w->m[m];
		res.txn = wm->txn;
		res.n = wm->n;
		for (size_t i = 0; i < wm->n; i++) {
			enum reply c = wm->codes[i];
			if (c == RP_PENDING)
				c = committed ? RP_OK : RP_FAILED;
			res.text[i] = c == RP_NOT_ACCEPTING ? s->why : replies[c];
		}
		if (rc == 0)
			rc = ipc_result_encode(&res, &out);
		free(wm->codes);
	}
	w->n = 0;
	if (rc == 0 && ipc_write_all(s->fd, out.data, out.len) != 0)
		rc = ARCA_EIO;
	abuf_release(&out);
	return rc;
}

int store_run(const struct arcad_config *c, int ipc_fd, volatile sig_atomic_t *stop)
{
	struct store s = { .c = c, .fd = ipc_fd, .accepting = true };
	struct arca_err e = { 0 };
	int status = 1;
	struct waiting w = { 0 };
	struct ipc_reader rd;
	ipc_reader_init(&rd, IPC_FRAME_MAX);
	struct abuf strings = ABUF_INIT;
	if (repo_open(c->repo, REPO_OPEN_WRITE, &s.r, &e) != 0) {
		arcad_log(LOG_ERR, "%s", e.msg);
		goto out;
	}
	struct journal_opts jo = { .seal_bytes = c->seal_bytes,
				   .seal_after_ns = (uint64_t)c->seal_seconds * 1000000000ull };
	struct journal_recovery rec;
	if (journal_open(s.r, &jo, &s.j, &rec, &e) != 0) {
		arcad_log(LOG_ERR, "%s", e.msg);
		goto out;
	}
	if (rec.segments)
		arcad_log(LOG_NOTICE, "recovered %u journal segment(s) left by the last run: %llu records kept, %llu unacknowledged bytes dropped",
			  rec.segments, (unsigned long long)rec.records, (unsigned long long)rec.bytes_dropped);
	uint64_t today = utc_day(arca_now_ns());
	s.use.day = today;
	if (journal_list(s.r, NULL, today * 86400ull * 1000000000ull, usage_load_one, &s.use, &e) != 0)
		arcad_log(LOG_WARNING, "quota counts start at zero: %s", e.msg);
	fcntl(ipc_fd, F_SETFL, fcntl(ipc_fd, F_GETFL) | O_NONBLOCK);
	update_status(&s, true);
	s.last_mail_ns = arca_now_ns();   /* the silence is counted from the start */
	arcad_log(LOG_NOTICE, "store ready on %s", c->repo);
	uint64_t last_status = arca_mono_ns();
	while (!*stop) {
		struct pollfd pf = { .fd = ipc_fd, .events = POLLIN };
		int n = poll(&pf, 1, 1000);
		if (n < 0 && errno != EINTR) {
			arcad_log(LOG_ERR, "poll: %s", strerror(errno));
			break;
		}
		bool eof = false;
		if (n > 0) {
			int f = ipc_reader_fill(&rd, ipc_fd);
			if (f < 0) {
				if (errno != 0)
					arcad_log(LOG_ERR, "listener channel: %s", strerror(errno));
				eof = true;
			}
		}
		/* every complete frame now in the buffer is one batch */
		uint8_t type;
		const uint8_t *p;
		size_t len;
		int k;
		bool bad = false;
		while ((k = ipc_reader_next(&rd, &type, &p, &len)) == 1) {
			if (type == IPC_DELIVER) {
				static struct ipc_deliver d;
				if (ipc_deliver_decode(p, len, &d, &strings) != 0) {
					bad = true;
					break;
				}
				if (w.n == w.cap) {
					size_t cap = w.cap ? w.cap * 2 : 64;
					struct waiting_msg *nm = realloc(w.m, cap * sizeof(*nm));
					if (nm == NULL) {
						arcad_log(LOG_ERR, "out of memory");
						bad = true;
						break;
					}
					w.m = nm;
					w.cap = cap;
				}
				struct waiting_msg *wm = &w.m[w.n];
				wm->txn = d.txn;
				wm->n = d.nrcpt;
				wm->codes = calloc(d.nrcpt, 1);
				if (wm->codes == NULL) {
					arcad_log(LOG_ERR, "out of memory");
					bad = true;
					break;
				}
				w.n++;
				take(&s, &d, wm->codes);
			} else if (type == IPC_EVENT) {
				struct ipc_event ev;
				if (ipc_event_decode(p, len, &ev) != 0) {
					bad = true;
					break;
				}
				if (ev.alarm)
					alarm_line(&s, ev.text);
				else
					arcad_log(LOG_NOTICE, "listener: %s", ev.text);
			} else {
				bad = true;
				break;
			}
		}
		if (k < 0)
			bad = true;
		if (finish_batch(&s, &w) != 0 && !eof) {
			arcad_log(LOG_ERR, "cannot answer the listener");
			eof = true;
		}
		if (bad) {
			/* the listener is compromised or broken: stop talking to it */
			arcad_log(LOG_ALERT, "ALARM: malformed message from the listener; closing its channel");
			break;
		}
		if (eof)
			break;
		if (journal_maybe_seal(s.j, false, &e) != 0) {
			arcad_log(LOG_ERR, "sealing the journal segment: %s", e.msg);
			arca_err_clear(&e);
		}
		uint64_t t = arca_mono_ns();
		if (!journal_healthy(s.j) && t - s.last_heal_ns > 5000000000ull) {
			s.last_heal_ns = t;
			if (journal_heal(s.j, &e) == 0)
				arcad_log(LOG_NOTICE, "journal writable again");
			else
				arcad_log(LOG_ERR, "journal still not writable: %s", e.msg);
			arca_err_clear(&e);
		}
		if (t - last_status > 1000000000ull) {
			last_status = t;
			update_status(&s, false);
			check_silence(&s);
		}
	}
	status = 0;
out:
	if (s.j != NULL) {
		if (journal_close(s.j, &e) != 0) {
			arcad_log(LOG_ERR, "sealing the journal at exit: %s (the next start recovers it)", e.msg);
			status = 1;
		}
	}
	if (s.r != NULL)
		arcad_log(LOG_NOTICE, "store stopped: %llu messages, %llu journal records, %llu commits",
			  (unsigned long long)s.messages, (unsigned long long)s.records,
			  (unsigned long long)s.batches);
	repo_close(s.r);
	usage_clear(&s.use);
	free(w.m);
	abuf_release(&strings);
	ipc_reader_release(&rd);
	return status;
}
