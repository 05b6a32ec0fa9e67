// rsswrap: run a command and write its peak RSS in KiB (ru_maxrss, which
// covers the command and every child it reaped) to descriptor 3.
//
// Why not measure from the Go harness directly: Go starts children with
// vfork, and the kernel carries the parent's memory high-water mark into
// the child's ru_maxrss at exec. A fork from this small process carries
// only its own few hundred KiB.
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	fcntl(3, F_SETFD, FD_CLOEXEC);
	pid_t pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		execvp(argv[1], argv + 1);
		_exit(127);
	}
	int status;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) < 0)
		return 2;
	dprintf(3, "%ld\n", ru.ru_maxrss);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
