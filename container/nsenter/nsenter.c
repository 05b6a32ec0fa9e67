// nsenter: the part of container start-up that must happen before the Go
// runtime starts threads.
//
// setns(2) into a user or mount namespace refuses a multi-threaded caller,
// and a Go program is multi-threaded from its first instruction. This
// constructor therefore runs inside the freshly exec'd runtime binary, before
// Go's runtime, whenever the environment names a sync socket
// (_BERTH_SYNC=<fd>). It:
//
//   1. reads a bootstrap message from the parent: a 4-byte little-endian
//      length and that many bytes of "key value" lines:
//        join <type> <path>   join an existing namespace (user is joined first)
//        clone <flags>        unshare these CLONE_NEW* flags (decimal)
//        timens <line>        a line for /proc/self/timens_offsets
//        cgtasks <path>       a cgroup v1 `tasks` file to join (write "0")
//        cgclone <dir>        a cgroup2 directory to clone the process into
//   2. joins its cgroups itself: "0" into each v1 `tasks` file moves this
//      (single-threaded) process alone, which skips the kernel's global
//      cgroup lock and the RCU grace period writing a pid to cgroup.procs
//      waits for (5-25 ms here); the cgroup2 directory is entered at the
//      clone below with clone3(CLONE_INTO_CGROUP), also lock-free, and the
//      cgroup namespace is then created or joined by the new process, so
//      that its root is the container's cgroup. Without a clone, or when
//      clone3 fails, "0" is written to the directory's cgroup.procs;
//   3. joins the named namespaces, user first and mount last;
//   4. unshares CLONE_NEWUSER alone, then asks the parent to write the id
//      maps ({"type":"usermap"}) and waits for one byte of acknowledgement;
//   5. unshares the remaining namespaces and writes time namespace offsets;
//   6. if a PID or time namespace was joined or created (they only apply to
//      children), clones once with CLONE_PARENT, so that the new process is
//      a child of the runtime itself, and the intermediate exits;
//   7. reports {"type":"pid","pid":N} and returns into Go in the final
//      process. Any failure is reported as {"type":"error","message":...}
//      and the process exits 1.
//
// Everything else (the root filesystem, credentials, the execve) is Go.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

// The kernel's struct clone_args (clone3(2)), up to the cgroup field.
struct berth_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

#define MAX_BOOTSTRAP (64 * 1024)
#define MAX_JOIN 16
#define MAX_CGTASKS 32

static int sync_fd = -1;

static void write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(sync_fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

// bail reports an error to the parent as a JSON line and exits.
static void bail(const char *fmt, ...)
{
	char msg[512], out[1200];
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	size_t o = 0;
	o += (size_t)snprintf(out, sizeof(out), "{\"type\":\"error\",\"message\":\"");
	for (const char *p = msg; *p && o < sizeof(out) - 64; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	if (saved)
		o += (size_t)snprintf(out + o, sizeof(out) - o, ": %s", strerror(saved));
	o += (size_t)snprintf(out + o, sizeof(out) - o, "\"}\n");
	write_all(out, o);
	_exit(1);
}

static void read_full(void *buf, size_t len)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = read(sync_fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			bail("nsenter: reading from the runtime");
		p += n;
		len -= (size_t)n;
	}
}

struct nsjoin {
	int type;
	int fd;
	char *path;
};

static int ns_type(const char *name)
{
	static const struct { const char *name; int flag; } t[] = {
		{"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
		{"network", CLONE_NEWNET}, {"net", CLONE_NEWNET}, {"pid", CLONE_NEWPID},
		{"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME}, {"mount", CLONE_NEWNS},
		{"mnt", CLONE_NEWNS},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].name, name) == 0)
			return t[i].flag;
	return 0;
}

// join_order lists namespace kinds in the order they are joined, the mount
// namespace last, so that every path was opened in the runtime's. The
// user namespace is joined after the others, and what it owns again
// after it (join_all).
static const int join_order[] = {
	CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWPID,
	CLONE_NEWCGROUP, CLONE_NEWTIME, CLONE_NEWNS,
};

static void write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		bail("nsenter: open %s", path);
	if (write(fd, data, len) != (ssize_t)len)
		bail("nsenter: write %s", path);
	close(fd);
}

// join_cgroup2 moves this process into a cgroup2 directory through its
// cgroup.procs (which takes the kernel's global cgroup lock).
static void join_cgroup2(const char *dir)
{
	char path[4096];
	if (snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= (int)sizeof(path))
		bail("nsenter: cgroup path too long");
	write_file(path, "0", 1);
}

__attribute__((constructor)) static void berth_nsenter(void)
{
	const char *env = getenv("_BERTH_SYNC");
	if (env == NULL || *env == '\0')
		return;
	sync_fd = atoi(env);
	if (fcntl(sync_fd, F_GETFD) < 0)
		_exit(1);

	uint32_t len;
	read_full(&len, sizeof(len));
	if (len > MAX_BOOTSTRAP)
		bail("nsenter: bootstrap message of %u bytes is too long", len);
	char *boot = calloc(1, (size_t)len + 1);
	char *timens = calloc(1, (size_t)len + 1);
	if (boot == NULL || timens == NULL)
		bail("nsenter: out of memory");
	read_full(boot, len);

	struct nsjoin joins[MAX_JOIN];
	int njoin = 0, clone_flags = 0, joined = 0;
	char *cgtasks[MAX_CGTASKS];
	int ncgtasks = 0;
	char *cgclone = NULL;
	size_t timens_len = 0;
	char *save = NULL;
	for (char *line = strtok_r(boot, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "join ", 5) == 0) {
			char *type = line + 5, *path = strchr(type, ' ');
			if (path == NULL)
				bail("nsenter: malformed join line");
			*path++ = '\0';
			if (njoin == MAX_JOIN)
				bail("nsenter: too many namespaces to join");
			int t = ns_type(type);
			if (t == 0)
				bail("nsenter: unknown namespace type %s", type);
			// Open every path before joining any: once the mount namespace
			// changes, host paths no longer resolve.
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				bail("nsenter: open namespace path %s", path);
			joins[njoin++] = (struct nsjoin){.type = t, .fd = fd, .path = path};
			joined |= t;
		} else if (strncmp(line, "clone ", 6) == 0) {
			clone_flags = atoi(line + 6);
		} else if (strncmp(line, "cgtasks ", 8) == 0) {
			if (ncgtasks == MAX_CGTASKS)
				bail("nsenter: too many cgroups to join");
			cgtasks[ncgtasks++] = line + 8;
		} else if (strncmp(line, "cgclone ", 8) == 0) {
			cgclone = line + 8;
		} else if (strncmp(line, "timens ", 7) == 0) {
			size_t l = strlen(line + 7);
			memcpy(timens + timens_len, line + 7, l);
			timens_len += l;
			timens[timens_len++] = '\n';
		} else {
			bail("nsenter: unknown bootstrap line %.40s", line);
		}
	}

	for (int i = 0; i < ncgtasks; i++)
		write_file(cgtasks[i], "0", 1);
	int will_clone = ((clone_flags | joined) & (CLONE_NEWPID | CLONE_NEWTIME)) != 0;
	int cgfd = -1, cgns_fd = -1, new_cgns = 0;
	if (cgclone != NULL) {
		if (will_clone) {
			cgfd = open(cgclone, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (cgfd < 0)
				bail("nsenter: open cgroup %s", cgclone);
			// The cgroup namespace is the new process's business: its
			// root must be the cgroup it is cloned into.
			new_cgns = clone_flags & CLONE_NEWCGROUP;
			clone_flags &= ~CLONE_NEWCGROUP;
			for (int i = 0; i < njoin; i++) {
				if (joins[i].type == CLONE_NEWCGROUP) {
					cgns_fd = joins[i].fd;
					joins[i].type = 0; // not joined here
				}
			}
		} else {
			join_cgroup2(cgclone);
		}
	}

	// Joined from the runtime's user namespace first: a namespace that
	// namespace owns (a network namespace berthd made) can only be joined
	// from there. One the joined user namespace owns and the runtime
	// cannot join (it lacks the capability, as an unprivileged runtime
	// does) is joined once inside it.
	int pending = 0;
	for (size_t o = 0; o < sizeof(join_order) / sizeof(join_order[0]); o++) {
		for (int i = 0; i < njoin; i++) {
			if (joins[i].type != join_order[o])
				continue;
			if (setns(joins[i].fd, joins[i].type) < 0) {
				if (errno != EPERM)
					bail("nsenter: join namespace %s", joins[i].path);
				pending++;
				continue;
			}
			close(joins[i].fd);
			joins[i].type = 0;
		}
	}
	for (int i = 0; i < njoin; i++) {
		if (joins[i].type != CLONE_NEWUSER)
			continue;
		if (setns(joins[i].fd, CLONE_NEWUSER) < 0)
			bail("nsenter: join namespace %s", joins[i].path);
		close(joins[i].fd);
		joins[i].type = 0;
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			bail("nsenter: become root in joined user namespace");
	}
	for (size_t o = 0; pending > 0 && o < sizeof(join_order) / sizeof(join_order[0]); o++) {
		for (int i = 0; i < njoin; i++) {
			if (joins[i].type != join_order[o])
				continue;
			if (setns(joins[i].fd, joins[i].type) < 0)
				bail("nsenter: join namespace %s", joins[i].path);
			close(joins[i].fd);
			joins[i].type = 0;
		}
	}

	if (clone_flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			bail("nsenter: create user namespace");
		static const char req[] = "{\"type\":\"usermap\"}\n";
		write_all(req, sizeof(req) - 1);
		char ack;
		read_full(&ack, 1);
		if (ack != 'k')
			bail("nsenter: the runtime could not write the id maps");
		// Root of the new namespace may be unmapped; the Go init reports
		// that when it sets the process user.
		if (setresgid(0, 0, 0) == 0)
			setresuid(0, 0, 0);
	}
	int rest = clone_flags & ~CLONE_NEWUSER;
	if (rest && unshare(rest) < 0)
		bail("nsenter: create namespaces (flags 0x%x)", rest);
	if ((clone_flags & CLONE_NEWTIME) && timens_len > 0)
		write_file("/proc/self/timens_offsets", timens, timens_len);

	if (will_clone) {
		// A clone without a new stack behaves as fork(); CLONE_PARENT
		// makes the runtime, not this short-lived process, the parent.
		long pid = -1;
		if (cgfd >= 0) {
			// With CLONE_PARENT, clone3 wants exit_signal 0: the new
			// process inherits this one's (SIGCHLD, to the runtime).
			struct berth_clone_args args = {
				.flags = CLONE_PARENT | CLONE_INTO_CGROUP,
				.cgroup = (uint64_t)cgfd,
			};
			pid = syscall(SYS_clone3, &args, sizeof(args));
			if (pid < 0)
				join_cgroup2(cgclone); // an older kernel: the slow way
		}
		if (pid < 0)
			pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
		if (pid < 0)
			bail("nsenter: clone the container process");
		if (pid == 0) {
			if (cgns_fd >= 0) {
				if (setns(cgns_fd, CLONE_NEWCGROUP) < 0)
					bail("nsenter: join cgroup namespace");
				close(cgns_fd);
			}
			if (new_cgns && unshare(CLONE_NEWCGROUP) < 0)
				bail("nsenter: create cgroup namespace");
			if (cgfd >= 0)
				close(cgfd);
		}
		if (pid > 0) {
			char msg[64];
			int n = snprintf(msg, sizeof(msg), "{\"type\":\"pid\",\"pid\":%ld}\n", pid);
			write_all(msg, (size_t)n);
			_exit(0);
		}
	} else {
		char msg[64];
		int n = snprintf(msg, sizeof(msg), "{\"type\":\"pid\",\"pid\":%d}\n", getpid());
		write_all(msg, (size_t)n);
	}
	free(boot);
	free(timens);
	// Continue into the Go runtime, which finds _BERTH_SYNC and runs init.
}
