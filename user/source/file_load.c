/* file_source_load: every file read, parsed and decoded, with each file's
 * last good documents kept for when an edit does not parse. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "source/file_priv.h"

static void load_entry_free(struct file_cache *c)
{
	free(c->path);
	cJSON_Delete(c->docs);
	c->path = NULL;
	c->docs = NULL;
}

void file_load_clear(struct file_source *src)
{
	for (size_t i = 0; i < src->n_cache; i++)
		load_entry_free(&src->cache[i]);
	free(src->cache);
	src->cache = NULL;
	src->n_cache = 0;
}

/* Reads c->path and replaces c->docs when it parses; when it does not, the
 * old documents stay, so a bad edit deletes nothing. Returns -1 when the
 * file cannot be read, with errno set. */
static int load_file(struct file_source *src, struct file_cache *c)
{
	char why[512];
	cJSON *docs = file_docs_read(c->path, why, sizeof(why));

	if (docs) {
		cJSON_Delete(c->docs);
		c->docs = docs;
		return 0;
	}
	if (errno)
		return -1;
	src->stats.parse_errors++;
	log_error("source", "%s: %s; %s", c->path, why,
		  c->docs ? "keeping its last good content" : "it has no good content yet");
	return 0;
}

static int load_filter(const struct dirent *d)
{
	return file_name_relevant(d->d_name);
}

static int load_compare(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Moves the entry of path (owned, freed if not used) from the old cache into
 * c, or makes a new one. */
static void load_take(struct file_cache *old, size_t n_old, char *path, struct file_cache *c)
{
	c->path = path;
	c->docs = NULL;
	for (size_t i = 0; i < n_old; i++) {
		if (old[i].path && strcmp(old[i].path, path) == 0) {
			free(path);
			*c = old[i];
			old[i].path = NULL;
			old[i].docs = NULL;
			return;
		}
	}
}

/* One file of the folder into the next free cache entry, unless it is not a
 * regular file or is gone. */
static void load_dir_file(struct file_source *src, const char *name, struct file_cache *old,
			  size_t n_old)
{
	struct file_cache *c = &src->cache[src->n_cache];
	char *path = malloc(strlen(src->path) + strlen(name) + 2);
	struct stat st;

	if (!path) {
		log_error("source", "out of memory");
		return;
	}
	sprintf(path, "%s/%s", src->path, name);
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
		free(path);
		return;
	}
	load_take(old, n_old, path, c);
	if (load_file(src, c) < 0) {
		if (errno == ENOENT) {
			load_entry_free(c);
			return;
		}
		src->stats.parse_errors++;
		log_error("source", "%s: %s; %s", c->path, strerror(errno),
			  c->docs ? "keeping its last good content" : "it has no good content yet");
	}
	src->n_cache++;
}

/* Rebuilds the cache from the folder's relevant files, sorted by name. */
static int load_dir(struct file_source *src)
{
	struct file_cache *old = src->cache;
	size_t n_old = src->n_cache;
	struct dirent **names;
	int n = scandir(src->path, &names, load_filter, load_compare);

	if (n < 0) {
		log_error("source", "%s: %s", src->path, strerror(errno));
		return -1;
	}
	src->cache = calloc((size_t)n + 1, sizeof(*src->cache));
	src->n_cache = 0;
	for (int i = 0; i < n; i++) {
		if (src->cache)
			load_dir_file(src, names[i]->d_name, old, n_old);
		free(names[i]);
	}
	free(names);
	for (size_t i = 0; i < n_old; i++)
		load_entry_free(&old[i]);
	free(old);
	if (!src->cache) {
		log_error("source", "out of memory");
		return -1;
	}
	return 0;
}

static int load_single(struct file_source *src)
{
	if (!src->cache) {
		src->cache = calloc(1, sizeof(*src->cache));
		if (!src->cache || !(src->cache[0].path = strdup(src->path))) {
			log_error("source", "out of memory");
			file_load_clear(src);
			return -1;
		}
		src->n_cache = 1;
	}
	if (load_file(src, &src->cache[0]) < 0) {
		log_error("source", "%s: %s", src->path, strerror(errno));
		return -1;
	}
	return 0;
}

int file_source_load(struct file_source *src, struct model_objects *out)
{
	if ((src->is_dir ? load_dir(src) : load_single(src)) < 0)
		return -1;
	for (size_t i = 0; i < src->n_cache; i++)
		if (src->cache[i].docs)
			file_objects_decode(src->cache[i].path, src->cache[i].docs, out,
					    &src->stats.objects_skipped);
	return 0;
}
