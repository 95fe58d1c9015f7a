/*
 * sandbox.c - a seccomp allow-list for arcad's listener (OpenSSH's
 * sandbox-seccomp-filter.c is the model): once it has its sockets, its TLS
 * context and its user, the listener needs a handful of system calls to
 * talk; anything else (open, execve, ptrace, new sockets...) fails with
 * EACCES.  An error rather than a kill: a call overlooked here degrades one
 * session, it does not stop the journal.
 *
 * Not applied in sanitizer builds (ASan's runtime makes calls of its own).
 */
#include "sandbox.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANDBOX_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define SANDBOX_OFF 1
#endif
#endif

#if defined(__x86_64__)
#define SANDBOX_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_ARCH AUDIT_ARCH_AARCH64
#endif

#define ALLOW(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

int sandbox_listener(void)
{
#if defined(SANDBOX_OFF) || !defined(SANDBOX_ARCH)
	return 1;   /* not applied */
#else
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		/* talking */
		ALLOW(__NR_read), ALLOW(__NR_write), ALLOW(__NR_writev), ALLOW(__NR_readv),
		ALLOW(__NR_sendto), ALLOW(__NR_sendmsg), ALLOW(__NR_recvfrom), ALLOW(__NR_recvmsg),
		ALLOW(__NR_accept4), ALLOW(__NR_close), ALLOW(__NR_shutdown), ALLOW(__NR_fcntl),
		ALLOW(__NR_ppoll), ALLOW(__NR_getsockopt), ALLOW(__NR_getpeername),
		ALLOW(__NR_getsockname),
#ifdef __NR_poll
		ALLOW(__NR_poll),
#endif
		/* memory, time, randomness (TLS), threads' locks, signals, exit */
		ALLOW(__NR_brk), ALLOW(__NR_mmap), ALLOW(__NR_munmap), ALLOW(__NR_mremap),
		ALLOW(__NR_madvise), ALLOW(__NR_mprotect), ALLOW(__NR_clock_gettime),
		ALLOW(__NR_gettimeofday), ALLOW(__NR_getrandom), ALLOW(__NR_futex),
		ALLOW(__NR_getpid), ALLOW(__NR_gettid), ALLOW(__NR_rt_sigreturn),
		ALLOW(__NR_rt_sigprocmask), ALLOW(__NR_restart_syscall), ALLOW(__NR_exit),
		ALLOW(__NR_exit_group), ALLOW(__NR_newfstatat), ALLOW(__NR_fstat),
#ifdef __NR_time
		ALLOW(__NR_time),
#endif
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EACCES & SECCOMP_RET_DATA)),
	};
	struct sock_fprog prog = { .len = (unsigned short)(sizeof(f) / sizeof(f[0])), .filter = f };
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
		return -1;
	return 0;
#endif
}
