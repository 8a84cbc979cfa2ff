/*
 * The argument workload: `args benign` makes the calls whose arguments syscage
 * records, with harmless values; `args attack NAME` makes one call with a value the
 * benign mode never used, and prints "NAME: ok" or "NAME: errno N" so that a test
 * can tell a refusal by the profile (EPERM, or ENOSYS for clone3) from the kernel's
 * own answer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static void *thread(void *arg) { return arg; }

static int page_call(int prot)
{
	void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	int r = mprotect(p, 4096, prot);
	int e = errno;
	munmap(p, 4096);
	errno = e;
	return r;
}

static int benign(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	if (pid < 0 || waitpid(pid, NULL, 0) < 0)
		return perror("fork"), 1;
	pthread_t t;
	if (pthread_create(&t, NULL, thread, NULL) != 0 || pthread_join(t, NULL) != 0)
		return fprintf(stderr, "pthread_create failed\n"), 1;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return perror("socket unix"), 1;
	close(s);
	s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0)
		return perror("socket inet"), 1;
	close(s);
	if (personality(0xffffffff) < 0)
		return perror("personality"), 1;
	int fd = open("/dev/null", O_RDONLY);
	struct termios tio;
	ioctl(fd, TCGETS, &tio); /* ENOTTY: the call is made, which is what counts */
	close(fd);
	if (page_call(PROT_READ | PROT_WRITE) < 0)
		return perror("mprotect"), 1;
	printf("ok\n");
	return 0;
}

static int report(const char *name, long r)
{
	if (r < 0)
		printf("%s: errno %d\n", name, errno);
	else
		printf("%s: ok\n", name);
	return 0;
}

static long child_exit(long r)
{
	if (r == 0)
		_exit(0);
	if (r > 0)
		waitpid(r, NULL, 0);
	return r;
}

static int attack(const char *name)
{
	char c = 0;
	int fd;
	if (!strcmp(name, "clone-newuser"))
		return report(name, child_exit(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)));
	if (!strcmp(name, "clone3-newuser")) {
		struct clone_args a;
		memset(&a, 0, sizeof(a));
		a.flags = CLONE_NEWUSER;
		a.exit_signal = SIGCHLD;
		return report(name, child_exit(syscall(SYS_clone3, &a, sizeof(a))));
	}
	if (!strcmp(name, "unshare-newuser"))
		return report(name, unshare(CLONE_NEWUSER));
	if (!strcmp(name, "af-alg"))
		return report(name, socket(AF_ALG, SOCK_SEQPACKET, 0));
	if (!strcmp(name, "af-vsock"))
		return report(name, socket(AF_VSOCK, SOCK_STREAM, 0));
	if (!strcmp(name, "af-inet6"))
		return report(name, socket(AF_INET6, SOCK_DGRAM, 0));
	if (!strcmp(name, "af-packet"))
		return report(name, socket(AF_PACKET, SOCK_DGRAM, 0));
	if (!strcmp(name, "af-netlink"))
		return report(name, socket(AF_NETLINK, SOCK_RAW, 0));
	if (!strcmp(name, "unix-dgram"))
		return report(name, socket(AF_UNIX, SOCK_DGRAM, 0));
	if (!strcmp(name, "per-linux32"))
		return report(name, syscall(SYS_personality, 0x0008));
	if (!strcmp(name, "tiocsti")) {
		fd = open("/dev/null", O_RDONLY);
		return report(name, ioctl(fd, TIOCSTI, &c));
	}
	if (!strcmp(name, "tiocsti-high")) {
		/* The kernel reads the request as an unsigned int (CVE-2019-7303). */
		fd = open("/dev/null", O_RDONLY);
		return report(name, syscall(SYS_ioctl, fd, 0x100000000UL | TIOCSTI, &c));
	}
	if (!strcmp(name, "mprotect-wx"))
		return report(name, page_call(PROT_READ | PROT_WRITE | PROT_EXEC));
	fprintf(stderr, "unknown attack %s\n", name);
	return 2;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc == 2 && !strcmp(argv[1], "benign"))
		return benign();
	if (argc == 3 && !strcmp(argv[1], "attack") && !strcmp(argv[2], "all")) {
		/* Every attack, each in a child of its own, as a benign fork is. */
		static const char *all[] = {"clone-newuser", "clone3-newuser", "unshare-newuser", "af-alg", "af-vsock",
			"af-inet6", "af-packet", "af-netlink", "unix-dgram", "per-linux32", "tiocsti", "tiocsti-high", "mprotect-wx"};
		for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
			pid_t pid = fork();
			if (pid == 0)
				_exit(attack(all[i]));
			if (pid < 0 || waitpid(pid, NULL, 0) < 0)
				return perror("fork"), 1;
		}
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "attack"))
		return attack(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "ioctls")) {
		/* N distinct requests, for the recorder's cap. */
		int fd = open("/dev/null", O_RDONLY);
		for (int i = 0, n = atoi(argv[2]); i < n; i++)
			ioctl(fd, 0x10000 + i, 0);
		printf("ok\n");
		return 0;
	}
	fprintf(stderr, "usage: args benign | args attack NAME | args ioctls N\n");
	return 2;
}
