// A workload whose syscalls are known: each mode makes a few calls that nothing
// else in a process's life makes (libc start-up, thread creation, exit), from the
// thread or process the test names, so a recording can be checked call by call.
//
//   workload calls    main thread, a second thread and a forked grandchild each make
//                     their own unusual calls, then print "ok" and exit 0; a call
//                     denied by seccomp prints "denied: NAME" and exits non-zero
//   workload busy     loop on sysinfo(2) until killed: the noise a recorder must ignore
//   workload print    print the calls each part makes, as "part name" lines
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* None of the calls below can fail with EPERM on their own, so EPERM means a
 * seccomp filter denied the call: say which, and fail. */
#define CALL(name, ...)                                                   \
	do {                                                              \
		if (syscall(SYS_##name, __VA_ARGS__) == -1 && errno == EPERM) { \
			printf("denied: %s\n", #name);                   \
			fflush(stdout);                                   \
			_exit(10);                                        \
		}                                                         \
	} while (0)

static void thread_calls(void)
{
	struct timespec ts;
	CALL(sched_rr_get_interval, 0, &ts);
	CALL(membarrier, 0, 0, 0); /* MEMBARRIER_CMD_QUERY */
}

static void *thread_main(void *arg)
{
	thread_calls();
	return arg;
}

static void grandchild_calls(void)
{
	CALL(getitimer, 0, (void *)0);
	CALL(personality, 0xffffffffUL); /* query only */
}

static void main_calls(void)
{
	CALL(syncfs, -1);
	CALL(ioprio_get, 1, 0);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "calls";
	if (strcmp(mode, "print") == 0) {
		printf("main syncfs\nmain ioprio_get\n");
		printf("thread sched_rr_get_interval\nthread membarrier\n");
		printf("grandchild getitimer\ngrandchild personality\n");
		return 0;
	}
	if (strcmp(mode, "busy") == 0) {
		struct sysinfo si;
		for (;;)
			syscall(SYS_sysinfo, &si);
	}

	main_calls();

	/* pthread_join waits on a futex only if the thread has not exited yet: make
	 * the call every run, so that no recording depends on who wins that race. */
	static int word;
	syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);

	pthread_t t;
	if (pthread_create(&t, NULL, thread_main, NULL) != 0) {
		printf("denied: pthread_create\n");
		return 2;
	}
	pthread_join(t, NULL);

	pid_t child = fork();
	if (child < 0)
		return 3;
	if (child == 0) {
		pid_t grandchild = fork();
		if (grandchild < 0)
			_exit(4);
		if (grandchild == 0) {
			grandchild_calls();
			_exit(0);
		}
		int st;
		waitpid(grandchild, &st, 0);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 5);
	}
	int st;
	waitpid(child, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return WIFEXITED(st) ? WEXITSTATUS(st) : 6;
	printf("ok\n");
	return 0;
}
