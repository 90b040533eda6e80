/* The file source's life cycle and its inotify watch. */
#include <errno.h>
#include <libgen.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "source/file_priv.h"

#define FILE_WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE)
/* The symlink a kubelet swaps when a mounted ConfigMap changes. */
#define FILE_CONFIGMAP_DATA "..data"

bool file_name_has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);

	return n > s && strcmp(name + n - s, suffix) == 0;
}

bool file_name_relevant(const char *name)
{
	return name[0] != '.' &&
	       (file_name_has_suffix(name, ".yaml") || file_name_has_suffix(name, ".yml") ||
		file_name_has_suffix(name, ".json"));
}

/* Watches the folder itself, or a file's parent folder (editors replace files
 * by rename, which a watch on the file would miss). */
static int file_source_watch(struct file_source *src)
{
	char *copy = strdup(src->path);
	const char *dir = src->is_dir ? src->path : copy ? dirname(copy) : NULL;
	int rc = -1;

	src->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (dir && src->fd >= 0 && inotify_add_watch(src->fd, dir, FILE_WATCH_MASK) >= 0)
		rc = 0;
	else
		log_error("source", "cannot watch %s: %s", dir ? dir : src->path, strerror(errno));
	free(copy);
	return rc;
}

static int file_source_init(struct file_source *src, const char *path)
{
	struct stat st;
	char *copy;

	if (stat(path, &st) < 0) {
		log_error("source", "%s: %s", path, strerror(errno));
		return -1;
	}
	src->is_dir = S_ISDIR(st.st_mode);
	src->path = strdup(path);
	copy = strdup(path);
	if (copy)
		src->base = strdup(basename(copy));
	free(copy);
	if (!src->path || !src->base) {
		log_error("source", "out of memory");
		return -1;
	}
	return file_source_watch(src);
}

struct file_source *file_source_open(const char *path)
{
	struct file_source *src = calloc(1, sizeof(*src));

	if (!src) {
		log_error("source", "out of memory");
		return NULL;
	}
	src->fd = -1;
	src->store = store_new(SIZE_MAX);
	if (!src->store || hmap_init(&src->dups, 16) < 0) {
		log_error("source", "out of memory");
		file_source_close(src);
		return NULL;
	}
	if (file_source_init(src, path) < 0) {
		file_source_close(src);
		return NULL;
	}
	log_info("source", "watching %s %s", src->is_dir ? "folder" : "file", path);
	return src;
}

void file_source_close(struct file_source *src)
{
	if (!src)
		return;
	file_store_free(src); /* its objects are the loads' */
	file_load_clear(src);
	if (src->fd >= 0)
		close(src->fd);
	free(src->path);
	free(src->base);
	free(src);
}

int file_source_fd(const struct file_source *src)
{
	return src->fd;
}

struct model_store *file_source_store(struct file_source *src)
{
	return src->store;
}

const struct file_source_stats *file_source_stats(const struct file_source *src)
{
	return &src->stats;
}

static bool file_event_relevant(const struct file_source *src, const struct inotify_event *ev)
{
	if (ev->mask & (IN_Q_OVERFLOW | IN_IGNORED))
		return true;
	if (!ev->len)
		return false;
	if (strcmp(ev->name, FILE_CONFIGMAP_DATA) == 0)
		return true;
	return src->is_dir ? file_name_relevant(ev->name) : strcmp(ev->name, src->base) == 0;
}

int file_source_drain(struct file_source *src)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	int relevant = 0;
	ssize_t n;

	for (;;) {
		n = read(src->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return relevant;
		if (n <= 0) {
			log_error("source", "reading inotify events: %s", strerror(errno));
			return -1;
		}
		for (char *p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			relevant |= file_event_relevant(src, ev);
		}
	}
}
