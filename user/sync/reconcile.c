/* B34: the service maps compared with the engine's record of what it wrote,
 * and brought back to it. Each map the engine owns is read in batches
 * (bpf_map_lookup_batch) and every entry looked up in a hash index of
 * what the record says it holds, built for that map alone: an entry that
 * differs is rewritten, one the record lacks is deleted, and what the
 * record has but the map lacks is written again. ferry_revnat's orphans
 * (revnat.c) are the engine's too, left on purpose, so they are neither
 * compared nor removed. ferry_source_ranges (an LPM trie, which has no
 * batch read) is walked key by key; ferry_config is one value. */
#include <bpf/bpf.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hmap.h"
#include "common/log.h"
#include "datapath/fast_map.h"
#include "datapath/svc_entry.h"
#include "sync/state.h"

/* Values read per batch, in bytes: few calls for a map of a million
 * entries. */
#define RC_BATCH_BYTES (1u << 20)
/* The maps compared entry by entry (ferry_config, one value, apart). */
#define RC_MAPS 6
/* How many items ahead a pass asks the memory for: the record's service
 * ports lie scattered in the heap and the index is probed at random, so a
 * pass that waited on each access in turn would spend most of its time
 * waiting. */
#define RC_AHEAD 8

/* A slot of the index: an element's number + 1 (0: free) and its key's
 * hash, so a probe compares keys only when the hashes agree. */
struct rc_slot {
	uint32_t elem;
	uint32_t hash;
};

/* What a map should hold: elements of key, value and a "seen" byte, and
 * an open-addressing index of them by key. */
struct rc_set {
	enum dp_map map;
	size_t ks, vs, es;
	size_t n, cap;
	unsigned char *data;
	struct rc_slot *index;
	size_t mask;
	bool failed;          /* out of memory while building */
};

struct rc_count {
	uint64_t missing, altered, unknown;
	char first[192];      /* the first repair, for the log */
};

static void rc_init(struct rc_set *s, enum dp_map map, size_t ks, size_t vs)
{
	memset(s, 0, sizeof(*s));
	s->map = map;
	s->ks = ks;
	s->vs = vs;
	s->es = ks + vs + 1;
}

static void rc_add(struct rc_set *s, const void *key, const void *value)
{
	unsigned char *e;

	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		unsigned char *grown = realloc(s->data, cap * s->es);

		if (!grown) {
			s->failed = true;
			return;
		}
		s->data = grown;
		s->cap = cap;
	}
	e = s->data + s->n++ * s->es;
	memcpy(e, key, s->ks);
	memcpy(e + s->ks, value, s->vs);
	e[s->ks + s->vs] = 0;
}

static void rc_insert(struct rc_set *s, size_t i, uint32_t hash)
{
	size_t h = hash & s->mask;

	while (s->index[h].elem)
		h = (h + 1) & s->mask;
	s->index[h].elem = (uint32_t)i + 1;
	s->index[h].hash = hash;
}

static bool rc_index(struct rc_set *s)
{
	uint32_t ahead[RC_AHEAD];
	size_t cap = 16;

	while (cap < 2 * s->n)
		cap *= 2;
	s->index = calloc(cap, sizeof(*s->index));
	if (!s->index)
		return false;
	s->mask = cap - 1;
	/* Element i's slot is asked for RC_AHEAD elements before it is
	 * written. */
	for (size_t i = 0; i < s->n + RC_AHEAD; i++) {
		uint32_t hash = 0;

		if (i < s->n) {
			hash = (uint32_t)hmap_hash_bytes(s->data + i * s->es, s->ks);
			__builtin_prefetch(&s->index[hash & s->mask], 1);
		}
		if (i >= RC_AHEAD)
			rc_insert(s, i - RC_AHEAD, ahead[i % RC_AHEAD]);
		ahead[i % RC_AHEAD] = hash;
	}
	return true;
}

static unsigned char *rc_find(const struct rc_set *s, const void *key, uint32_t hash)
{
	size_t h = hash & s->mask;

	for (; s->index[h].elem; h = (h + 1) & s->mask) {
		unsigned char *e = s->data + (s->index[h].elem - 1) * s->es;

		if (s->index[h].hash == hash && memcmp(e, key, s->ks) == 0)
			return e;
	}
	return NULL;
}

/* ferry_services4/6: each frontend a owns (as fe_write writes it). A frontend
 * adopted with another revision waits for the engine to rewrite it. */
static void rc_frontends(struct rc_set *s, const struct applied_svc *a)
{
	for (size_t i = 0; i < a->n_frontends; i++) {
		const struct applied_frontend *f = &a->frontends[i];
		struct svc_entry e;

		if (!f->owner || f->stale)
			continue;
		fe_entry(&e, a, &f->key, f->flags, a->backends, a->n_backends);
		rc_add(s, &f->key, &e);
	}
}

static void rc_vips(struct rc_set *s, const struct sync_engine *eng)
{
	struct svc_entry marker = { .v.flags = SVC_FLAG_VIP_MARKER };

	for (struct hmap_node *it = eng->vips.buckets ? hmap_first(&eng->vips) : NULL; it;
	     it = hmap_next(&eng->vips, it)) {
		const struct vip_ref *ref = hmap_entry(it, struct vip_ref, node);
		struct svc_key key = { 0 };

		memcpy(key.addr, ref->addr.w, sizeof(key.addr));
		rc_add(s, &key, &marker);
	}
}

/* ferry_slots of a set too large to ride inline (wr_slots_write). */
static void rc_slots(struct rc_set *s, const struct applied_svc *a)
{
	size_t n = wr_slots_of(a->backends, a->n_backends, a->value.count);

	for (size_t i = 0; i < n && i < a->n_backends; i++) {
		struct slot_key key = { .svc_id = a->value.svc_id, .rev = a->value.rev,
					.slot = (uint32_t)i };
		struct slot_value v = {
			.backend_id = a->backends[i].id,
			.port = htons(a->backends[i].port),
			.flags = a->backends[i].slot_flags,
		};

		memcpy(v.addr, a->backends[i].addr.w, sizeof(v.addr));
		rc_add(s, &key, &v);
	}
}

/* ferry_backends (writes.c's backend_write). */
static void rc_backends(struct rc_set *s, const struct applied_svc *a)
{
	for (size_t i = 0; i < a->n_backends; i++) {
		const struct applied_backend *b = &a->backends[i];
		struct backend_value v = {
			.port = htons(b->port),
			.proto = a->proto,
			.state = a->value.flags & SVC_FLAG_FALLBACK ? BACKEND_TERMINATING :
								       BACKEND_ACTIVE,
			.svc_id = a->value.svc_id,
		};

		memcpy(v.addr, b->addr.w, sizeof(v.addr));
		rc_add(s, &b->id, &v);
	}
}

/* ferry_revnat: the entries a owns (its slots' SLOT_FLAG_REVNAT_OWNER). */
static void rc_revnat(struct rc_set *s, const struct applied_svc *a)
{
	for (size_t i = 0; a->rn_has_primary && !a->rn_stale && i < a->n_backends; i++) {
		const struct applied_backend *b = &a->backends[i];
		struct revnat_key key = { .port = htons(b->port), .proto = a->proto };
		struct revnat_value v = { .svc_port = a->rn_primary.port,
					  .svc_id = a->value.svc_id };

		if (!(b->slot_flags & SLOT_FLAG_REVNAT_OWNER))
			continue;
		memcpy(key.addr, b->addr.w, sizeof(key.addr));
		memcpy(v.svc_addr, a->rn_primary.addr, sizeof(v.svc_addr));
		rc_add(s, &key, &v);
	}
}

/* ferry_source_ranges: a's prefixes (ranges.c's rg_key, value 1). */
static void rc_ranges(struct rc_set *s, const struct applied_svc *a)
{
	const uint8_t one = 1;

	for (size_t i = 0; i < a->n_ranges; i++) {
		struct source_range_key k = { .prefixlen = 32 + a->ranges[i].len,
					      .svc_id = htonl(a->value.svc_id) };

		memcpy(k.addr, a->ranges[i].addr.w, sizeof(k.addr));
		rc_add(s, &k, &one);
	}
}

/* ferry_node_addrs: the first address of each family is its SNAT source
 * (node.c). */
static void rc_node_addrs(struct rc_set *s, const struct sync_engine *eng)
{
	bool v4_seen = false, v6_seen = false;

	for (size_t i = 0; i < eng->n_node_addrs; i++) {
		bool v4 = addr_is_v4(&eng->node_addrs[i]);
		struct node_addr_value v = { .flags = (v4 ? !v4_seen : !v6_seen) ? NODE_ADDR_SNAT : 0 };
		struct node_addr_key k;

		memcpy(k.addr, eng->node_addrs[i].w, sizeof(k.addr));
		rc_add(s, &k, &v);
		v4_seen |= v4;
		v6_seen |= !v4;
	}
}

/* The maps compared entry by entry: their key and value sizes, and what
 * the record says each holds, by service port (of_svc) and beside the
 * service ports (of_engine). */
static const struct {
	enum dp_map map;
	size_t ks, vs;
	void (*of_svc)(struct rc_set *s, const struct applied_svc *a);
	void (*of_engine)(struct rc_set *s, const struct sync_engine *eng);
} rc_maps[RC_MAPS] = {
	{ DP_MAP_SERVICES, sizeof(struct svc_key), sizeof(struct svc_entry), rc_frontends,
	  rc_vips },
	{ DP_MAP_SLOTS, sizeof(struct slot_key), sizeof(struct slot_value), rc_slots, NULL },
	{ DP_MAP_BACKENDS, sizeof(__u32), sizeof(struct backend_value), rc_backends, NULL },
	{ DP_MAP_REVNAT, sizeof(struct revnat_key), sizeof(struct revnat_value), rc_revnat, NULL },
	{ DP_MAP_SOURCE_RANGES, sizeof(struct source_range_key), 1, rc_ranges, NULL },
	{ DP_MAP_NODE_ADDRS, sizeof(struct node_addr_key), sizeof(struct node_addr_value), NULL,
	  rc_node_addrs },
};

/* The record's service ports, in one array for the passes over them. */
static const struct applied_svc **rc_svcs(const struct sync_engine *eng, size_t *n)
{
	const struct applied_svc **all = malloc((eng->svcs.count ?: 1) * sizeof(*all));

	*n = 0;
	if (!all)
		return NULL;
	for (struct hmap_node *it = eng->svcs.buckets ? hmap_first(&eng->svcs) : NULL; it;
	     it = hmap_next(&eng->svcs, it))
		all[(*n)++] = hmap_entry(it, struct applied_svc, by_id);
	return all;
}

/* Fill s, map m's record alone, and index it: one map's record at a time,
 * so that a pass holds a copy of the largest one, not of all. */
static bool rc_fill(const struct sync_engine *eng, int m, struct rc_set *s,
		    const struct applied_svc **svcs, size_t n)
{
	rc_init(s, rc_maps[m].map, rc_maps[m].ks, rc_maps[m].vs);
	for (size_t i = 0; rc_maps[m].of_svc && i < n; i++) {
		if (i + 2 * RC_AHEAD < n)
			__builtin_prefetch(svcs[i + 2 * RC_AHEAD]);
		if (i + RC_AHEAD < n)
			__builtin_prefetch(svcs[i + RC_AHEAD]->backends);
		rc_maps[m].of_svc(s, svcs[i]);
	}
	if (rc_maps[m].of_engine)
		rc_maps[m].of_engine(s, eng);
	return !s->failed && rc_index(s);
}

/* Which entry of map key is, for the log. */
static void rc_describe(enum dp_map map, const void *key, char *out, size_t len)
{
	const struct svc_key *sk = key;
	const struct slot_key *slk = key;
	const struct revnat_key *rk = key;
	const struct source_range_key *rgk = key;
	char where[ADDR_STR_LEN + 16];
	struct ferry_ip ip;

	switch (map) {
	case DP_MAP_SERVICES:
	case DP_MAP_REVNAT:
		memcpy(ip.w, map == DP_MAP_SERVICES ? sk->addr : rk->addr, sizeof(ip.w));
		addr_format_port(&ip, ntohs(map == DP_MAP_SERVICES ? sk->port : rk->port), where,
				 sizeof(where));
		snprintf(out, len, "%s/%s%s", where,
			 proto_name(map == DP_MAP_SERVICES ? sk->proto : rk->proto),
			 map == DP_MAP_SERVICES && !sk->proto ? " (VIP marker)" : "");
		break;
	case DP_MAP_SLOTS:
		snprintf(out, len, "service %u rev %u slot %u", slk->svc_id, slk->rev, slk->slot);
		break;
	case DP_MAP_SOURCE_RANGES:
		memcpy(ip.w, rgk->addr, sizeof(ip.w));
		snprintf(out, len, "service %u range %s/%u", ntohl(rgk->svc_id),
			 addr_format(&ip, where), rgk->prefixlen - 32 - (addr_is_v4(&ip) ? 96 : 0));
		break;
	case DP_MAP_NODE_ADDRS:
		memcpy(ip.w, key, sizeof(ip.w));
		snprintf(out, len, "node address %s", addr_format(&ip, where));
		break;
	default:
		snprintf(out, len, "backend %u", *(const __u32 *)key);
	}
}

/* The first repair of a map, for its log line: which entry, and what. */
static void rc_note(struct rc_count *c, enum dp_map map, const void *key, const char *what)
{
	char text[128];

	if (c->first[0])
		return;
	rc_describe(map, key, text, sizeof(text));
	snprintf(c->first, sizeof(c->first), "%s %s", text, what);
}

/* One entry read from the map: compared, rewritten or deleted. */
static void rc_entry(struct sync_engine *eng, struct rc_set *s, const void *key,
		     const void *value, uint32_t hash, struct rc_count *c)
{
	unsigned char *e = rc_find(s, key, hash);

	if (!e) {
		/* An orphan is the engine's own, kept for open connections. */
		if (s->map == DP_MAP_REVNAT && hmap_get(&eng->rn_orphans, key, s->ks))
			return;
		wr_del(eng, s->map, key);
		c->unknown++;
		rc_note(c, s->map, key, "not written by ferryd, removed");
		return;
	}
	e[s->ks + s->vs] = 1;
	if (memcmp(e + s->ks, value, s->vs) == 0)
		return;
	if (wr_put(eng, s->map, key, e + s->ks) == 0) {
		c->altered++;
		rc_note(c, s->map, key, "held another value, rewritten");
	}
}

/* A map without batch reads: its keys, then each value. */
static int64_t rc_walk(struct sync_engine *eng, struct rc_set *s, struct rc_count *c)
{
	size_t n;
	unsigned char *keys = map_keys(eng, s->map, s->ks, &n), value[64];

	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < n && s->vs <= sizeof(value); i++)
		if (mio_lookup(eng, s->map, keys + i * s->ks, value) == 0)
			rc_entry(eng, s, keys + i * s->ks, value,
				 (uint32_t)hmap_hash_bytes(keys + i * s->ks, s->ks), c);
	free(keys);
	return (int64_t)n;
}

/* count entries read, each compared; the index slot of entry i is asked
 * for RC_AHEAD entries before it is probed. */
static void rc_batch(struct sync_engine *eng, struct rc_set *s, const unsigned char *keys,
		     const unsigned char *values, size_t count, struct rc_count *c)
{
	uint32_t ahead[RC_AHEAD];

	for (size_t i = 0; i < count + RC_AHEAD; i++) {
		uint32_t hash = 0;
		size_t j = i - RC_AHEAD;

		if (i < count) {
			hash = (uint32_t)hmap_hash_bytes(keys + i * s->ks, s->ks);
			__builtin_prefetch(&s->index[hash & s->mask]);
		}
		if (i >= RC_AHEAD)
			rc_entry(eng, s, keys + j * s->ks, values + j * s->vs, ahead[i % RC_AHEAD], c);
		ahead[i % RC_AHEAD] = hash;
	}
}

/* Read the whole map in batches; returns entries read, or -errno. */
static int64_t rc_dump(struct sync_engine *eng, struct rc_set *s, struct rc_count *c)
{
	__u32 token = 0, count, batch = RC_BATCH_BYTES / (__u32)s->vs;
	unsigned char *keys, *values;
	void *in = NULL;
	int64_t read = 0;
	int err = 0;

	if (s->map == DP_MAP_SOURCE_RANGES)
		return rc_walk(eng, s, c);
	keys = malloc(batch * s->ks);
	values = malloc(batch * s->vs);
	if (!keys || !values) {
		free(keys);
		free(values);
		return -ENOMEM;
	}
	do {
		count = batch;
		err = mio_lookup_batch(eng, s->map, in, &token, keys, values, &count);
		if (!err || err == -ENOENT)
			rc_batch(eng, s, keys, values, count, c);
		read += count;
		in = &token;
	} while (!err);
	free(keys);
	free(values);
	if (err == -EOPNOTSUPP && !read)
		return rc_walk(eng, s, c);
	return err == -ENOENT ? read : err;
}

/* What the record holds and the map did not show: written again. */
static void rc_missing(struct sync_engine *eng, struct rc_set *s, struct rc_count *c)
{
	for (size_t i = 0; i < s->n; i++) {
		unsigned char *e = s->data + i * s->es;

		if (e[s->ks + s->vs] || wr_put(eng, s->map, e, e + s->ks))
			continue;
		c->missing++;
		rc_note(c, s->map, e, "was gone, written again");
	}
}

static void rc_log(enum dp_map map, const struct rc_count *c)
{
	if (c->missing || c->altered || c->unknown)
		log_warn("sync", "%s was changed by someone else: %" PRIu64 " entries missing, "
			 "%" PRIu64 " altered, %" PRIu64 " unknown; put back (first: %s)",
			 dp_map_label(map), c->missing, c->altered, c->unknown, c->first);
}

/* ferry_config, as the engine last wrote it. */
static void rc_config(struct sync_engine *eng, struct sync_repairs *out)
{
	struct dp_config seen;
	uint32_t zero = 0;

	if (!eng->config_known ||
	    mio_lookup(eng, DP_MAP_CONFIG, &zero, &seen) ||
	    memcmp(&seen, &eng->config, sizeof(seen)) == 0 ||
	    wr_put(eng, DP_MAP_CONFIG, &zero, &eng->config))
		return;
	out->altered++;
	log_warn("sync", "ferry_config was changed by someone else: put back");
}

static void rc_free(struct rc_set *s)
{
	free(s->data);
	free(s->index);
}

/* ferry_fast4 follows ferry_services4 (datapath/fast_map.h) and is checked
 * against its writer's copy. Returns the entries read. */
static int64_t rc_fast(struct sync_engine *eng, struct sync_repairs *out)
{
	struct fast_repairs r;
	int64_t n;

	if (!eng->maps.fast)
		return 0;
	n = fast_map_check(eng->maps.fast, &r);
	out->missing += r.missing;
	out->altered += r.altered;
	out->unknown += r.unknown;
	return n > 0 ? n : 0;
}

int64_t sync_reconcile(struct sync_engine *eng, struct sync_repairs *out)
{
	size_t n_svcs;
	const struct applied_svc **svcs = rc_svcs(eng, &n_svcs);
	int64_t compared = 0;

	memset(out, 0, sizeof(*out));
	rc_config(eng, out);
	if (!svcs) {
		log_error("sync", "out of memory comparing the maps with what was written");
		return -1;
	}
	for (int i = 0; i < RC_MAPS; i++) {
		struct rc_count c = { 0 };
		struct rc_set s;
		int64_t n;

		if (!rc_fill(eng, i, &s, svcs, n_svcs)) {
			rc_free(&s);
			free(svcs);
			log_error("sync", "out of memory comparing %s with what was written",
				  dp_map_label(s.map));
			return -1;
		}
		n = rc_dump(eng, &s, &c);
		if (n < 0) {
			log_error("sync", "cannot read %s to compare it: %s", dp_map_label(s.map),
				  strerror((int)-n));
		} else {
			rc_missing(eng, &s, &c);
			rc_log(s.map, &c);
			out->missing += c.missing;
			out->altered += c.altered;
			out->unknown += c.unknown;
			compared += n;
		}
		rc_free(&s);
	}
	free(svcs);
	return compared + rc_fast(eng, out);
}
