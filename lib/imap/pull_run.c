/*
 * pull_run.c - running a pull of many accounts (pull.h), split in two
 * processes (pull_spawn + pull_serve): the engine in an unprivileged child
 * that holds no key and can only hand new data to the store side over
 * socketpairs (docs/protocol/pull-ipc.md).
 *
 * Why split: the engine parses whatever a mail server — assumed
 * compromised — sends (libetpan, ManageSieve).  A parser bug exploited
 * there gets a process running as nobody, without the ingest key, whose
 * only channel to the vault is the strictly decoded frames below; the store
 * side checks what it is told (content ids exist, "unchanged" folders come
 * from its own cache) and computes the alarm figures itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alarm.h"
#include "fsutil.h"
#include "pack.h"
#include "pull.h"
#include "pull_ipc.h"
#include "pull_store.h"

static void results_free(struct pull_account_result *r, size_t n)
{
	for (size_t i = 0; r && i < n; i++)
		snap_info_release(&r[i].info);
	free(r);
}

/* ---- split: the child ---- */

struct pull_child {
	pid_t pid;
	int *fds;                       /* parent's ends, one per worker */
	unsigned n;
	size_t naccounts;
	char *const *accounts;
};

struct child_run {
	const struct pull_opts *o;
	char *const *accounts;
	size_t naccounts;
	int *fds;
	atomic_size_t next;
	atomic_uint worker;
};

struct proxy {
	int fd;
	bool aborted;                   /* a PUT was cut short: FAIL already sent */
	uint32_t index;                 /* of the account being pulled */
	struct abuf frame, reply;
	struct pull_prev_blobs blobs;
	bool broken;
};

static int proxy_call(struct proxy *p, uint8_t want, struct arca_err *err)
{
	if (p->broken)
		return arca_err_set(err, ARCA_EIO, "the vault's store process is gone");
	int rc = pull_ipc_send(p->fd, &p->frame, err);
	uint8_t type = 0;
	rc = rc ? rc : pull_ipc_recv(p->fd, &type, &p->reply, err);
	if (rc) {
		p->broken = true;
		return rc;
	}
	if (type == PULL_IPC_ERR)
		return pull_ipc_decode_err(p->reply.data, p->reply.len, err);
	if (type != want) {
		p->broken = true;
		return arca_err_set(err, ARCA_EFORMAT, "store process: unexpected answer %u", type);
	}
	return 0;
}

static int proxy_begin(void *ctx, const char *account, const struct pull_prev_blobs **blobs_r,
		       struct arca_err *err)
{
	struct proxy *p = ctx;
	(void)account;
	pull_prev_blobs_release(&p->blobs);
	if (pull_ipc_encode_begin(&p->frame, p->index) != 0)
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	int rc = proxy_call(p, PULL_IPC_PREV, err);
	if (rc == 0 && pull_ipc_decode_prev(p->reply.data, p->reply.len, &p->blobs) != 0)
		rc = arca_err_set(err, ARCA_EFORMAT, "store process: malformed PREV");
	if (rc == 0)
		*blobs_r = &p->blobs;
	return rc;
}

static int proxy_known(void *ctx, const char *guid, uint32_t size, struct pull_content *c)
{
	struct proxy *p = ctx;
	struct arca_err err = { 0 };
	if (pull_ipc_encode_known(&p->frame, guid, size) != 0 ||
	    proxy_call(p, PULL_IPC_KNOWN_R, &err) != 0)
		return 0;
	int known = 0;
	if (pull_ipc_decode_content(p->reply.data, p->reply.len, &known, c) != 0)
		return 0;
	return known;
}

static int proxy_put_begin_any(struct proxy *p, bool sieve, const char *guid, uint32_t size,
				bool stripped, uint64_t total, struct arca_err *err)
{
	if (pull_ipc_encode_put(&p->frame, sieve, guid ? guid : "", size, stripped, total) != 0)
		return arca_err_set(err, ARCA_ELIMIT, "a message too large to hand over (%llu bytes)",
				    (unsigned long long)total);
	int rc = pull_ipc_send(p->fd, &p->frame, err);
	if (rc)
		p->broken = true;
	return rc;
}

static int proxy_put_begin(void *ctx, const char *guid, uint32_t size, bool stripped, uint64_t total,
			   struct arca_err *err)
{
	return proxy_put_begin_any(ctx, false, guid, size, stripped, total, err);
}

static int proxy_put_data(void *ctx, const uint8_t *data, size_t len, struct arca_err *err)
{
	struct proxy *p = ctx;
	int rc = 0;
	for (size_t off = 0; rc == 0 && off < len; off += PULL_IPC_CHUNK) {
		size_t n = len - off < PULL_IPC_CHUNK ? len - off : PULL_IPC_CHUNK;
		if (pull_ipc_encode_data(&p->frame, data + off, n) != 0)
			return arca_err_set(err, ARCA_ENOMEM, "out of memory");
		rc = pull_ipc_send(p->fd, &p->frame, err);
	}
	if (rc)
		p->broken = true;
	return rc;
}

static int proxy_put_end(void *ctx, struct pull_content *c, struct arca_err *err)
{
	struct proxy *p = ctx;
	uint8_t type = 0;
	int rc = pull_ipc_recv(p->fd, &type, &p->reply, err);
	if (rc) {
		p->broken = true;
		return rc;
	}
	if (type == PULL_IPC_ERR)
		return pull_ipc_decode_err(p->reply.data, p->reply.len, err);
	int known = 0;
	if (type != PULL_IPC_KNOWN_R || pull_ipc_decode_content(p->reply.data, p->reply.len, &known, c) != 0 || !known) {
		p->broken = true;
		return arca_err_set(err, ARCA_EFORMAT, "store process: malformed answer to PUT");
	}
	return 0;
}

static void proxy_put_abort(void *ctx, int code, const char *why)
{
	/* the account ends here: the FAIL the engine sends next is this one */
	struct proxy *p = ctx;
	p->aborted = true;
	struct arca_err err = { 0 };
	if (!p->broken && pull_ipc_encode_fail(&p->frame, code, why) == 0 &&
	    pull_ipc_send(p->fd, &p->frame, &err) != 0)
		p->broken = true;
}

static int proxy_put_any(struct proxy *p, bool sieve, const char *guid, uint32_t size, bool stripped,
			 const uint8_t *data, size_t len, struct pull_content *c, struct arca_err *err)
{
	int rc = proxy_put_begin_any(p, sieve, guid, size, stripped, len, err);
	rc = rc ? rc : proxy_put_data(p, data, len, err);
	return rc ? rc : proxy_put_end(p, c, err);
}

static int proxy_put(void *ctx, const char *guid, uint32_t size, bool stripped, const uint8_t *data,
		     size_t len, struct pull_content *c, struct arca_err *err)
{
	return proxy_put_any(ctx, false, guid, size, stripped, data, len, c, err);
}

static int proxy_put_sieve(void *ctx, const uint8_t *data, size_t len, struct pull_content *c,
			   struct arca_err *err)
{
	return proxy_put_any(ctx, true, NULL, 0, false, data, len, c, err);
}

static void proxy_warn(void *ctx, const char *what)
{
	struct proxy *p = ctx;
	struct arca_err err = { 0 };
	if (!p->broken && pull_ipc_encode_warn(&p->frame, what) == 0)
		(void)pull_ipc_send(p->fd, &p->frame, &err);
}

static int proxy_finish(void *ctx, struct snapshot *s, bool gone, uint64_t examined, struct arca_err *err)
{
	struct proxy *p = ctx;
	int rc = pull_ipc_encode_finish(&p->frame, s, gone, examined);
	if (rc)
		return arca_err_set(err, rc, "the account's state is too large to hand over");
	if (gone) {
		/* no answer: the FAIL for the refused login follows */
		rc = pull_ipc_send(p->fd, &p->frame, err);
		if (rc)
			p->broken = true;
		return rc;
	}
	return proxy_call(p, PULL_IPC_OK, err);
}

static void *child_main(void *arg)
{
	struct child_run *cr = arg;
	unsigned w = atomic_fetch_add(&cr->worker, 1);
	struct proxy p = { .fd = cr->fds[w] };
	struct pull_sink sink = { .ctx = &p, .begin = proxy_begin, .known = proxy_known,
				  .put = proxy_put, .put_sieve = proxy_put_sieve,
				  .put_begin = proxy_put_begin, .put_data = proxy_put_data,
				  .put_end = proxy_put_end, .put_abort = proxy_put_abort,
				  .warn = proxy_warn, .finish = proxy_finish };
	for (;;) {
		size_t i = atomic_fetch_add(&cr->next, 1);
		if (i >= cr->naccounts || p.broken)
			break;
		struct arca_err err = { 0 };
		p.index = (uint32_t)i;
		p.aborted = false;
		int rc = pull_engine_account(cr->o, &sink, cr->accounts[i], &err);
		if (rc && !p.broken && !p.aborted && pull_ipc_encode_fail(&p.frame, rc, err.msg) == 0)
			(void)pull_ipc_send(p.fd, &p.frame, &err);
	}
	pull_prev_blobs_release(&p.blobs);
	abuf_release(&p.frame);
	abuf_release(&p.reply);
	close(p.fd);
	return NULL;
}

static int drop_privileges(uid_t uid, gid_t gid)
{
	if (geteuid() != 0)
		return 0;   /* nothing to drop (the caller decided that is fine) */
	if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0)
		return -1;
	if (setuid(0) == 0)
		return -1;   /* paranoia: must not be able to get root back */
	return 0;
}

int pull_spawn(const struct pull_opts *o, char *const *accounts, size_t naccounts,
	       struct pull_child **child_r, struct arca_err *err)
{
	*child_r = NULL;
	unsigned nw = o->parallel ? o->parallel : 1;
	if (nw > naccounts)
		nw = naccounts ? (unsigned)naccounts : 1;
	uid_t uid = 0;
	gid_t gid = 0;
	if (geteuid() == 0) {
		const char *user = o->run_as ? o->run_as : "nobody";
		struct passwd *pw = getpwnam(user);
		if (pw == NULL || pw->pw_uid == 0)
			return arca_err_set(err, ARCA_EINVAL, "user %s for the network side: unknown (or root)", user);
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	struct pull_child *c = calloc(1, sizeof(*c));
	int *childfds = calloc(nw, sizeof(int));
	if (c == NULL || childfds == NULL || (c->fds = calloc(nw, sizeof(int))) == NULL) {
		free(childfds);
		if (c)
			free(c->fds);
		free(c);
		return arca_err_set(err, ARCA_ENOMEM, "out of memory");
	}
	c->n = nw;
	c->naccounts = naccounts;
	c->accounts = accounts;
	unsigned made = 0;
	const char *failed = NULL;
	for (; made < nw; made++) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
			failed = "socketpair";
			break;
		}
		c->fds[made] = sv[0];
		childfds[made] = sv[1];
	}
	fflush(NULL);
	pid_t pid = failed ? -1 : fork();
	if (pid < 0) {
		int e = errno;
		for (unsigned k = 0; k < made; k++) {
			close(c->fds[k]);
			close(childfds[k]);
		}
		free(childfds);
		free(c->fds);
		free(c);
		return arca_err_set(err, ARCA_EIO, "%s: %s", failed ? failed : "fork", strerror(e));
	}
	if (pid == 0) {
		/* the network side: no key was ever loaded in this process */
		for (unsigned k = 0; k < nw; k++)
			close(c->fds[k]);
		signal(SIGPIPE, SIG_IGN);
		(void)prctl(PR_SET_DUMPABLE, 0);
		/* never outlive the store side */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(1);
		if (drop_privileges(uid, gid) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
			fprintf(stderr, "arca pull: cannot drop privileges for the network side\n");
			_exit(1);
		}
		if (chdir("/") != 0)
			_exit(1);
		/* stdout is the store side's (JSON for arcad): not ours to write */
		int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (devnull < 0 || dup2(devnull, 1) < 0)
			_exit(1);
		close(devnull);
		struct child_run cr = { .o = o, .accounts = accounts, .naccounts = naccounts, .fds = childfds };
		atomic_init(&cr.next, 0);
		atomic_init(&cr.worker, 0);
		pthread_t *th = calloc(nw, sizeof(*th));
		unsigned started = 0;
		for (; th && started < nw; started++)
			if (pthread_create(&th[started], NULL, child_main, &cr) != 0)
				break;
		for (unsigned i = 0; i < started; i++)
			pthread_join(th[i], NULL);
		_exit(started == nw ? 0 : 1);
	}
	for (unsigned k = 0; k < nw; k++)
		close(childfds[k]);
	free(childfds);
	c->pid = pid;
	*child_r = c;
	return 0;
}

struct pull_child *pull_child_adopt(pid_t pid, const int *fds, unsigned n, char *const *accounts,
				    size_t naccounts)
{
	struct pull_child *c = calloc(1, sizeof(*c));
	if (c == NULL || (c->fds = calloc(n ? n : 1, sizeof(int))) == NULL) {
		free(c);
		return NULL;
	}
	memcpy(c->fds, fds, n * sizeof(int));
	c->n = n;
	c->pid = pid;
	c->accounts = accounts;
	c->naccounts = naccounts;
	return c;
}

void pull_abandon(struct pull_child *child)
{
	if (child == NULL)
		return;
	kill(child->pid, SIGKILL);
	for (unsigned i = 0; i < child->n; i++)
		close(child->fds[i]);
	while (waitpid(child->pid, NULL, 0) < 0 && errno == EINTR)
		;
	free(child->fds);
	free(child);
}

/* ---- split: the parent ---- */

#define PULL_SPOOL_OVER (32u << 20)

/* An unnamed file in the repository's tmp/ (gone when closed). */
static int spool_open(const char *dir)
{
	return open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
}


struct serve_run {
	struct pull_store *st;
	char spool_dir[4096];
	const struct pull_opts *o;
	struct pull_child *child;
	struct pull_account_result *results;
	atomic_bool *begun;
	atomic_size_t failed;
	atomic_uint worker;
	atomic_bool alarmed;          /* the network-process alarm of this run is logged */
};

static void serve_fail(struct pull_account_result *res, int rc, const char *msg)
{
	res->rc = rc ? rc : ARCA_EIO;
	snprintf(res->err.msg, sizeof(res->err.msg), "%s", msg);
	res->err.code = res->rc;
}

static void *serve_main(void *arg)
{
	struct serve_run *sr = arg;
	unsigned w = atomic_fetch_add(&sr->worker, 1);
	int fd = sr->child->fds[w];
	struct pull_conn *conn = pull_conn_new(sr->st);
	struct abuf in = ABUF_INIT, out = ABUF_INIT, body = ABUF_INIT;
	struct pull_account_result *res = NULL;
	bool fail_next = false;       /* a refused FINISH: only FAIL may follow */
	const char *proto = NULL;     /* set: the child broke the protocol */
	while (conn && proto == NULL) {
		uint8_t type = 0;
		struct arca_err err = { 0 };
		if (pull_ipc_recv(fd, &type, &in, &err) != 0) {
			if (res)
				proto = "the network process died or hung up during the account";
			break;
		}
		if (res == NULL && type != PULL_IPC_BEGIN) {
			proto = "a request outside an account";
			break;
		}
		if (fail_next && type != PULL_IPC_FAIL) {
			proto = "a request after its account was refused";
			break;
		}
		switch (type) {
		case PULL_IPC_BEGIN: {
			uint32_t i;
			if (res != NULL || pull_ipc_decode_begin(in.data, in.len, &i) != 0 ||
			    i >= sr->child->naccounts || atomic_exchange(&sr->begun[i], true)) {
				proto = "a malformed or repeated BEGIN";
				break;
			}
			res = &sr->results[i];
			res->account = sr->child->accounts[i];
			const struct pull_prev_blobs *blobs = NULL;
			int rc = pull_conn_begin(conn, res, &blobs, &err);
			rc = rc ? rc : pull_ipc_encode_prev(&out, blobs);
			if (rc)
				rc = pull_ipc_encode_err(&out, rc, err.msg[0] ? err.msg : "out of memory");
			if (pull_ipc_send(fd, &out, &err) != 0)
				proto = "cannot answer";
			break;
		}
		case PULL_IPC_KNOWN: {
			char guid[256];
			uint32_t size;
			struct pull_content c = { 0 };
			if (pull_ipc_decode_known(in.data, in.len, guid, &size) != 0) {
				proto = "a malformed KNOWN";
				break;
			}
			int known = pull_conn_known(conn, guid, size, &c);
			if (pull_ipc_encode_content(&out, known == 1, &c) != 0 || pull_ipc_send(fd, &out, &err) != 0)
				proto = "cannot answer";
			break;
		}
		case PULL_IPC_PUT: {
			struct pull_ipc_put put;
			if (pull_ipc_decode_put(in.data, in.len, &put) != 0) {
				proto = "a malformed PUT";
				break;
			}
			/* a large message goes to a spool file in the repository's
			 * tmp/ (memory stays bounded), the rest to memory */
			bool spool = !put.sieve && put.total > PULL_SPOOL_OVER;
			int sfd = -1;
			if (spool)
				sfd = spool_open(sr->spool_dir);
			abuf_reset(&body);
			/* our own trouble (memory, disk) fails the account, not the
			 * network process: the rest of the message is read and dropped */
			const char *local = NULL;
			if (!spool && abuf_reserve(&body, put.total) != 0)
				local = "out of memory for a message";
			if (spool && sfd < 0)
				local = "cannot open a spool file in the repository's tmp/";
			uint64_t got = 0;
			bool aborted = false;
			while (got < put.total && proto == NULL) {
				if (pull_ipc_recv(fd, &type, &in, &err) != 0) {
					proto = "a cut DATA";
				} else if (type == PULL_IPC_FAIL) {
					/* the mail server failed mid-message: the account ends */
					int code;
					char msg[ARCA_ERR_MSG_MAX];
					if (pull_ipc_decode_fail(in.data, in.len, &code, msg, sizeof(msg)) != 0)
						proto = "a malformed FAIL";
					else
						serve_fail(res, code, msg);
					aborted = true;
					break;
				} else if (type != PULL_IPC_DATA || in.len > put.total - got || in.len == 0) {
					proto = "a malformed DATA";
				} else {
					if (local == NULL && (spool ? fs_write_all(sfd, in.data, in.len, "spool", NULL) != 0
								    : abuf_add(&body, in.data, in.len) != 0))
						local = spool ? "cannot write the spool file (disk full?)" : "out of memory for a message";
					got += in.len;
				}
			}
			if (proto || aborted) {
				if (sfd >= 0)
					close(sfd);
				if (aborted && proto == NULL) {
					atomic_fetch_add(&sr->failed, 1);
					if (sr->o->done)
						sr->o->done(sr->o->ctx, res);
					pull_conn_end(conn);
					res = NULL;
				}
				break;
			}
			struct pull_content c = { 0 };
			int rc;
			if (local) {
				rc = arca_err_set(&err, ARCA_EIO, "%s: %s", res->account, local);
				if (sfd >= 0)
					close(sfd);
			} else if (spool) {
				rc = pull_conn_put_fd(conn, put.guid, put.rfc822_size, put.stripped,
						      sfd, put.total, &c, &err);
				close(sfd);
			} else {
				rc = put.sieve ? pull_conn_put_sieve(conn, body.data, body.len, &c, &err)
					       : pull_conn_put(conn, put.guid, put.rfc822_size, put.stripped,
							       body.data, body.len, &c, &err);
			}
			rc = rc ? pull_ipc_encode_err(&out, rc, err.msg) : pull_ipc_encode_content(&out, true, &c);
			if (rc != 0 || pull_ipc_send(fd, &out, &err) != 0)
				proto = "cannot answer";
			break;
		}
		case PULL_IPC_WARN: {
			char what[1100];
			if (pull_ipc_decode_warn(in.data, in.len, what, sizeof(what)) != 0) {
				proto = "a malformed WARN";
				break;
			}
			if (sr->o->warn)
				sr->o->warn(sr->o->ctx, res->account, what);
			break;
		}
		case PULL_IPC_FINISH: {
			struct snapshot *s = NULL;
			bool gone = false;
			uint64_t examined = 0;
			int rc = pull_ipc_decode_finish(in.data, in.len, res->account, &s, &gone, &examined);
			if (rc) {
				proto = "a malformed account state";
				break;
			}
			rc = pull_conn_finish(conn, s, gone, examined, &err);
			snapshot_free(s);
			if (gone) {
				/* the engine goes on to report the refused login */
				break;
			}
			bool refused = rc != 0;
			if (refused) {
				/* the engine reports the failure with FAIL next */
				serve_fail(res, rc, err.msg);
				rc = pull_ipc_encode_err(&out, rc, err.msg);
			} else {
				rc = pull_ipc_encode_ok(&out);
			}
			if (rc != 0 || pull_ipc_send(fd, &out, &err) != 0) {
				proto = "cannot answer";
				break;
			}
			if (refused) {
				fail_next = true;
				break;
			}
			if (sr->o->done)
				sr->o->done(sr->o->ctx, res);
			pull_conn_end(conn);
			res = NULL;
			break;
		}
		case PULL_IPC_FAIL: {
			int code;
			char msg[ARCA_ERR_MSG_MAX];
			if (pull_ipc_decode_fail(in.data, in.len, &code, msg, sizeof(msg)) != 0) {
				proto = "a malformed FAIL";
				break;
			}
			if (res->rc == 0)
				serve_fail(res, code, msg);
			fail_next = false;
			atomic_fetch_add(&sr->failed, 1);
			if (sr->o->done)
				sr->o->done(sr->o->ctx, res);
			pull_conn_end(conn);
			res = NULL;
			break;
		}
		default:
			proto = "an unknown request";
			break;
		}
	}
	if (proto) {
		/* a child that breaks the protocol is treated as compromised:
		 * stopped, and a standing alarm (its parser may have been taken
		 * over by what the mail server sent) */
		kill(sr->child->pid, SIGKILL);
		if (!atomic_exchange(&sr->alarmed, true)) {
			char text[512];
			snprintf(text, sizeof(text), "the pull's network process broke the protocol (%s)%s%.200s; it was stopped",
				 proto, res ? " while pulling " : "", res ? res->account : "");
			/* what it handed over earlier in this run is suspect too */
			size_t n = sr->child->naccounts;
			struct pull_account_result **all = calloc(n ? n : 1, sizeof(*all));
			for (size_t i = 0; all && i < n; i++)
				all[i] = &sr->results[i];
			pull_store_alarm(sr->st, ALARM_NETWORK_PROCESS, "", text, all, all ? n : 0);
			free(all);
		}
		if (res) {
			char msg[200];
			snprintf(msg, sizeof(msg), "%s: network process: %s (stopped)", res->account, proto);
			serve_fail(res, ARCA_EFORMAT, msg);
			atomic_fetch_add(&sr->failed, 1);
			if (sr->o->done)
				sr->o->done(sr->o->ctx, res);
		}
	}
	if (conn)
		pull_conn_end(conn);
	pull_conn_free(conn);
	abuf_release(&in);
	abuf_release(&out);
	abuf_release(&body);
	close(fd);
	return NULL;
}

int pull_serve(struct repo *r, const struct pull_opts *o, struct pull_child *child,
	       pull_stage_fn *stage, size_t *failed_r, struct arca_err *err)
{
	struct serve_run sr = { .o = o, .child = child };
	snprintf(sr.spool_dir, sizeof(sr.spool_dir), "%s/tmp", repo_path(r));
	sr.st = pull_store_new(r, o, stage);
	sr.results = calloc(child->naccounts ? child->naccounts : 1, sizeof(*sr.results));
	sr.begun = calloc(child->naccounts ? child->naccounts : 1, sizeof(*sr.begun));
	int rc = 0;
	if (sr.st == NULL || sr.results == NULL || sr.begun == NULL) {
		rc = arca_err_set(err, ARCA_ENOMEM, "out of memory");
		kill(child->pid, SIGKILL);
		for (unsigned i = 0; i < child->n; i++)
			close(child->fds[i]);
	} else {
		for (size_t i = 0; i < child->naccounts; i++)
			atomic_init(&sr.begun[i], false);
		atomic_init(&sr.failed, 0);
		atomic_init(&sr.worker, 0);
		atomic_init(&sr.alarmed, false);
		pthread_t *th = calloc(child->n, sizeof(*th));
		unsigned started = 0;
		for (; th && started < child->n; started++)
			if (pthread_create(&th[started], NULL, serve_main, &sr) != 0)
				break;
		if (started < child->n) {
			kill(child->pid, SIGKILL);
			for (unsigned i = started; i < child->n; i++)
				close(child->fds[i]);
		}
		for (unsigned i = 0; i < started; i++)
			pthread_join(th[i], NULL);
		free(th);
	}
	int status = 0;
	while (waitpid(child->pid, &status, 0) < 0 && errno == EINTR)
		;
	/* accounts the child never got to */
	for (size_t i = 0; sr.begun && sr.results && i < child->naccounts; i++) {
		if (atomic_load(&sr.begun[i]))
			continue;
		struct pull_account_result *res = &sr.results[i];
		res->account = child->accounts[i];
		char msg[300];
		snprintf(msg, sizeof(msg), "%.200s: not pulled: the network process ended early (%s %d)",
			 res->account, WIFSIGNALED(status) ? "signal" : "exit",
			 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		serve_fail(res, ARCA_EIO, msg);
		atomic_fetch_add(&sr.failed, 1);
		if (o->done)
			o->done(o->ctx, res);
	}
	if (rc == 0)
		rc = pull_store_commit(sr.st, err);
	*failed_r = atomic_load(&sr.failed);
	results_free(sr.results, child->naccounts);
	free(sr.begun);
	pull_store_free(sr.st);
	free(child->fds);
	free(child);
	return rc;
}
