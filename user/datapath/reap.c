/* Running the UDP socket iterator (bpf/lib/reap.h) in every network
 * namespace: a socket iterator walks the namespace its reader was in when it
 * was created, and pods' sockets live in the pods' namespaces. Entering one
 * takes CAP_SYS_ADMIN (setns). They are found three ways, each namespace
 * walked once a pass:
 *  - ferryd's own, the node's under hostNetwork;
 *  - the files that pin them in the folders named by --netns-dirs: container
 *    runtimes bind-mount each pod's namespace there (containerd and CRI-O
 *    under /var/run/netns, Docker under /var/run/docker/netns), so a
 *    read-only mount of that folder is enough, without the host's PIDs;
 *  - /proc/PID/ns/net of the processes ferryd sees: all of them when it
 *    runs in the host's PID namespace, its own in a pod.
 * What cannot be read or entered is counted, not fatal. */
#define _GNU_SOURCE /* setns */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "datapath/reap.h"

struct reap_seen {
	dev_t *dev;
	ino_t *ino;
	size_t n, cap;
};

/* True when the namespace (dev, ino) was already visited; else records it. */
static bool reap_visited(struct reap_seen *seen, const struct stat *st)
{
	void *p;

	for (size_t i = 0; i < seen->n; i++)
		if (seen->dev[i] == st->st_dev && seen->ino[i] == st->st_ino)
			return true;
	if (seen->n == seen->cap) {
		size_t cap = seen->cap ? seen->cap * 2 : 64;

		p = realloc(seen->dev, cap * sizeof(*seen->dev));
		if (!p)
			return true;
		seen->dev = p;
		p = realloc(seen->ino, cap * sizeof(*seen->ino));
		if (!p)
			return true;
		seen->ino = p;
		seen->cap = cap;
	}
	seen->dev[seen->n] = st->st_dev;
	seen->ino[seen->n++] = st->st_ino;
	return false;
}

/* Create the iterator inside the namespace of ns_fd, then read it through:
 * the program does its work while the reader advances. ns_fd -1 is ferryd's
 * own namespace: no setns, which would take CAP_SYS_ADMIN even there. */
static int reap_in(int link_fd, int ns_fd, int home_fd)
{
	char buf[64];
	int iter_fd, err = 0;
	ssize_t n;

	if (ns_fd >= 0 && setns(ns_fd, CLONE_NEWNET) < 0)
		return -errno;
	iter_fd = bpf_iter_create(link_fd);
	if (iter_fd < 0)
		err = -errno;
	if (ns_fd >= 0 && setns(home_fd, CLONE_NEWNET) < 0) {
		log_error("datapath", "cannot return to ferryd's network namespace: %s",
			  strerror(errno));
		abort(); /* every later socket ferryd opens would be in a pod */
	}
	if (iter_fd < 0)
		return err;
	while ((n = read(iter_fd, buf, sizeof(buf))) > 0)
		;
	if (n < 0)
		err = -errno;
	close(iter_fd);
	return err;
}

struct reap_walk {
	struct reap_result *res;
	struct reap_seen seen;
	int link_fd, home_fd;
	struct stat home;         /* ferryd's own namespace */
};

/* Walks the namespace of ns_fd, unless this pass did already. */
static void reap_ns(struct reap_walk *w, int ns_fd)
{
	struct stat st;
	bool home;
	int err;

	if (fstat(ns_fd, &st) < 0 || reap_visited(&w->seen, &st))
		return;
	home = st.st_dev == w->home.st_dev && st.st_ino == w->home.st_ino;
	err = reap_in(w->link_fd, home ? -1 : ns_fd, w->home_fd);
	if (err) {
		w->res->failed++;
		w->res->last_error = err;
	} else {
		w->res->namespaces++;
	}
}

static void reap_pid(struct reap_walk *w, const char *pid)
{
	char path[sizeof("/proc//ns/net") + NAME_MAX];
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/ns/net", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return; /* the process ended, or is not ours to see */
	reap_ns(w, fd);
	close(fd);
}

/* A file that pins a namespace is a mount of it. What is left once the
 * runtime unmounted it (a pod being removed; or every pod started after
 * ferryd when the folder is mounted without propagation from the host) is
 * an empty ordinary file: skipped, as is anything else that is no network
 * namespace. O_NONBLOCK: a FIFO there must not hold the pass. */
static void reap_pinned(struct reap_walk *w, int dir_fd, const char *name)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0 && ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET)
		reap_ns(w, fd);
	else
		w->res->not_netns++;
	if (fd >= 0)
		close(fd);
}

static void reap_dir_failed(struct reap_walk *w, const char *path, size_t len, int err)
{
	w->res->dirs_failed++;
	w->res->dir_error = err;
	snprintf(w->res->dir, sizeof(w->res->dir), "%.*s", (int)len, path);
}

/* One folder of --netns-dirs, len bytes at path (not terminated). */
static void reap_dir(struct reap_walk *w, const char *path, size_t len)
{
	char name[PATH_MAX];
	struct dirent *de;
	DIR *dir;

	if (len >= sizeof(name)) {
		reap_dir_failed(w, path, len, -ENAMETOOLONG);
		return;
	}
	memcpy(name, path, len);
	name[len] = '\0';
	dir = opendir(name);
	if (!dir) {
		reap_dir_failed(w, path, len, -errno);
		return;
	}
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			reap_pinned(w, dirfd(dir), de->d_name);
	closedir(dir);
}

static void reap_dirs(struct reap_walk *w, const char *list)
{
	while (list && *list) {
		size_t n = strcspn(list, ",");

		if (n)
			reap_dir(w, list, n);
		list += n + (list[n] == ',');
	}
}

int dp_reap_udp(const struct datapath *dp, const char *netns_dirs, struct reap_result *res)
{
	struct reap_walk w = { .res = res, .link_fd = bpf_link__fd(dp->reap_link) };
	struct dirent *de;
	DIR *proc;

	memset(res, 0, sizeof(*res));
	w.home_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	proc = opendir("/proc");
	if (w.home_fd < 0 || !proc || fstat(w.home_fd, &w.home) < 0) {
		int err = -errno;

		if (w.home_fd >= 0)
			close(w.home_fd);
		if (proc)
			closedir(proc);
		return err;
	}
	/* ferryd's own namespace first: it is the host's on a node. */
	reap_ns(&w, w.home_fd);
	reap_dirs(&w, netns_dirs);
	while ((de = readdir(proc)))
		if (isdigit((unsigned char)de->d_name[0]))
			reap_pid(&w, de->d_name);
	closedir(proc);
	close(w.home_fd);
	free(w.seen.dev);
	free(w.seen.ino);
	return 0;
}
