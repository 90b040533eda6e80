/* Adoption: a ferryd that finds maps of its own layout pinned takes them
 * over as they are, instead of writing everything again. The engine's
 * record is rebuilt from the service entries (grouped by svc_id into
 * service ports, each with its frontends), their current sets (inline
 * in the entry, or in ferry_slots), their
 * source ranges and the node addresses; the first sync_apply matches each
 * desired service port to an adopted one by a frontend and writes only
 * what differs. Entries nothing reaches any
 * more (slots of other revisions, orphan backends, unused VIP markers:
 * what a ferryd killed in the middle of a change leaves) are removed. */
#include <bpf/bpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "datapath/svc_entry.h"
#include "sync/lb.h"
#include "sync/state.h"

int backend_sort_cmp(const void *x, const void *y)
{
	const struct applied_backend *a = x, *b = y;
	int c = addr_compare(&a->addr, &b->addr);

	return c ? c : (int)a->port - (int)b->port;
}

/* Slot i of a's current revision: from a's service entry e when the set
 * rides inline there, else from ferry_slots. Returns 0 when present. */
static int adopt_slot(struct sync_engine *eng, const struct applied_svc *a,
		      const struct svc_entry *e, uint32_t i, struct slot_value *out)
{
	struct slot_key key = { .svc_id = a->value.svc_id, .rev = a->value.rev, .slot = i };

	if (!e)
		return mio_lookup(eng, DP_MAP_SLOTS, &key, out);
	svc_entry_slot(e, a->frontends[0].key.addr, i, out);
	return out->backend_id ? 0 : -1;
}

/* a's entry of the current revision, when its set rides inline (*e NULL
 * when it does not). Returns -1 when no such entry can be read. */
static int adopt_entry(struct sync_engine *eng, const struct applied_svc *a,
		       struct svc_entry *entry, struct svc_entry **e)
{
	*e = NULL;
	if (!a->n_frontends || !svc_entry_inline(a->frontends[0].key.addr, a->value.count))
		return 0;
	for (size_t i = 0; i < a->n_frontends; i++) {
		if (a->frontends[i].stale ||
		    mio_lookup(eng, DP_MAP_SERVICES, &a->frontends[i].key, entry) ||
		    entry->v.rev != a->value.rev)
			continue;
		*e = entry;
		return 0;
	}
	return -1;
}

/* The backends of a's current revision. A slot or backend that is missing
 * (deleted by someone else, B34) is left out: the first apply then sees a
 * difference and rewrites the service. */
static void adopt_backends(struct sync_engine *eng, struct applied_svc *a)
{
	struct svc_entry entry, *e;

	if (adopt_entry(eng, a, &entry, &e))
		return;
	a->backends = calloc(a->value.count + 1, sizeof(*a->backends));
	if (!a->backends)
		return;
	for (uint32_t i = 0; i < a->value.count; i++) {
		struct applied_backend *ab = &a->backends[a->n_backends];
		struct slot_value slot;
		struct backend_value b;

		if (adopt_slot(eng, a, e, i, &slot) ||
		    mio_lookup(eng, DP_MAP_BACKENDS, &slot.backend_id, &b) ||
		    b.svc_id != a->value.svc_id ||
		    id_pool_claim(&eng->backend_ids, slot.backend_id))
			continue;
		memcpy(ab->addr.w, b.addr, sizeof(ab->addr.w));
		ab->port = ntohs(b.port);
		ab->slot_flags = slot.flags;
		ab->id = slot.backend_id;
		a->n_backends++;
	}
	qsort(a->backends, a->n_backends, sizeof(*a->backends), backend_sort_cmp);
}

struct applied_svc *adopt_find(const struct sync_engine *eng, uint32_t svc_id)
{
	char id[32];
	struct hmap_node *n;

	snprintf(id, sizeof(id), "adopted:%u", svc_id);
	n = hmap_get(&eng->svcs, id, strlen(id));
	return n ? hmap_entry(n, struct applied_svc, by_id) : NULL;
}

/* One applied service port per svc_id, with every frontend that names it. */
static void adopt_service(struct sync_engine *eng, const struct svc_key *key,
			  const struct svc_value *v)
{
	struct applied_svc *a = adopt_find(eng, v->svc_id);
	char id[32];

	if (a) {
		if (fe_adopt(eng, a, key, v))
			log_warn("sync", "pinned service entry with svc_id %u cannot be adopted",
				 v->svc_id);
		return;
	}
	a = calloc(1, sizeof(*a));
	snprintf(id, sizeof(id), "adopted:%u", v->svc_id);
	if (!a || !(a->id = strdup(id)) || id_pool_claim(&eng->svc_ids, v->svc_id)) {
		log_warn("sync", "pinned service entry with svc_id %u cannot be adopted", v->svc_id);
		if (a)
			free(a->id);
		free(a);
		return;
	}
	a->proto = key->proto;
	a->adopted = true;
	if (fe_adopt(eng, a, key, v)) {
		id_pool_put(&eng->svc_ids, v->svc_id);
		free(a->id);
		free(a);
		return;
	}
	hmap_put(&eng->svcs, &a->by_id, a->id, strlen(a->id));
	eng->stats.services++;
}

/* Every key of a map, read before any is deleted (deleting while walking
 * restarts a hash map's walk). */
void *map_keys(const struct sync_engine *eng, enum dp_map map, size_t key_size, size_t *n_out)
{
	size_t n = 0, cap = 1024;
	char *keys = malloc(cap * key_size);
	void *prev = NULL;

	while (keys && mio_next_key(eng, map, prev, keys + n * key_size) == 0) {
		prev = keys + n * key_size;
		if (++n == cap) {
			char *grown = realloc(keys, 2 * cap * key_size);

			if (!grown)
				break;
			keys = grown;
			cap *= 2;
			prev = keys + (n - 1) * key_size;
		}
	}
	*n_out = keys ? n : 0;
	return keys;
}

static void adopt_services(struct sync_engine *eng)
{
	size_t n;
	struct svc_key *keys = map_keys(eng, DP_MAP_SERVICES, sizeof(*keys), &n);

	for (size_t i = 0; i < n; i++) {
		struct svc_entry e;

		if (mio_lookup(eng, DP_MAP_SERVICES, &keys[i], &e) == 0 &&
		    !(e.v.flags & SVC_FLAG_VIP_MARKER))
			adopt_service(eng, &keys[i], &e.v);
	}
	free(keys);
	for (struct hmap_node *it = hmap_first(&eng->svcs); it; it = hmap_next(&eng->svcs, it)) {
		struct applied_svc *a = hmap_entry(it, struct applied_svc, by_id);

		fe_adopt_done(eng, a);
		adopt_backends(eng, a);
		/* A table whose run overlaps another's: the entry is written
		 * anew (no algorithm matches), with a table of its own. */
		if (lb_table_adopt(eng, &a->value)) {
			a->value.maglev_size = 0;
			a->value.algorithm = LB_ALGORITHM__COUNT;
		}
		/* Its counted sockets still close: the hook, even when the
		 * pinned link went while no ferryd ran. */
		if (a->value.algorithm == LB_LEAST_CONN)
			lb_least_conn_ready(eng);
		eng->stats.backends += a->n_backends;
		eng->stats.slots += wr_slots_of(a->backends, a->n_backends, a->value.count);
	}
}

static bool slot_live(struct sync_engine *eng, const struct slot_key *k)
{
	struct applied_svc *a = adopt_find(eng, k->svc_id);

	return a && a->value.rev == k->rev && k->slot < a->value.count &&
	       a->n_frontends && !svc_entry_inline(a->frontends[0].key.addr, a->value.count);
}

/* The IDs in ferry_backends, read in batches: a walk by next key would map
 * a window of the array for each (datapath/backend_map.h). */
static uint32_t *backend_ids(const struct sync_engine *eng, size_t *n_out)
{
	enum { BATCH = 1024 };
	struct backend_value values[BATCH];
	size_t n = 0, cap = BATCH;
	uint32_t *ids = malloc(cap * sizeof(*ids)), token = 0, count;
	void *in = NULL;
	int err = 0;

	while (ids && !err) {
		if (n + BATCH > cap) {
			uint32_t *grown = realloc(ids, 2 * cap * sizeof(*ids));

			if (!grown)
				break;
			ids = grown;
			cap *= 2;
		}
		count = BATCH;
		err = mio_lookup_batch(eng, DP_MAP_BACKENDS, in, &token, ids + n, values, &count);
		n += err && err != -ENOENT ? 0 : count;
		in = &token;
	}
	if (err == -EOPNOTSUPP && !n) {
		free(ids);
		return map_keys(eng, DP_MAP_BACKENDS, sizeof(*ids), n_out);
	}
	*n_out = ids ? n : 0;
	return ids;
}

/* Remove what no adopted service entry reaches. Returns how many. */
static size_t adopt_sweep(struct sync_engine *eng)
{
	size_t n, removed = 0;
	struct slot_key *slots = map_keys(eng, DP_MAP_SLOTS, sizeof(*slots), &n);
	uint32_t *ids;
	struct svc_key *svcs;

	for (size_t i = 0; i < n; i++)
		if (!slot_live(eng, &slots[i]) && ++removed)
			wr_del(eng, DP_MAP_SLOTS, &slots[i]);
	free(slots);
	ids = backend_ids(eng, &n);
	for (size_t i = 0; i < n; i++)
		if (!id_pool_taken(&eng->backend_ids, ids[i]) && ++removed)
			wr_del(eng, DP_MAP_BACKENDS, &ids[i]);
	free(ids);
	svcs = map_keys(eng, DP_MAP_SERVICES, sizeof(*svcs), &n);
	for (size_t i = 0; i < n; i++) {
		struct ferry_ip vip;

		memcpy(vip.w, svcs[i].addr, sizeof(vip.w));
		if (!svcs[i].port && !svcs[i].proto && !wr_vip_known(eng, &vip) && ++removed)
			wr_del(eng, DP_MAP_SERVICES, &svcs[i]);
	}
	free(svcs);
	return removed;
}

void sync_adopt(struct sync_engine *eng)
{
	size_t stale;

	eng->maps_fresh = false;
	adopt_services(eng);
	stale = adopt_sweep(eng) + rg_adopt(eng);
	rn_adopt(eng);
	node_adopt(eng);
	log_info("sync", "adopted %llu service ports and %llu backends from the pinned maps; "
		 "removed %zu stale entries (%zu frontends, %zu node addresses adopted)",
		 (unsigned long long)eng->stats.services, (unsigned long long)eng->stats.backends,
		 stale, eng->frontends.count, eng->n_node_addrs);
}
