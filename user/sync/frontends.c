/* The frontends of a service port: every address it answers on (ClusterIP,
 * NodePort wildcard, LB IPs, externalIPs) is its own ferry_services4/6 key,
 * all carrying the port's svc_id and rev, each with its own flags. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "datapath/svc_entry.h"
#include "datapath/svc_map.h"
#include "sync/state.h"

static int key_cmp(const struct svc_key *a, const struct svc_key *b)
{
	return memcmp(a, b, sizeof(*a));
}

static int want_cmp(const void *x, const void *y)
{
	return key_cmp(&((const struct fe_want *)x)->key, &((const struct fe_want *)y)->key);
}

static bool is_cluster_ip(uint32_t flags)
{
	return !(flags & SVC_FLAG_EXTERNAL);
}

static uint32_t fe_flags(const struct desired_svc *d, uint8_t kind)
{
	uint32_t f;

	switch (kind) {
	case FRONTEND_NODE_PORT:
		f = SVC_FLAG_EXTERNAL | SVC_FLAG_NODE_PORT;
		break;
	case FRONTEND_LOAD_BALANCER:
		f = SVC_FLAG_EXTERNAL | SVC_FLAG_LOAD_BALANCER |
		    (d->n_source_ranges ? SVC_FLAG_SOURCE_RANGES : 0);
		break;
	case FRONTEND_EXTERNAL_IP:
		f = SVC_FLAG_EXTERNAL;
		break;
	default:
		return 0;
	}
	return f | (d->ext_local || d->external ? SVC_FLAG_EXT_LOCAL : 0);
}

static void want_set(struct fe_want *w, const struct desired_svc *d, const struct ferry_ip *addr,
		     uint16_t port, uint8_t kind)
{
	memset(w, 0, sizeof(*w));
	memcpy(w->key.addr, addr->w, sizeof(w->key.addr));
	w->key.port = htons(port);
	w->key.proto = d->proto;
	w->key.scope = d->external ? SVC_SCOPE_EXTERNAL : SVC_SCOPE_ALL;
	w->flags = fe_flags(d, kind);
}

struct applied_frontend *fe_owner(const struct sync_engine *eng, const struct svc_key *key)
{
	struct hmap_node *n = hmap_get(&eng->frontends, key, sizeof(*key));

	return n ? hmap_entry(n, struct applied_frontend, by_key) : NULL;
}

/* Another service port still desired holds w's key: w is left out of d. */
static bool fe_conflict(struct sync_engine *eng, const struct desired_svc *d,
			const struct applied_svc *a, const struct fe_want *w, bool *takeover)
{
	struct applied_frontend *f = fe_owner(eng, &w->key);
	char text[ADDR_STR_LEN + 8];
	struct ferry_ip ip;

	if (!f || f->svc == a)
		return false;
	if (!f->svc->seen) {
		*takeover = true;
		return false;
	}
	if (eng->report_conflicts && conflict_note(eng, &w->key, d->id)) {
		memcpy(ip.w, w->key.addr, sizeof(ip.w));
		addr_format_port(&ip, ntohs(w->key.port), text, sizeof(text));
		eng->stats.conflicts++;
		log_warn("sync", "%s: frontend %s/%s is already programmed for %s; left out "
			 "until that one lets it go", d->id, text, proto_name(w->key.proto),
			 f->svc->id);
	}
	return true;
}

int fe_wanted(struct sync_engine *eng, const struct desired_svc *d,
	      const struct applied_svc *a, struct fe_want **out, size_t *n,
	      size_t *skipped, bool *takeover)
{
	size_t total = d->n_frontends, kept = 0;
	struct fe_want *w = calloc(total + 1, sizeof(*w));

	*skipped = 0;
	*takeover = false;
	if (!w)
		return -1;
	for (size_t i = 0; i < d->n_frontends; i++)
		want_set(&w[i], d, &d->frontends[i].addr, d->frontends[i].port,
			 d->frontends[i].kind);
	qsort(w, total, sizeof(*w), want_cmp);
	for (size_t i = 0; i < total; i++) {
		/* The same address twice (an externalIP that is also an LB IP)
		 * is one entry. */
		if (kept && key_cmp(&w[kept - 1].key, &w[i].key) == 0)
			continue;
		if (fe_conflict(eng, d, a, &w[i], takeover)) {
			(*skipped)++;
			continue;
		}
		w[kept++] = w[i];
	}
	*out = w;
	*n = kept;
	return 0;
}

static int vip_ref(struct sync_engine *eng, const struct applied_frontend *f)
{
	struct ferry_ip ip;

	if (!is_cluster_ip(f->flags))
		return 0;
	memcpy(ip.w, f->key.addr, sizeof(ip.w));
	return wr_vip_ref(eng, &ip);
}

static void vip_unref(struct sync_engine *eng, const struct applied_frontend *f)
{
	struct ferry_ip ip;

	if (!is_cluster_ip(f->flags))
		return;
	memcpy(ip.w, f->key.addr, sizeof(ip.w));
	wr_vip_unref(eng, &ip);
}

/* set[] inline in e when it is small enough for its family (the key's):
 * then it has no slots. */
static void fe_inline(struct svc_entry *e, const struct svc_key *key,
		      const struct applied_backend *set, size_t n)
{
	struct ferry_ip vip;

	memcpy(vip.w, key->addr, sizeof(vip.w));
	if (!svc_entry_inline(key->addr, (uint32_t)n))
		return;
	if (addr_is_v4(&vip)) {
		for (size_t i = 0; i < n; i++) {
			e->in.v4[i].addr = set[i].addr.w[3];
			e->in.v4[i].port = htons(set[i].port);
			e->in.v4[i].flags = set[i].slot_flags;
			e->in.v4_backend_id[i] = set[i].id;
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			memcpy(e->in.v6[i].addr, set[i].addr.w, sizeof(e->in.v6[i].addr));
			e->in.v6[i].port = htons(set[i].port);
			e->in.v6[i].flags = set[i].slot_flags;
			e->in.v6[i].backend_id = set[i].id;
		}
	}
}

void fe_entry(struct svc_entry *e, const struct applied_svc *a, const struct svc_key *key,
	      uint32_t flags, const struct applied_backend *set, size_t n)
{
	memset(e, 0, sizeof(*e));
	e->v = a->value;
	e->v.flags |= flags;
	fe_inline(e, key, set, n);
}

static int fe_write(struct sync_engine *eng, const struct applied_svc *a,
		    const struct svc_key *key, uint32_t flags,
		    const struct applied_backend *set, size_t n)
{
	struct svc_entry e;

	fe_entry(&e, a, key, flags, set, n);
	return wr_put(eng, DP_MAP_SERVICES, key, &e);
}

/* eng->frontends, and its count of IPv6 keys (sync_stats' per-map
 * entries). */
static void fe_index(struct sync_engine *eng, struct applied_frontend *f)
{
	hmap_put(&eng->frontends, &f->by_key, &f->key, sizeof(f->key));
	eng->frontends_v6 += !svc_key_is_v4(&f->key);
}

static void fe_unindex_one(struct sync_engine *eng, struct applied_frontend *f)
{
	hmap_remove(&eng->frontends, &f->by_key);
	eng->frontends_v6 -= !svc_key_is_v4(&f->key);
}

/* Whoever holds key (a departing port) lets go of it. */
static void fe_release(struct sync_engine *eng, const struct svc_key *key)
{
	struct applied_frontend *prev = fe_owner(eng, key);

	if (prev) {
		prev->owner = false;
		fe_unindex_one(eng, prev);
	}
}

/* The entry goes; eng->frontends is left to fe_unindex. */
static void fe_drop(struct sync_engine *eng, const struct applied_frontend *f)
{
	if (f->owner) {
		wr_del(eng, DP_MAP_SERVICES, &f->key);
		/* A key another port waits for is free now. */
		eng->room_freed = true;
	}
	vip_unref(eng, f);
}

/* a's frontends out of eng->frontends, before they move. */
static void fe_unindex(struct sync_engine *eng, struct applied_svc *a)
{
	for (size_t i = 0; i < a->n_frontends; i++)
		if (a->frontends[i].owner)
			fe_unindex_one(eng, &a->frontends[i]);
}

/* a's frontends become next[0..n) (a heap array, taken over). One lives in
 * a->one, with no allocation: most service ports have only a ClusterIP.
 * claim[i]: next[i] takes its key from the port that holds it. */
static void fe_place(struct sync_engine *eng, struct applied_svc *a,
		     struct applied_frontend *next, size_t n, const bool *claim)
{
	if (a->frontends != &a->one)
		free(a->frontends);
	if (n == 1)
		a->one = next[0];
	if (n <= 1) {
		free(next);
		next = n ? &a->one : NULL;
	}
	a->frontends = next;
	a->n_frontends = n;
	for (size_t i = 0; i < n; i++) {
		struct applied_frontend *f = &a->frontends[i];

		f->svc = a;
		if (claim && claim[i])
			fe_release(eng, &f->key);
		if (f->owner)
			fe_index(eng, f);
	}
}

/* A new frontend f: its VIP marker, then its entry. False when either
 * fails. */
static bool fe_add(struct sync_engine *eng, const struct applied_svc *a,
		   const struct fe_want *w, struct applied_frontend *f,
		   const struct applied_backend *set, size_t n_set)
{
	memset(f, 0, sizeof(*f));
	f->key = w->key;
	f->flags = w->flags;
	if (vip_ref(eng, f))
		return false;
	if (fe_write(eng, a, &f->key, f->flags, set, n_set)) {
		vip_unref(eng, f);
		return false;
	}
	f->owner = true;
	return true;
}

/* An existing frontend brought to w; false when its entry could not be
 * rewritten (it is then as it was). */
static bool fe_update(struct sync_engine *eng, const struct applied_svc *a,
		      struct applied_frontend *f, const struct fe_want *w, bool every,
		      const struct applied_backend *set, size_t n_set)
{
	bool was_vip = is_cluster_ip(f->flags), is_vip = is_cluster_ip(w->flags);
	struct ferry_ip ip;

	if (!every && !f->stale && f->flags == w->flags && f->owner)
		return true;
	memcpy(ip.w, f->key.addr, sizeof(ip.w));
	if (is_vip && !was_vip && wr_vip_ref(eng, &ip))
		return false;
	if (fe_write(eng, a, &f->key, w->flags, set, n_set)) {
		if (is_vip && !was_vip)
			wr_vip_unref(eng, &ip);
		return false;
	}
	if (was_vip && !is_vip)
		wr_vip_unref(eng, &ip);
	f->flags = w->flags;
	f->stale = false;
	f->owner = true;
	return true;
}

int fe_publish(struct sync_engine *eng, struct applied_svc *a, const struct fe_want *want,
	       size_t n, bool every, const struct applied_backend *set, size_t n_set)
{
	struct applied_frontend *next = calloc(n + 1, sizeof(*next));
	const struct applied_frontend **gone = calloc(a->n_frontends + 1, sizeof(*gone));
	bool *claim = calloc(n + 1, sizeof(*claim));
	size_t i = 0, j = 0, k = 0, n_gone = 0, failed = 0;

	if (!next || !gone || !claim) {
		free(next);
		free(gone);
		free(claim);
		return -1;
	}
	while (i < n || j < a->n_frontends) {
		int c = i == n ? 1 : j == a->n_frontends ? -1 :
			key_cmp(&want[i].key, &a->frontends[j].key);
		bool ok;

		if (c > 0) {
			gone[n_gone++] = &a->frontends[j++];
			continue;
		}
		if (c < 0) {
			ok = claim[k] = fe_add(eng, a, &want[i++], &next[k], set, n_set);
		} else {
			next[k] = a->frontends[j];
			ok = fe_update(eng, a, &next[k], &want[i++], every, set, n_set);
			claim[k] = ok && !a->frontends[j].owner;
			if (!ok)
				gone[n_gone++] = &a->frontends[j];
			j++;
		}
		if (ok)
			k++;
		else
			failed++;
	}
	/* Nothing written: the old entries stay as they were, on the old
	 * revision, and the caller rolls back. */
	if (n && !k && every && failed) {
		free(next);
		free(gone);
		free(claim);
		return -1;
	}
	for (size_t g = 0; g < n_gone; g++)
		fe_drop(eng, gone[g]);
	fe_unindex(eng, a);
	fe_place(eng, a, next, k, claim);
	free(gone);
	free(claim);
	if (failed)
		log_error("sync", "%s: %zu frontends not written (a map is full?); tried again "
			  "when room is freed", a->id, failed);
	return (int)k;
}

void fe_remove_all(struct sync_engine *eng, struct applied_svc *a)
{
	for (size_t i = 0; i < a->n_frontends; i++)
		fe_drop(eng, &a->frontends[i]);
	fe_unindex(eng, a);
	fe_place(eng, a, NULL, 0, NULL);
}

static int fe_cmp(const void *x, const void *y)
{
	return key_cmp(&((const struct applied_frontend *)x)->key,
		       &((const struct applied_frontend *)y)->key);
}

/* The shared value is the first entry's; an entry of another revision (a
 * ferryd stopped between two writes) is rewritten by the first apply.
 * Collected in a heap array, indexed by fe_adopt_done. */
int fe_adopt(struct sync_engine *eng, struct applied_svc *a, const struct svc_key *key,
	     const struct svc_value *v)
{
	struct applied_frontend *grown = realloc(a->frontends,
						 (a->n_frontends + 1) * sizeof(*grown));
	struct svc_value shared = *v;
	struct applied_frontend *f;
	struct ferry_ip ip;

	if (!grown)
		return -ENOMEM;
	a->frontends = grown;
	f = &grown[a->n_frontends];
	memset(f, 0, sizeof(*f));
	shared.flags &= ~(uint32_t)FE_FLAGS;
	if (!a->n_frontends)
		a->value = shared;
	f->stale = memcmp(&shared, &a->value, sizeof(shared)) != 0;
	f->key = *key;
	f->flags = v->flags & FE_FLAGS;
	f->owner = true;
	if (is_cluster_ip(f->flags)) {
		memcpy(ip.w, key->addr, sizeof(ip.w));
		wr_vip_adopt(eng, &ip);
	}
	a->n_frontends++;
	return 0;
}

void fe_adopt_done(struct sync_engine *eng, struct applied_svc *a)
{
	struct applied_frontend *all = a->frontends;
	size_t n = a->n_frontends;

	qsort(all, n, sizeof(*all), fe_cmp);
	a->frontends = NULL;
	a->n_frontends = 0;
	fe_place(eng, a, all, n, NULL);
}
