/*
 * The store side of a split pull (lib/imap/pull_run.c pull_serve) facing a
 * network process that misbehaves: the test plays that process over a
 * socketpair.  A protocol violation stops it, fails its account, and logs
 * one standing network-process alarm; a state that names content the
 * account never stored is refused; a refused FINISH followed by FAIL is
 * not a violation.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alarm.h"
#include "harness.h"
#include "pull_ipc.h"
#include "repo.h"
#include "snapshot.h"
#include "maildir.h"

struct env {
	char *dir;
	char repo[4096], key[4096];
	struct repo *r;
};

static int env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	e->dir = harness_tmpdir("pullserve");
	snprintf(e->repo, sizeof(e->repo), "%s/repo", e->dir);
	snprintf(e->key, sizeof(e->key), "%s/restore.key", e->dir);
	struct repo_create_opts o = { .restore_key_path = e->key,
				      .passphrase = "test passphrase", .fast_kdf = true };
	struct arca_err err = { 0 };
	if (repo_create(e->repo, &o, &err) != 0 || repo_open(e->repo, REPO_OPEN_WRITE, &e->r, &err) != 0) {
		fprintf(stderr, "  %s\n", err.msg);
		return -1;
	}
	return 0;
}

static void env_release(struct env *e)
{
	repo_close(e->r);
	harness_rm_rf(e->dir);
	free(e->dir);
}

struct seen {
	int done, failed, alarms;
	uint8_t alarm_kind;
	char last_err[ARCA_ERR_MSG_MAX];
};

static void on_done(void *ctx, const struct pull_account_result *res)
{
	struct seen *s = ctx;
	s->done++;
	if (res->rc) {
		s->failed++;
		snprintf(s->last_err, sizeof(s->last_err), "%s", res->err.msg);
	}
}

static void on_alarm(void *ctx, const struct alarm *a, const char *hook)
{
	(void)hook;
	struct seen *s = ctx;
	s->alarms++;
	s->alarm_kind = a->kind;
}

/* The fake network process: sends `script` (whole frames), reads whatever
 * comes back, then waits to be killed or for the parent to hang up. */
static pid_t fake_child(int fd, int other, const struct abuf *script)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	close(other);   /* the store's end: else we never see it hang up */
	(void)!write(fd, script->data, script->len);
	shutdown(fd, SHUT_WR);   /* no more frames: like a network process that is done */
	char buf[65536];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	_exit(0);
}

static int serve(struct env *e, const struct abuf *script, char **accounts, size_t n, struct seen *s)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	pid_t pid = fake_child(sv[1], sv[0], script);
	close(sv[1]);
	struct pull_opts o = { .done = on_done, .alarm_raised = on_alarm, .ctx = s, .parallel = 1 };
	struct pull_child *c = pull_child_adopt(pid, &sv[0], 1, accounts, n);
	size_t failed = 0;
	struct arca_err err = { 0 };
	return pull_serve(e->r, &o, c, NULL, &failed, &err);
}

static void add_frame(struct abuf *script, const struct abuf *frame)
{
	abuf_add(script, frame->data, frame->len);
}

static void test_violation_raises_alarm(void)
{
	struct env e;
	CHECK(env_init(&e) == 0);
	char *accounts[] = { "a@x.test", "b@x.test" };
	struct abuf script = ABUF_INIT, f = ABUF_INIT;
	pull_ipc_encode_begin(&f, 0);
	add_frame(&script, &f);
	/* a frame of an unknown type */
	static const uint8_t bad[] = { 1, 0, 0, 0, 99 };
	abuf_add(&script, bad, sizeof(bad));
	struct seen s = { 0 };
	CHECK(serve(&e, &script, accounts, 2, &s) == 0);
	CHECK_EQ_INT(s.done, 2);            /* a@ stopped, b@ never begun */
	CHECK_EQ_INT(s.failed, 2);
	CHECK_EQ_INT(s.alarms, 1);
	CHECK_EQ_INT(s.alarm_kind, ALARM_NETWORK_PROCESS);
	CHECK(alarm_any_standing(e.r));
	struct alarm *v = NULL;
	size_t n = 0;
	CHECK(alarm_list(e.r, true, &v, &n, NULL) == 0);
	CHECK_EQ_INT((int)n, 1);
	if (n == 1)
		CHECK_STR(alarm_kind_name(v[0].kind), "network-process");
	alarms_free(v, n);
	abuf_release(&script);
	abuf_release(&f);
	env_release(&e);
}

/* A state naming content the account never stored or was told about:
 * refused (ERR), the account fails, the FAIL after it is no violation. */
static void test_foreign_content_refused(void)
{
	struct env e;
	CHECK(env_init(&e) == 0);
	/* content that exists in the repository (another account's, say) */
	uint8_t type, id[ARCA_ID_LEN];
	struct arca_err err = { 0 };
	CHECK(repo_put_content(e.r, "From: x\r\n\r\nsecret\r\n", 19, &type, id, &err) == 0);
	CHECK(repo_flush(e.r, &err) == 0);
	char *accounts[] = { "a@x.test" };
	struct snapshot *s = snapshot_new("a@x.test", "imap");
	s->layout = MAILDIR_LAYOUT_MAILDIRPP;
	struct snap_folder *f = snapshot_add_folder(s, "INBOX");
	f->attrs = SNAP_FOLDER_SELECTABLE;
	f->uidvalidity = 7;
	f->nextuid = 2;
	struct snap_msg m = { .uid = 1, .content_type = type, .size = 19, .base = "b", .uidlist_ext = "" };
	memcpy(m.content_id, id, ARCA_ID_LEN);
	CHECK(snap_folder_add_msg(f, &m) == 0);
	struct abuf script = ABUF_INIT, fr = ABUF_INIT;
	pull_ipc_encode_begin(&fr, 0);
	add_frame(&script, &fr);
	CHECK(pull_ipc_encode_finish(&fr, s, false, 1) == 0);
	add_frame(&script, &fr);
	pull_ipc_encode_fail(&fr, ARCA_EFORMAT, "refused, as it should be");
	add_frame(&script, &fr);
	struct seen sn = { 0 };
	CHECK(serve(&e, &script, accounts, 1, &sn) == 0);
	CHECK_EQ_INT(sn.done, 1);
	CHECK_EQ_INT(sn.failed, 1);
	CHECK(strstr(sn.last_err, "didn't store or name") != NULL);
	CHECK_EQ_INT(sn.alarms, 0);          /* a refusal, not a violation */
	CHECK(!alarm_any_standing(e.r));
	struct snap_info *list = NULL;
	size_t n = 0;
	CHECK(repo_snapshots(e.r, &list, &n, &err) == 0);
	CHECK_EQ_INT((int)n, 0);
	snap_infos_free(list, n);
	snapshot_free(s);
	abuf_release(&script);
	abuf_release(&fr);
	env_release(&e);
}

/* FINISH carries the layout the server's separator says (1 Maildir++, 2
 * LAYOUT=fs); the store takes it and refuses any other value. */
static void test_finish_layout(void)
{
	struct snapshot *s = snapshot_new("a@x.test", "imap");
	REQUIRE(s != NULL);
	struct abuf fr = ABUF_INIT;
	CHECK_EQ_INT(pull_ipc_encode_finish(&fr, s, false, 0), ARCA_ELIMIT);   /* 0: unset */
	s->layout = MAILDIR_LAYOUT_FS;
	REQUIRE(pull_ipc_encode_finish(&fr, s, false, 0) == 0);
	struct snapshot *t = NULL;
	bool gone = true;
	uint64_t examined = 1;
	/* frame: u32 length, u8 type; payload: gone, examined, account, time */
	REQUIRE(pull_ipc_decode_finish(fr.data + 5, fr.len - 5, "a@x.test", &t, &gone, &examined) == 0);
	REQUIRE(t != NULL);
	CHECK_EQ_INT(t->layout, MAILDIR_LAYOUT_FS);
	snapshot_free(t);
	size_t at = 5 + 1 + 1 + 1 + strlen("a@x.test") + 8;
	CHECK_EQ_INT(fr.data[at], MAILDIR_LAYOUT_FS);
	fr.data[at] = 3;
	t = NULL;
	CHECK_EQ_INT(pull_ipc_decode_finish(fr.data + 5, fr.len - 5, "a@x.test", &t, &gone, &examined),
		     ARCA_EFORMAT);
	CHECK(t == NULL);
	fr.data[at] = 0;
	CHECK_EQ_INT(pull_ipc_decode_finish(fr.data + 5, fr.len - 5, "a@x.test", &t, &gone, &examined),
		     ARCA_EFORMAT);
	abuf_release(&fr);
	snapshot_free(s);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(test_violation_raises_alarm);
	RUN(test_foreign_content_refused);
	RUN(test_finish_layout);
	HARNESS_EXIT();
}
