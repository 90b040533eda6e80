/* Running the UDP socket iterator (bpf/lib/reap.h) in every network
 * namespace: a socket iterator walks the namespace its reader was in when it
 * was created, and pods' sockets live in the pods' namespaces. The
 * namespaces are found through /proc/PID/ns/net; entering one takes
 * CAP_SYS_ADMIN, and seeing the pods' processes takes the host's PID
 * namespace. What cannot be entered is counted, not fatal. */
#define _GNU_SOURCE /* setns */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
 * the program does its work while the reader advances. */
static int reap_in(int link_fd, int ns_fd, int home_fd)
{
	char buf[64];
	int iter_fd, err = 0;
	ssize_t n;

	if (setns(ns_fd, CLONE_NEWNET) < 0)
		return -errno;
	iter_fd = bpf_iter_create(link_fd);
	if (iter_fd < 0)
		err = -errno;
	if (setns(home_fd, CLONE_NEWNET) < 0) {
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

static void reap_pid(struct reap_result *res, struct reap_seen *seen, int link_fd, int home_fd,
		     const char *pid)
{
	char path[64];
	struct stat st;
	int fd, err;

	snprintf(path, sizeof(path), "/proc/%s/ns/net", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return; /* the process ended, or is not ours to see */
	if (fstat(fd, &st) == 0 && !reap_visited(seen, &st)) {
		err = reap_in(link_fd, fd, home_fd);
		if (err) {
			res->failed++;
			res->last_error = err;
		} else {
			res->namespaces++;
		}
	}
	close(fd);
}

int dp_reap_udp(const struct datapath *dp, struct reap_result *res)
{
	struct reap_seen seen = { 0 };
	int home_fd, link_fd = bpf_link__fd(dp->reap_link);
	struct dirent *de;
	DIR *proc;

	memset(res, 0, sizeof(*res));
	home_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	proc = opendir("/proc");
	if (home_fd < 0 || !proc) {
		if (home_fd >= 0)
			close(home_fd);
		if (proc)
			closedir(proc);
		return -errno;
	}
	/* ferryd's own namespace first: it is the host's on a node. */
	reap_pid(res, &seen, link_fd, home_fd, "self");
	while ((de = readdir(proc)))
		if (isdigit((unsigned char)de->d_name[0]))
			reap_pid(res, &seen, link_fd, home_fd, de->d_name);
	closedir(proc);
	close(home_fd);
	free(seen.dev);
	free(seen.ino);
	return 0;
}
