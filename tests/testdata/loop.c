//go:build ignore

// loop makes syscall NR (argv[2], default getppid) with ARG0 (argv[3], hex) N times
// (argv[1], default 2000000) and prints the nanoseconds one call took on average:
// the per-syscall cost of whatever seccomp filter it runs under.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	long nr = argc > 2 ? atol(argv[2]) : SYS_getppid;
	unsigned long a0 = argc > 3 ? strtoul(argv[3], NULL, 16) : 0;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		syscall(nr, a0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
	printf("%.1f\n", ns / n);
	return 0;
}
