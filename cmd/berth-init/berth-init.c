/*
 * berth-init: the PID 1 of `run --init`. It runs the command as its only
 * child, forwards every signal it can catch to it, reaps whatever else is
 * reparented to it, and exits with the command's status (128+signal when
 * the command was killed). When it exits, the kernel ends the rest of the
 * container (PID 1 of a PID namespace).
 *
 * Usage: berth-init [--] COMMAND [ARG...]
 *        berth-init --pause
 *
 * --pause holds a pod's namespaces (berthd's CRI sandboxes): it runs
 * nothing, reaps what is reparented to it and exits 0 on SIGTERM or
 * SIGINT.
 *
 * Built statically (scripts/build.sh) and bind-mounted read-only into the
 * container at /sbin/berth-init by berthd.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int first = 1;
	if (argc == 2 && strcmp(argv[1], "--pause") == 0) {
		sigset_t all;
		sigfillset(&all);
		sigprocmask(SIG_BLOCK, &all, NULL);
		for (;;) {
			int sig = sigwaitinfo(&all, NULL);
			if (sig == SIGTERM || sig == SIGINT)
				return 0;
			if (sig == SIGCHLD)
				while (waitpid(-1, NULL, WNOHANG) > 0)
					;
		}
	}
	if (argc > 1 && strcmp(argv[1], "--") == 0)
		first = 2;
	if (first >= argc) {
		fprintf(stderr, "usage: berth-init [--] COMMAND [ARG...]\n");
		return 2;
	}

	/* Every signal is taken synchronously with sigwaitinfo, never by a
	 * handler; the child gets the mask it would have had. */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);

	pid_t child = fork();
	if (child < 0) {
		perror("berth-init: fork");
		return 1;
	}
	if (child == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(argv[first], argv + first);
		fprintf(stderr, "berth-init: exec %s: %s\n", argv[first], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}

	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&all, &info);
		if (sig < 0)
			continue; /* EINTR */
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid != child)
				continue; /* an orphan, reaped */
			if (WIFEXITED(status))
				return WEXITSTATUS(status);
			return 128 + WTERMSIG(status);
		}
	}
}
