/* file_source_load: every file read, parsed and decoded, and merged with
 * what it held before (file_merge.c). A file whose stat did not change since
 * its last read in full is not read again. */
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "model/decode_priv.h"
#include "source/file_priv.h"

/* A stamp only identifies a content once no write can still give the file
 * the same ctime: the kernel stamps writes with a clock that ticks every few
 * ms (truncated to 1 or 2 s on coarse filesystems, whose times have no
 * nanoseconds). A file changed more recently is read again. */
#define LOAD_SETTLED_NS 100000000LL
#define LOAD_SETTLED_COARSE_NS 2100000000LL

static void load_entry_free(struct file_cache *c)
{
	free(c->path);
	free(c->recs);
	model_objects_free(&c->objs);
	memset(c, 0, sizeof(*c));
}

void file_load_clear(struct file_source *src)
{
	for (size_t i = 0; i < src->n_cache; i++)
		load_entry_free(&src->cache[i]);
	free(src->cache);
	free(src->sets);
	src->cache = NULL;
	src->sets = NULL;
	src->n_cache = 0;
}

static struct file_stamp load_stamp(const struct stat *st)
{
	return (struct file_stamp){ .dev = st->st_dev, .ino = st->st_ino, .size = st->st_size,
				    .mtim = st->st_mtim, .ctim = st->st_ctim };
}

static bool load_same_stamp(const struct file_stamp *a, const struct file_stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec &&
	       a->ctim.tv_sec == b->ctim.tv_sec && a->ctim.tv_nsec == b->ctim.tv_nsec;
}

/* Whether a write after `now` would show in the stamp (see LOAD_SETTLED_NS). */
static bool load_stamp_settled(const struct stat *st, const struct timespec *now)
{
	long long age = (long long)(now->tv_sec - st->st_ctim.tv_sec) * 1000000000LL +
			(now->tv_nsec - st->st_ctim.tv_nsec);

	return age > (st->st_ctim.tv_nsec ? LOAD_SETTLED_NS : LOAD_SETTLED_COARSE_NS);
}

/* The record of each old object, by kind and index (index + 1 into recs;
 * 0 = none). NULL when out of memory. */
static size_t *load_recs_by_index(const struct file_cache *c, size_t *n_svc)
{
	size_t *by = calloc(c->objs.n_services + c->objs.n_slices + 1, sizeof(*by));

	*n_svc = c->objs.n_services;
	for (size_t i = 0; by && i < c->n_recs; i++)
		by[(c->recs[i].slice ? *n_svc : 0) + c->recs[i].index] = i + 1;
	return by;
}

/* The hashed items of the read, for the next one to find; an object kept
 * from before keeps its record (none when out of memory: every item is
 * parsed again). */
static void load_recs(struct file_cache *c, const struct file_read *rd)
{
	size_t n = 0, n_svc, *by = load_recs_by_index(c, &n_svc), r;
	struct file_rec *recs;

	for (size_t i = 0; i < rd->n_items; i++)
		n += rd->items[i].len || rd->items[i].kept;
	recs = n && by ? malloc(n * sizeof(*recs)) : NULL;
	n = 0;
	for (size_t i = 0; recs && i < rd->n_items; i++) {
		const struct file_item *it = &rd->items[i];

		r = it->kept ? by[(it->kind == 'S' ? 0 : n_svc) + it->old_index] : 0;
		if (it->len)
			recs[n++] = (struct file_rec){ .hash = it->hash, .len = it->len,
						       .slice = it->kind == 'E', .index = it->index };
		else if (r)
			recs[n++] = (struct file_rec){ .hash = c->recs[r - 1].hash,
						       .len = c->recs[r - 1].len,
						       .slice = it->kind == 'E', .index = it->index };
	}
	free(by);
	free(c->recs);
	c->recs = recs;
	c->n_recs = n;
}

bool file_change_next_dropped(const struct file_change *ch, size_t *at)
{
	for (size_t w = *at / 64; w * 64 < ch->n_old; w++) {
		uint64_t left = ~ch->taken[w];

		if (w == *at / 64)
			left &= ~0ULL << (*at % 64);
		if (!left)
			continue;
		*at = w * 64 + (size_t)__builtin_ctzll(left);
		return *at < ch->n_old;
	}
	return false;
}

/* Which old objects the read takes over and which of its own are new. */
static int load_change(const struct model_objects *old, const struct file_read *rd,
		       struct file_change *ch)
{
	*ch = (struct file_change){ .n_old_svc = old->n_services,
				    .n_old = old->n_services + old->n_slices };
	size_t n_new = rd->objs.n_services + rd->objs.n_slices, bit;

	/* (an object kept without a note, memory running out, has no known
	 * place of before: then the counts differ) */
	ch->in_place = rd->objs.n_services == old->n_services &&
		       rd->objs.n_slices == old->n_slices && rd->n_items == n_new;
	ch->taken = calloc(ch->n_old / 64 + 1, sizeof(*ch->taken));
	ch->fresh = malloc((rd->n_items + 1) * sizeof(*ch->fresh));
	ch->fresh_bits = calloc(n_new / 64 + 1, sizeof(*ch->fresh_bits));
	if (!ch->taken || !ch->fresh || !ch->fresh_bits)
		return -1;
	for (size_t i = 0; i < rd->n_items; i++) {
		const struct file_item *it = &rd->items[i];

		if (it->carried || it->kept) {
			ch->in_place &= it->index == it->old_index;
			bit = (it->kind == 'S' ? 0 : ch->n_old_svc) + it->old_index;
			ch->taken[bit / 64] |= 1ULL << (bit % 64);
		} else {
			ch->fresh[ch->n_fresh++] = i;
			bit = (it->kind == 'S' ? 0 : rd->objs.n_services) + it->index;
			ch->fresh_bits[bit / 64] |= 1ULL << (bit % 64);
		}
	}
	return 0;
}

static void load_change_free(struct file_change *ch)
{
	free(ch->taken);
	free(ch->fresh);
	free(ch->fresh_bits);
}

static void load_free_dropped(struct model_objects *old, const struct file_change *ch)
{
	for (size_t at = 0; file_change_next_dropped(ch, &at); at++) {
		if (at < ch->n_old_svc)
			objects_free_service(&old->services[at]);
		else
			objects_free_slice(&old->slices[at - ch->n_old_svc]);
	}
}

/* Frees what is left of the old objects: their arrays and Nodes (the
 * objects the read dropped are freed apart, the others are its own now). */
static void load_free_old(struct model_objects *old)
{
	for (size_t i = 0; i < old->n_nodes; i++)
		objects_free_node(&old->nodes[i]);
	free(old->services);
	free(old->slices);
	free(old->nodes);
	memset(old, 0, sizeof(*old));
}

static uint64_t load_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

/* A read whose objects are at the places of before (one changed in place,
 * the common edit): the old objects it dropped are freed, its objects go
 * into the old arrays, which it takes, so that the store's references to
 * the objects carried over stay good (old keeps only its Nodes). */
static void load_move_in_place(struct model_objects *old, struct model_objects *objs,
			       const struct file_change *ch)
{
	struct model_service *services = old->services;
	struct model_slice *slices = old->slices;

	load_free_dropped(old, ch);
	if (objs->n_services)
		memcpy(services, objs->services, objs->n_services * sizeof(*services));
	if (objs->n_slices)
		memcpy(slices, objs->slices, objs->n_slices * sizeof(*slices));
	free(objs->services);
	free(objs->slices);
	objs->services = services;
	objs->slices = slices;
	objs->cap_services = old->cap_services;
	objs->cap_slices = old->cap_slices;
	old->services = NULL;
	old->slices = NULL;
	old->n_services = old->n_slices = old->cap_services = old->cap_slices = 0;
}

/* Replaces c->objs by the objects of a fresh read merged with them
 * (file_merge): a bad edit deletes nothing. The store gets what changed,
 * and follows the objects that moved (they are its only copy); the time
 * that takes is file_source_stats' store_ns. */
static void load_apply(struct file_source *src, struct file_cache *c, struct file_read *rd)
{
	struct file_change ch = { 0 };
	struct model_objects old;
	uint64_t t0;

	src->stats.parse_errors += rd->n_failed;
	src->stats.objects_skipped += rd->n_invalid;
	if (file_merge(rd, &c->objs) < 0 || load_change(&c->objs, rd, &ch) < 0) {
		log_error("source", "file %s: out of memory; keeping the objects it had", c->path);
		c->stamp_valid = false;
		load_change_free(&ch);
		return;
	}
	t0 = load_ns();
	file_store_drop(src, &c->objs, &ch);
	src->stats.store_ns += load_ns() - t0;
	load_recs(c, rd);
	if (ch.in_place)
		load_move_in_place(&c->objs, &rd->objs, &ch);
	old = c->objs;
	c->objs = rd->objs;
	memset(&rd->objs, 0, sizeof(rd->objs));
	file_objects_trim(&c->objs);
	t0 = load_ns();
	file_store_add(src, &c->objs, rd, &ch);
	src->stats.store_ns += load_ns() - t0;
	rd->n_items = rd->pending_items = 0; /* its carried objects stay */
	if (!ch.in_place)
		load_free_dropped(&old, &ch);
	load_free_old(&old);
	load_change_free(&ch);
}

/* Reads c->path (stat'ed as *st before `now`) unless its content is the one
 * last read in full, and applies it. A file with a document that does not
 * parse is read again at every load. *decoded is set when it was read.
 * Returns -1 when the file cannot be read, with errno set. */
static int load_file(struct file_source *src, struct file_cache *c, const struct stat *st,
		     const struct timespec *now, bool *decoded)
{
	struct file_stamp stamp = load_stamp(st);
	struct file_read rd = { .path = c->path, .old = &c->objs, .old_recs = c->recs,
				.n_old_recs = c->n_recs };

	if (c->stamp_valid && load_same_stamp(&c->stamp, &stamp))
		return 0;
	for (size_t i = 0; i < c->n_recs; i++)
		c->recs[i].used = false;
	if (file_docs_read_known(c->path, file_objects_doc, file_objects_carry, &rd) < 0) {
		int err = errno;

		file_read_free(&rd);
		errno = err;
		return -1;
	}
	*decoded = true;
	c->stamp = stamp;
	c->stamp_valid = !rd.n_failed && load_stamp_settled(st, now);
	load_apply(src, c, &rd);
	file_read_free(&rd);
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
	memset(c, 0, sizeof(*c));
	c->path = path;
	for (size_t i = 0; i < n_old; i++) {
		if (old[i].path && strcmp(old[i].path, path) == 0) {
			free(path);
			*c = old[i];
			memset(&old[i], 0, sizeof(old[i]));
			return;
		}
	}
}

/* One file of the folder into the next free cache entry, unless it is not a
 * regular file or is gone. */
static void load_dir_file(struct file_source *src, const char *name, struct file_cache *old,
			  size_t n_old, const struct timespec *now, bool *decoded)
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
	if (load_file(src, c, &st, now, decoded) < 0) {
		if (errno == ENOENT) {
			file_store_drop_all(src, &c->objs);
			load_entry_free(c);
			return;
		}
		src->stats.parse_errors++;
		log_error("source", "file %s: %s; keeping the objects it had", c->path,
			  strerror(errno));
	}
	src->n_cache++;
}

/* Rebuilds the cache from the folder's relevant files, sorted by name. On
 * error the cache stays as it was. */
static int load_dir(struct file_source *src, const struct timespec *now, bool *decoded)
{
	struct file_cache *old = src->cache;
	size_t n_old = src->n_cache;
	struct model_objects *sets;
	struct dirent **names;
	int n = scandir(src->path, &names, load_filter, load_compare);

	if (n < 0) {
		log_error("source", "%s: %s", src->path, strerror(errno));
		return -1;
	}
	src->cache = calloc((size_t)n + 1, sizeof(*src->cache));
	sets = calloc((size_t)n + 1, sizeof(*sets));
	if (!src->cache || !sets) {
		log_error("source", "out of memory");
		free(src->cache);
		free(sets);
		src->cache = old;
		for (int i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return -1;
	}
	free(src->sets);
	src->sets = sets;
	src->n_cache = 0;
	for (int i = 0; i < n; i++) {
		load_dir_file(src, names[i]->d_name, old, n_old, now, decoded);
		free(names[i]);
	}
	free(names);
	for (size_t i = 0; i < n_old; i++) {
		file_store_drop_all(src, &old[i].objs);
		load_entry_free(&old[i]);
	}
	free(old);
	return 0;
}

static int load_single(struct file_source *src, const struct timespec *now, bool *decoded)
{
	struct stat st;

	if (!src->cache) {
		src->cache = calloc(1, sizeof(*src->cache));
		src->sets = calloc(1, sizeof(*src->sets));
		if (!src->cache || !src->sets || !(src->cache[0].path = strdup(src->path))) {
			log_error("source", "out of memory");
			file_load_clear(src);
			return -1;
		}
		src->n_cache = 1;
	}
	if (stat(src->path, &st) < 0 || load_file(src, &src->cache[0], &st, now, decoded) < 0) {
		log_error("source", "%s: %s", src->path, strerror(errno));
		return -1;
	}
	return 0;
}

int file_source_load(struct file_source *src)
{
	bool decoded = false;
	struct timespec now;
	uint64_t t0;
	int rc;

	clock_gettime(CLOCK_REALTIME, &now);
	src->stats.store_ns = 0;
	rc = src->is_dir ? load_dir(src, &now, &decoded) : load_single(src, &now, &decoded);
	for (size_t i = 0; i < src->n_cache; i++)
		src->sets[i] = src->cache[i].objs;
	t0 = load_ns();
	file_store_resolve(src);
	src->stats.store_ns += load_ns() - t0;
	/* A parse's documents take several times the file's size in small
	 * blocks; hand the pages they leave free back to the system. */
	if (decoded)
		malloc_trim(0);
	return rc;
}

const struct model_objects *file_source_objects(const struct file_source *src, size_t *n_sets)
{
	*n_sets = src->n_cache;
	return src->sets;
}
