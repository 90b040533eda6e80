/* Internals of the file source, shared by its files. */
#ifndef FERRY_FILE_PRIV_H
#define FERRY_FILE_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include "source/file_source.h"

struct cJSON;

/* The last good documents of one file. */
struct file_cache {
	char *path;
	struct cJSON *docs;
};

struct file_source {
	char *path;
	bool is_dir;
	char *base;              /* file mode: the file's name in its folder */
	int fd;                  /* inotify */
	struct file_source_stats stats;
	size_t n_cache;
	struct file_cache *cache;
};

/* file_source.c: a name a folder source reads (*.yaml, *.yml, *.json, not
 * hidden). */
bool file_name_relevant(const char *name);
bool file_name_has_suffix(const char *name, const char *suffix);

/* file_load.c: frees every cache entry. */
void file_load_clear(struct file_source *src);

/* file_docs.c: the documents of one file as a cJSON array. A *.json file is
 * JSON; any other is JSON when it starts with { or [ and parses as such, else
 * YAML (a flow-style YAML document starts with { too). NULL with errno set
 * when it cannot be read, or with errno 0 and why set when it does not parse. */
struct cJSON *file_docs_read(const char *path, char *why, size_t why_len);

/* file_objects.c: decode every document (Lists flattened into their items)
 * into out; invalid objects are logged and counted in *skipped. */
void file_objects_decode(const char *path, const struct cJSON *docs, struct model_objects *out,
			 uint64_t *skipped);

#endif
