/* loadBalancerSourceRanges (B26): ferry_source_ranges holds, per service
 * port, the prefixes its LB IPs admit, keyed (svc_id, prefix) in an LPM
 * trie. Frontends flagged SVC_FLAG_SOURCE_RANGES admit only what matches,
 * so new prefixes are written before the flag is set and old ones deleted
 * after it is cleared. */
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "sync/state.h"

static void prefix_mask(struct ferry_prefix *p)
{
	for (int i = 0; i < 4; i++) {
		int bits = p->len - 32 * i;
		uint32_t keep = bits >= 32 ? 0xffffffffu : bits <= 0 ? 0 : ~(0xffffffffu >> bits);

		p->addr.w[i] &= htonl(keep);
	}
}

static int prefix_cmp(const void *x, const void *y)
{
	const struct ferry_prefix *a = x, *b = y;
	int c = addr_compare(&a->addr, &b->addr);

	return c ? c : (int)a->len - (int)b->len;
}

static bool prefix_in(const struct ferry_prefix *list, size_t n, const struct ferry_prefix *p)
{
	return n && bsearch(p, list, n, sizeof(*list), prefix_cmp);
}

static void rg_key(struct source_range_key *k, uint32_t svc_id, const struct ferry_prefix *p)
{
	memset(k, 0, sizeof(*k));
	k->prefixlen = 32 + p->len;
	k->svc_id = htonl(svc_id);
	memcpy(k->addr, p->addr.w, sizeof(k->addr));
}

/* Delete list[i] for each i not in keep[]. */
static void rg_delete_except(struct sync_engine *eng, uint32_t svc_id,
			     const struct ferry_prefix *list, size_t n,
			     const struct ferry_prefix *keep, size_t n_keep)
{
	struct source_range_key k;

	for (size_t i = 0; i < n; i++) {
		if (prefix_in(keep, n_keep, &list[i]))
			continue;
		rg_key(&k, svc_id, &list[i]);
		wr_del(eng, DP_MAP_SOURCE_RANGES, &k);
	}
}

int rg_put(struct sync_engine *eng, const struct applied_svc *a, const struct desired_svc *d,
	   struct ferry_prefix **want, size_t *n)
{
	/* Most ports have no ranges: nothing is allocated for them. */
	struct ferry_prefix *w = d->n_source_ranges ? calloc(d->n_source_ranges, sizeof(*w))
						    : NULL;
	const uint8_t one = 1;
	size_t kept = 0;

	if (!w && d->n_source_ranges)
		return -1;
	for (size_t i = 0; i < d->n_source_ranges; i++) {
		w[i] = d->source_ranges[i];
		prefix_mask(&w[i]);
	}
	if (d->n_source_ranges)
		qsort(w, d->n_source_ranges, sizeof(*w), prefix_cmp);
	for (size_t i = 0; i < d->n_source_ranges; i++)
		if (!kept || prefix_cmp(&w[kept - 1], &w[i]))
			w[kept++] = w[i];
	for (size_t i = 0; i < kept; i++) {
		struct source_range_key k;

		if (prefix_in(a->ranges, a->n_ranges, &w[i]))
			continue;
		rg_key(&k, a->value.svc_id, &w[i]);
		if (wr_put(eng, DP_MAP_SOURCE_RANGES, &k, &one)) {
			rg_abort(eng, a, w, i);
			return -1;
		}
	}
	*want = w;
	*n = kept;
	return 0;
}

void rg_commit(struct sync_engine *eng, struct applied_svc *a, struct ferry_prefix *want,
	       size_t n)
{
	rg_delete_except(eng, a->value.svc_id, a->ranges, a->n_ranges, want, n);
	free(a->ranges);
	a->ranges = want;
	a->n_ranges = n;
}

void rg_abort(struct sync_engine *eng, const struct applied_svc *a, struct ferry_prefix *want,
	      size_t n)
{
	rg_delete_except(eng, a->value.svc_id, want, n, a->ranges, a->n_ranges);
	free(want);
}

static int rg_adopt_one(struct applied_svc *a, const struct source_range_key *k)
{
	struct ferry_prefix *grown = realloc(a->ranges, (a->n_ranges + 1) * sizeof(*grown));

	if (!grown)
		return -1;
	a->ranges = grown;
	memcpy(grown[a->n_ranges].addr.w, k->addr, sizeof(k->addr));
	grown[a->n_ranges].len = (uint8_t)(k->prefixlen - 32);
	prefix_mask(&grown[a->n_ranges]);
	a->n_ranges++;
	return 0;
}

size_t rg_adopt(struct sync_engine *eng)
{
	size_t n, removed = 0;
	struct source_range_key *keys =
		map_keys(eng, DP_MAP_SOURCE_RANGES, sizeof(*keys), &n);

	for (size_t i = 0; i < n; i++) {
		struct applied_svc *a = adopt_find(eng, ntohl(keys[i].svc_id));

		if (keys[i].prefixlen >= 32 && keys[i].prefixlen <= 32 + 128 && a &&
		    rg_adopt_one(a, &keys[i]) == 0)
			continue;
		wr_del(eng, DP_MAP_SOURCE_RANGES, &keys[i]);
		removed++;
	}
	free(keys);
	for (struct hmap_node *it = hmap_first(&eng->svcs); it; it = hmap_next(&eng->svcs, it)) {
		struct applied_svc *a = hmap_entry(it, struct applied_svc, by_id);

		if (a->n_ranges)
			qsort(a->ranges, a->n_ranges, sizeof(*a->ranges), prefix_cmp);
	}
	return removed;
}
