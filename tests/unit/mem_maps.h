/* In-memory maps for the sync engine's unit tests (user/sync/mapio.h): no
 * BPF, no root. Each map is an array of entries in insertion order, with a
 * capacity; every successful write and delete is logged, in order, so a
 * test can check what the engine wrote before what. */
#ifndef FERRY_TEST_MEM_MAPS_H
#define FERRY_TEST_MEM_MAPS_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/bpf.h>

#include "ferry/maps.h"
#include "sync/mapio.h"

#define MEM_MAX_ENTRIES 4096
#define MEM_MAX_LOG 16384

struct mem_map {
	size_t ks, vs, cap, n;
	unsigned char *data;       /* n entries of ks + vs bytes */
};

struct mem_op {
	char op;                   /* 'U' (update) or 'D' (delete) */
	enum dp_map map;
	unsigned char key[24];     /* the first bytes of the key */
};

struct mem_maps {
	struct mem_map map[DP_MAP__COUNT];
	struct mem_op log[MEM_MAX_LOG];
	size_t n_log;
};

static void mem_map_init(struct mem_maps *m, enum dp_map map, size_t ks, size_t vs, size_t cap)
{
	m->map[map] = (struct mem_map){ .ks = ks, .vs = vs, .cap = cap };
	m->map[map].data = calloc(cap, ks + vs);
}

/* The maps the engine writes, with ferryd's key and value sizes. */
static void mem_maps_init(struct mem_maps *m, size_t services_cap)
{
	memset(m, 0, sizeof(*m));
	mem_map_init(m, DP_MAP_SERVICES, sizeof(struct svc_key), sizeof(struct svc_entry),
		     services_cap);
	mem_map_init(m, DP_MAP_SLOTS, sizeof(struct slot_key), sizeof(struct slot_value),
		     MEM_MAX_ENTRIES);
	mem_map_init(m, DP_MAP_BACKENDS, sizeof(__u32), sizeof(struct backend_value),
		     MEM_MAX_ENTRIES);
	mem_map_init(m, DP_MAP_REVNAT, sizeof(struct revnat_key), sizeof(struct revnat_value),
		     MEM_MAX_ENTRIES);
	mem_map_init(m, DP_MAP_STATE, sizeof(__u32), sizeof(struct agent_state), 1);
	mem_map_init(m, DP_MAP_NODE_ADDRS, sizeof(struct node_addr_key),
		     sizeof(struct node_addr_value), 64);
	mem_map_init(m, DP_MAP_SOURCE_RANGES, sizeof(struct source_range_key), 1, 256);
	mem_map_init(m, DP_MAP_CONFIG, sizeof(__u32), sizeof(struct dp_config), 1);
	mem_map_init(m, DP_MAP_SVC_NAMES, sizeof(__u32), sizeof(struct svc_name), 256);
	mem_map_init(m, DP_MAP_MAGLEV, sizeof(__u32), sizeof(struct maglev_cell), 4096);
}

static void mem_maps_free(struct mem_maps *m)
{
	for (int i = 0; i < DP_MAP__COUNT; i++)
		free(m->map[i].data);
}

static unsigned char *mem_find(struct mem_map *mm, const void *key)
{
	for (size_t i = 0; i < mm->n; i++)
		if (memcmp(mm->data + i * (mm->ks + mm->vs), key, mm->ks) == 0)
			return mm->data + i * (mm->ks + mm->vs);
	return NULL;
}

static void mem_log(struct mem_maps *m, char op, enum dp_map map, const void *key)
{
	struct mem_op *o;

	if (m->n_log == MEM_MAX_LOG)
		return;
	o = &m->log[m->n_log++];
	o->op = op;
	o->map = map;
	memset(o->key, 0, sizeof(o->key));
	memcpy(o->key, key, m->map[map].ks < sizeof(o->key) ? m->map[map].ks : sizeof(o->key));
}

static int mem_update(void *ctx, enum dp_map map, const void *key, const void *value,
		      uint64_t flags)
{
	struct mem_maps *m = ctx;
	struct mem_map *mm = &m->map[map];
	unsigned char *e = mem_find(mm, key);

	if (!mm->data)
		return -EBADF;
	if (e && flags == BPF_NOEXIST)
		return -EEXIST;
	if (!e) {
		if (mm->n == mm->cap)
			return -E2BIG;
		e = mm->data + mm->n++ * (mm->ks + mm->vs);
		memcpy(e, key, mm->ks);
	}
	memcpy(e + mm->ks, value, mm->vs);
	mem_log(m, 'U', map, key);
	return 0;
}

static int mem_remove(void *ctx, enum dp_map map, const void *key)
{
	struct mem_maps *m = ctx;
	struct mem_map *mm = &m->map[map];
	unsigned char *e = mm->data ? mem_find(mm, key) : NULL;
	size_t es = mm->ks + mm->vs;

	if (!e)
		return -ENOENT;
	mem_log(m, 'D', map, key);
	memmove(e, e + es, (size_t)(mm->data + mm->n * es - (e + es)));
	mm->n--;
	return 0;
}

static int mem_lookup(void *ctx, enum dp_map map, const void *key, void *value)
{
	struct mem_map *mm = &((struct mem_maps *)ctx)->map[map];
	unsigned char *e = mm->data ? mem_find(mm, key) : NULL;

	if (!e)
		return -ENOENT;
	memcpy(value, e + mm->ks, mm->vs);
	return 0;
}

/* As a hash map: a key that is not there starts the walk over. */
static int mem_next_key(void *ctx, enum dp_map map, const void *key, void *next)
{
	struct mem_map *mm = &((struct mem_maps *)ctx)->map[map];
	unsigned char *e = key && mm->data ? mem_find(mm, key) : NULL;
	size_t i = e ? (size_t)(e - mm->data) / (mm->ks + mm->vs) + 1 : 0;

	if (i >= mm->n)
		return -ENOENT;
	memcpy(next, mm->data + i * (mm->ks + mm->vs), mm->ks);
	return 0;
}

static int mem_update_batch(void *ctx, enum dp_map map, const void *keys, const void *values,
			    uint32_t *count)
{
	struct mem_map *mm = &((struct mem_maps *)ctx)->map[map];
	uint32_t done = 0;
	int err = 0;

	for (; done < *count && !err; done++)
		err = mem_update(ctx, map, (const unsigned char *)keys + done * mm->ks,
				 (const unsigned char *)values + done * mm->vs, BPF_ANY);
	*count = err ? done - 1 : done;
	return err;
}

static const struct map_io mem_io = {
	.update = mem_update,
	.remove = mem_remove,
	.lookup = mem_lookup,
	.next_key = mem_next_key,
	.update_batch = mem_update_batch,
};

/* The position in the log of the first (first true) or last operation op
 * on map; -1 when there is none. */
static long mem_log_find(const struct mem_maps *m, char op, enum dp_map map, bool first)
{
	long found = -1;

	for (size_t i = 0; i < m->n_log; i++) {
		if (m->log[i].op != op || m->log[i].map != map)
			continue;
		found = (long)i;
		if (first)
			break;
	}
	return found;
}

#endif
