#include "datapath/fast_map.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ferry/hash.h"

/* Entries read or written per batch call. */
#define FAST_CHUNK 1024

/* seq[i] is entry i's count as last written, odd while entry i waits in
 * the pending list for fast_flush; entry[i] its content (NULL: free).
 * old[k] is pending[k]'s content before its first change since the last
 * flush: what the first of the three writes puts back with the count odd. */
struct fast_map {
	pthread_mutex_t lock; /* the sync engine writes a large stage from two threads */
	int fd;
	uint32_t mask;
	uint32_t *seq;
	struct fast_entry **entry;
	uint32_t *pending;
	struct fast_entry *old;
	uint32_t n_pending, cap_pending;
	uint32_t used;
	uint64_t left_out;
	bool warned;
};

static uint32_t port_word_of(const struct svc_key4 *key)
{
	uint32_t word;

	memcpy(&word, &key->port, sizeof(word));
	return word;
}

/* The fast entry of key's ferry_services4 entry e, when it has one: the
 * cases connect4's short path serves, with a set of one port. */
static bool fast_of(const struct svc_key4 *key, const struct svc_entry *e,
		    struct fast_entry *out)
{
	const struct svc_value *v = &e->v;

	if (key->scope != SVC_SCOPE_ALL || (key->proto != IPPROTO_TCP && key->proto != IPPROTO_UDP))
		return false;
	if ((v->flags & (SVC_FLAG_VIP_MARKER | SVC_FLAG_EXTERNAL)) || v->algorithm != LB_RANDOM ||
	    v->affinity_timeout || !v->count || v->count > FERRY_FAST_BACKENDS)
		return false;
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < v->count; i++) {
		const struct svc_inline_v4 *b = &e->in.v4[i];

		if (!(b->flags & SLOT_FLAG_REVNAT_OWNER) || b->port != e->in.v4[0].port)
			return false;
		out->backend[i] = b->addr;
	}
	out->addr = key->addr;
	out->port_word = port_word_of(key);
	out->count = (uint16_t)v->count;
	out->port = e->in.v4[0].port;
	return true;
}

/* The entry of (addr, port_word) within its probes, or -1. */
static int64_t fast_find(const struct fast_map *fm, uint32_t addr, uint32_t port_word)
{
	uint32_t home = ferry_fast_home(addr, port_word, fm->mask);

	for (uint32_t i = 0; i < FERRY_FAST_PROBES; i++) {
		uint32_t at = (home + i) & fm->mask;
		const struct fast_entry *e = fm->entry[at];

		if (e && e->addr == addr && e->port_word == port_word)
			return at;
	}
	return -1;
}

static int64_t fast_free_near(const struct fast_map *fm, uint32_t addr, uint32_t port_word)
{
	uint32_t home = ferry_fast_home(addr, port_word, fm->mask);

	for (uint32_t i = 0; i < FERRY_FAST_PROBES; i++)
		if (!fm->entry[(home + i) & fm->mask])
			return (home + i) & fm->mask;
	return -1;
}

/* Entry at joins the pending list, its content as the kernel holds it
 * being old (NULL: the copy's). */
static int fast_touch_from(struct fast_map *fm, uint32_t at, const struct fast_entry *old)
{
	if (fm->seq[at] & 1)
		return 0;
	if (fm->n_pending == fm->cap_pending) {
		uint32_t cap = fm->cap_pending ? 2 * fm->cap_pending : 64;
		uint32_t *pending = realloc(fm->pending, cap * sizeof(*pending));
		struct fast_entry *old;

		if (!pending)
			return -ENOMEM;
		fm->pending = pending;
		old = realloc(fm->old, cap * sizeof(*old));
		if (!old)
			return -ENOMEM;
		fm->old = old;
		fm->cap_pending = cap;
	}
	fm->pending[fm->n_pending] = at;
	if (old)
		fm->old[fm->n_pending] = *old;
	else if (fm->entry[at])
		fm->old[fm->n_pending] = *fm->entry[at];
	else
		memset(&fm->old[fm->n_pending], 0, sizeof(fm->old[0]));
	fm->n_pending++;
	fm->seq[at]++;
	return 0;
}

static int fast_touch(struct fast_map *fm, uint32_t at)
{
	return fast_touch_from(fm, at, NULL);
}

/* Entry at becomes content (NULL: free), to be written by fast_flush. */
static int fast_set(struct fast_map *fm, uint32_t at, const struct fast_entry *content)
{
	int err = fast_touch(fm, at);

	if (err)
		return err;
	if (!content) {
		fm->used -= fm->entry[at] != NULL;
		free(fm->entry[at]);
		fm->entry[at] = NULL;
		return 0;
	}
	if (!fm->entry[at]) {
		fm->entry[at] = malloc(sizeof(struct fast_entry));
		if (!fm->entry[at])
			return -ENOMEM;
		fm->used++;
	}
	*fm->entry[at] = *content;
	return 0;
}

/* One frontend's ferry_services4 entry e (NULL: gone): its fast entry. */
static int fast_follow_one(struct fast_map *fm, const struct svc_key4 *key,
			   const struct svc_entry *e)
{
	struct fast_entry want;
	bool fast = e && fast_of(key, e, &want);
	int64_t at = fast_find(fm, key->addr, port_word_of(key));

	if (at >= 0 && !fast)
		return fast_set(fm, (uint32_t)at, NULL);
	if (!fast)
		return 0;
	if (at >= 0) {
		want.seq = fm->entry[at]->seq;
		return memcmp(fm->entry[at], &want, sizeof(want)) ? fast_set(fm, (uint32_t)at, &want) : 0;
	}
	at = fast_free_near(fm, key->addr, port_word_of(key));
	if (at < 0) {
		fm->left_out++;
		if (!fm->warned)
			log_warn("datapath", "ferry_fast4 has no free entry near a frontend's home "
				 "(%u in use): such frontends are looked up in ferry_services4 "
				 "(--max-services sizes the table)", fm->used);
		fm->warned = true;
		return 0;
	}
	return fast_set(fm, (uint32_t)at, &want);
}

/* One of the three writes of every pending entry: its old content or its
 * new, with the count given by bump (0: odd, as pending; 1: even again). */
static int fast_write_pass(struct fast_map *fm, struct fast_entry *vals, bool new_content,
			   uint32_t bump)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);

	for (uint32_t k = 0; k < fm->n_pending; k++) {
		uint32_t at = fm->pending[k];

		if (!new_content)
			vals[k] = fm->old[k];
		else if (fm->entry[at])
			vals[k] = *fm->entry[at];
		else
			memset(&vals[k], 0, sizeof(vals[k]));
		vals[k].seq = fm->seq[at] + bump;
	}
	for (uint32_t k = 0; k < fm->n_pending; k += FAST_CHUNK) {
		uint32_t n = fm->n_pending - k < FAST_CHUNK ? fm->n_pending - k : FAST_CHUNK;

		if (bpf_map_update_batch(fm->fd, &fm->pending[k], &vals[k], &n, &opts))
			return -errno;
	}
	return 0;
}

/* The pending entries written, each in three steps (include/ferry/maps.h). */
static int fast_flush(struct fast_map *fm)
{
	struct fast_entry *vals;
	int err;

	if (!fm->n_pending)
		return 0;
	vals = malloc(fm->n_pending * sizeof(*vals));
	err = vals ? 0 : -ENOMEM;
	if (!err)
		err = fast_write_pass(fm, vals, false, 0);
	if (!err)
		err = fast_write_pass(fm, vals, true, 0);
	if (!err)
		err = fast_write_pass(fm, vals, true, 1);
	free(vals);
	if (err)
		log_error("datapath", "cannot write ferry_fast4: %s", strerror(-err));
	/* Even again in the copy: the next change of an entry starts from a
	 * count that an entry left odd by an error also passes over. */
	for (uint32_t k = 0; k < fm->n_pending; k++) {
		fm->seq[fm->pending[k]]++;
		if (fm->entry[fm->pending[k]])
			fm->entry[fm->pending[k]]->seq = fm->seq[fm->pending[k]];
	}
	fm->n_pending = 0;
	if (fm->cap_pending > FAST_CHUNK) {
		free(fm->pending);
		free(fm->old);
		fm->pending = NULL;
		fm->old = NULL;
		fm->cap_pending = 0;
	}
	return err;
}

int fast_map_follow(struct fast_map *fm, const struct svc_key4 *keys, const void *entries,
		    uint32_t n)
{
	struct svc_entry e;
	int err = 0, flush_err;

	pthread_mutex_lock(&fm->lock);
	for (uint32_t i = 0; i < n && !err; i++) {
		if (entries)
			memcpy(&e, (const char *)entries + (size_t)i * sizeof(e), sizeof(e));
		err = fast_follow_one(fm, &keys[i], entries ? &e : NULL);
	}
	if (err)
		log_error("datapath", "cannot follow ferry_services4 in ferry_fast4: %s",
			  strerror(-err));
	flush_err = fast_flush(fm);
	pthread_mutex_unlock(&fm->lock);
	return flush_err ? -EIO : err;
}

/* Entry at as the kernel holds it, into the copy. An entry left odd (a
 * ferryd stopped in the middle of a write) is pending: the next flush
 * writes it whole. */
static int fast_adopt_entry(struct fast_map *fm, uint32_t at, const struct fast_entry *e)
{
	fm->seq[at] = e->seq & ~1u;
	if (e->port_word) {
		fm->entry[at] = malloc(sizeof(*e));
		if (!fm->entry[at])
			return -ENOMEM;
		*fm->entry[at] = *e;
		fm->entry[at]->seq = fm->seq[at];
		fm->used++;
	}
	return (e->seq & 1) ? fast_touch(fm, at) : 0;
}

/* Every entry of the table behind fd to fn, a batch at a time. */
static int fast_walk(int fd, int (*fn)(void *arg, uint32_t at, const struct fast_entry *e),
		     void *arg)
{
	uint32_t keys[FAST_CHUNK], in = 0, out = 0, n;
	struct fast_entry *vals = malloc(FAST_CHUNK * sizeof(*vals));
	bool first = true, end = false;
	int err = vals ? 0 : -ENOMEM;

	while (!err && !end) {
		n = FAST_CHUNK;
		if (bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys, vals, &n, NULL)) {
			end = errno == ENOENT;
			err = end ? 0 : -errno;
		}
		for (uint32_t k = 0; k < n && !err; k++)
			err = fn(arg, keys[k], &vals[k]);
		in = out;
		first = false;
	}
	free(vals);
	return err;
}

static int fast_adopt_one(void *arg, uint32_t at, const struct fast_entry *e)
{
	struct fast_map *fm = arg;

	return at <= fm->mask ? fast_adopt_entry(fm, at, e) : -ERANGE;
}

static int fast_read_all(struct fast_map *fm)
{
	return fast_walk(fm->fd, fast_adopt_one, fm);
}

static int fast_count_one(void *arg, uint32_t at, const struct fast_entry *e)
{
	(void)at;
	*(long long *)arg += e->port_word != 0;
	return 0;
}

long long fast_map_count(int fd)
{
	long long n = 0;
	int err = fast_walk(fd, fast_count_one, &n);

	return err ? err : n;
}

struct fast_map *fast_map_open(int fd, bool adopted)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	struct fast_map *fm = calloc(1, sizeof(*fm));
	int err;

	if (!fm)
		goto fail;
	pthread_mutex_init(&fm->lock, NULL);
	fm->fd = fd;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.value_size != sizeof(struct fast_entry) ||
	    !info.max_entries || (info.max_entries & (info.max_entries - 1))) {
		log_error("datapath", "ferry_fast4 is not a table of fast entries of a power of two");
		goto fail;
	}
	fm->mask = info.max_entries - 1;
	fm->seq = calloc(info.max_entries, sizeof(*fm->seq));
	fm->entry = calloc(info.max_entries, sizeof(*fm->entry));
	if (!fm->seq || !fm->entry)
		goto fail;
	err = adopted ? fast_read_all(fm) : 0;
	if (err) {
		log_error("datapath", "cannot read ferry_fast4: %s", strerror(-err));
		goto fail;
	}
	return fm;
fail:
	fast_map_free(fm);
	return NULL;
}

void fast_map_free(struct fast_map *fm)
{
	if (!fm)
		return;
	for (uint32_t i = 0; fm->entry && i <= fm->mask; i++)
		free(fm->entry[i]);
	free(fm->entry);
	free(fm->seq);
	free(fm->pending);
	free(fm->old);
	pthread_mutex_destroy(&fm->lock);
	free(fm);
}

/* Every entry of ferry_services4 (fd) to fn, a batch at a time. */
static int fast_walk_services(int fd, struct fast_map *fm, uint8_t *seen,
			      int (*fn)(struct fast_map *fm, const struct svc_key4 *key,
					const struct svc_entry *e, uint8_t *seen))
{
	struct svc_key4 keys[256];
	struct svc_entry *vals = malloc(256 * sizeof(*vals));
	uint32_t in = 0, out = 0, n;
	bool first = true, end = false;
	int err = vals ? 0 : -ENOMEM;

	while (!err && !end) {
		n = 256;
		if (bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys, vals, &n, NULL)) {
			end = errno == ENOENT;
			err = end ? 0 : -errno;
		}
		for (uint32_t k = 0; k < n && !err; k++)
			err = fn(fm, &keys[k], &vals[k], seen);
		in = out;
		first = false;
	}
	free(vals);
	return err;
}

/* Marks, in seen, the entry key's frontend holds (if any). */
static int fast_mark(struct fast_map *fm, const struct svc_key4 *key, const struct svc_entry *e,
		     uint8_t *seen)
{
	int64_t at = fast_find(fm, key->addr, port_word_of(key));

	(void)e;
	if (at >= 0)
		seen[at / 8] |= (uint8_t)(1u << (at % 8));
	return 0;
}

static int fast_follow_seen(struct fast_map *fm, const struct svc_key4 *key,
			    const struct svc_entry *e, uint8_t *seen)
{
	(void)seen;
	return fast_follow_one(fm, key, e);
}

int fast_map_rebuild(struct fast_map *fm, int services4_fd)
{
	uint8_t *seen = calloc(fm->mask / 8 + 1, 1);
	int err = seen ? 0 : -ENOMEM, flush_err;

	pthread_mutex_lock(&fm->lock);
	/* The entries of frontends gone are freed first, so that the
	 * frontends' own entries find their probes free. */
	if (!err)
		err = fast_walk_services(services4_fd, fm, seen, fast_mark);
	for (uint32_t at = 0; !err && at <= fm->mask; at++)
		if (fm->entry[at] && !(seen[at / 8] & (1u << (at % 8))))
			err = fast_set(fm, at, NULL);
	if (!err)
		err = fast_walk_services(services4_fd, fm, seen, fast_follow_seen);
	free(seen);
	if (err)
		log_error("datapath", "cannot check ferry_fast4 against ferry_services4: %s",
			  strerror(-err));
	flush_err = fast_flush(fm);
	pthread_mutex_unlock(&fm->lock);
	return flush_err ? -EIO : err;
}

struct fast_check {
	struct fast_map *fm;
	struct fast_repairs *out;
	int64_t read;
};

/* Entry at as the kernel holds it (e) against the copy: one that differs
 * is written again from the copy. */
static int fast_check_one(void *arg, uint32_t at, const struct fast_entry *e)
{
	struct fast_check *c = arg;
	struct fast_map *fm = c->fm;
	const struct fast_entry *mine = at <= fm->mask ? fm->entry[at] : NULL;
	struct fast_entry want = { 0 };

	if (at > fm->mask)
		return -ERANGE;
	c->read++;
	if (mine)
		want = *mine;
	want.seq = fm->seq[at];
	if (!memcmp(e, &want, sizeof(want)) || (fm->seq[at] & 1))
		return 0;
	/* The repair's count goes on from above whatever the other writer
	 * wrote: a reader must not see one count around two versions. */
	if ((e->seq & ~1u) + 2 > fm->seq[at])
		fm->seq[at] = (e->seq & ~1u) + 2;
	if (!mine)
		c->out->unknown++;
	else if (!e->port_word)
		c->out->missing++;
	else
		c->out->altered++;
	return fast_touch_from(fm, at, e);
}

int64_t fast_map_check(struct fast_map *fm, struct fast_repairs *out)
{
	struct fast_check c = { .fm = fm, .out = out };
	int err, flush_err;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&fm->lock);
	err = fast_walk(fm->fd, fast_check_one, &c);
	flush_err = fast_flush(fm);
	pthread_mutex_unlock(&fm->lock);
	if (err)
		log_error("datapath", "cannot compare ferry_fast4 with what was written: %s",
			  strerror(-err));
	else if (out->missing + out->altered + out->unknown)
		log_warn("datapath", "ferry_fast4 was changed by someone else: %u entries put back, "
			 "%u rewritten, %u removed", out->missing, out->altered, out->unknown);
	return err ? err : flush_err ? -EIO : c.read;
}

struct fast_counts fast_map_counts(struct fast_map *fm)
{
	struct fast_counts c;

	pthread_mutex_lock(&fm->lock);
	c.used = fm->used;
	c.left_out = fm->left_out;
	pthread_mutex_unlock(&fm->lock);
	return c;
}
