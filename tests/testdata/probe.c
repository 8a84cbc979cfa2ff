//go:build ignore

// probe makes raw syscalls and prints, for each, "LABEL RC ERRNO" on its own line.
// Each argument is LABEL=NR[,ARG0[,ARG1...]] in hex (without 0x); a label starting
// with "fork" marks a call that may create a child (clone), which exits at once.
// Static, so that it runs in a bare container root and under -m32 as an i386 probe.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	for (int i = 1; i < argc; i++) {
		char *spec = argv[i];
		char *eq = strchr(spec, '=');
		if (!eq) {
			fprintf(stderr, "probe: %s: want LABEL=NR[,ARG...]\n", spec);
			return 2;
		}
		*eq = 0;
		unsigned long v[7] = {0};
		char *p = eq + 1;
		for (int k = 0; k < 7 && *p; k++) {
			v[k] = strtoull(p, &p, 16);
			if (*p == ',')
				p++;
		}
		errno = 0;
		long rc = syscall(v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
		int err = rc < 0 ? errno : 0;
		if (rc == 0 && strncmp(spec, "fork", 4) == 0)
			_exit(0); /* the child of a clone */
		if (rc > 0 && strncmp(spec, "fork", 4) == 0)
			waitpid(rc, NULL, __WALL);
		printf("%s %ld %d\n", spec, rc < 0 ? -1L : rc, err);
	}
	fflush(stdout);
	return 0;
}
