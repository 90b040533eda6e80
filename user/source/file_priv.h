/* Internals of the file source, shared by its files. */
#ifndef FERRY_FILE_PRIV_H
#define FERRY_FILE_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <time.h>

#include "source/file_source.h"

struct cJSON;

/* What stat says of a file: while it does not change, neither does the file. */
struct file_stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim, ctim;
};

/* One file: the objects of its last good content (the cJSON documents are
 * freed as soon as they are decoded). */
struct file_cache {
	char *path;
	struct model_objects objs;
	bool good;               /* objs hold a content that parsed */
	bool stamp_valid;        /* stamp is that content's: same stamp, same content */
	struct file_stamp stamp;
};

struct file_source {
	char *path;
	bool is_dir;
	char *base;              /* file mode: the file's name in its folder */
	int fd;                  /* inotify */
	struct file_source_stats stats;
	size_t n_cache;
	struct file_cache *cache;
	/* file_source_objects: cache[i].objs copied (not owned), rebuilt by
	 * every load; room for n_cache of them. */
	struct model_objects *sets;
};

/* file_source.c: a name a folder source reads (*.yaml, *.yml, *.json, not
 * hidden). */
bool file_name_relevant(const char *name);
bool file_name_has_suffix(const char *name, const char *suffix);

/* file_load.c: frees every cache entry and the sets. */
void file_load_clear(struct file_source *src);

/* file_docs.c: the documents of one file as a cJSON array. A *.json file is
 * JSON; any other is JSON when it starts with { or [ and parses as such, else
 * YAML (a flow-style YAML document starts with { too). NULL with errno set
 * when it cannot be read, or with errno 0 and why set when it does not parse. */
struct cJSON *file_docs_read(const char *path, char *why, size_t why_len);

/* file_objects.c: decode every document (Lists flattened into their items)
 * into out, its arrays trimmed to size; invalid objects are logged and
 * counted in *skipped. */
void file_objects_decode(const char *path, const struct cJSON *docs, struct model_objects *out,
			 uint64_t *skipped);

#endif
