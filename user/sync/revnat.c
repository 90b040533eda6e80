/* ferry_revnat: for each TCP backend, the ClusterIP it stands for, so a TCP
 * socket that connected through that ClusterIP needs no socket storage
 * (getpeername() asks the map). A backend of several service ports can name
 * only one: its owner, the first to take it. The others' slots lack
 * SLOT_FLAG_REVNAT_OWNER and their sockets keep socket storage. Holders are
 * counted, not listed, so a backend shared by every service costs O(1) per
 * change.
 *
 * An owner that lets go of a backend leaves its entry in place, an orphan:
 * connections made while it owned the backend outlive its membership (a
 * readiness flap, a pod draining), and their getpeername() must still show
 * the ClusterIP (B20). The next port to write a set holding the backend
 * takes the entry over; orphans nobody takes go after RN_ORPHAN_TTL_S, or
 * oldest first beyond RN_ORPHAN_MAX. */
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "sync/state.h"

#define RN_ORPHAN_TTL_S 3600
#define RN_ORPHAN_MAX 65536

struct rn_ref {
	struct hmap_node node;
	struct revnat_key key;
	struct applied_svc *owner; /* NULL: no entry, or an orphan */
	size_t holders;            /* service ports whose set holds it */
	struct rn_ref *o_prev, *o_next; /* in eng->rn_orphans; NULL when not one */
	time_t orphan_since;       /* CLOCK_MONOTONIC seconds */
};

static time_t rn_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void orphan_add(struct sync_engine *eng, struct rn_ref *ref)
{
	struct rn_ref *head = eng->rn_orphans;

	ref->orphan_since = rn_now();
	if (!head) {
		ref->o_prev = ref->o_next = ref;
		eng->rn_orphans = ref;
	} else {
		ref->o_next = head;
		ref->o_prev = head->o_prev;
		head->o_prev->o_next = ref;
		head->o_prev = ref;
	}
	eng->n_rn_orphans++;
}

static void orphan_unlink(struct sync_engine *eng, struct rn_ref *ref)
{
	if (!ref->o_next)
		return;
	if (ref->o_next == ref) {
		eng->rn_orphans = NULL;
	} else {
		ref->o_prev->o_next = ref->o_next;
		ref->o_next->o_prev = ref->o_prev;
		if (eng->rn_orphans == ref)
			eng->rn_orphans = ref->o_next;
	}
	ref->o_prev = ref->o_next = NULL;
	eng->n_rn_orphans--;
}

/* Freed once nothing holds it and it has no entry. */
static void rn_put(struct sync_engine *eng, struct rn_ref *ref)
{
	if (ref->holders || ref->owner || ref->o_next)
		return;
	hmap_remove(&eng->revnat, &ref->node);
	free(ref);
}

static void rn_key(struct revnat_key *key, const struct applied_backend *b)
{
	memset(key, 0, sizeof(*key));
	memcpy(key->addr, b->addr.w, sizeof(key->addr));
	key->port = htons(b->port);
	key->proto = IPPROTO_TCP;
}

static struct rn_ref *rn_find(const struct sync_engine *eng, const struct revnat_key *key)
{
	struct hmap_node *n = hmap_get(&eng->revnat, key, sizeof(*key));

	return n ? hmap_entry(n, struct rn_ref, node) : NULL;
}

static struct rn_ref *rn_get(struct sync_engine *eng, const struct revnat_key *key)
{
	struct rn_ref *ref = rn_find(eng, key);

	if (ref || !(ref = calloc(1, sizeof(*ref))))
		return ref;
	ref->key = *key;
	hmap_put(&eng->revnat, &ref->node, &ref->key, sizeof(ref->key));
	return ref;
}

/* The ClusterIP of a TCP port, the frontend without SVC_FLAG_EXTERNAL. */
static const struct svc_key *rn_primary(const struct applied_svc *a, const struct fe_want *want,
					size_t n)
{
	if (a->proto != IPPROTO_TCP)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!(want[i].flags & SVC_FLAG_EXTERNAL) && want[i].key.scope == SVC_SCOPE_ALL)
			return &want[i].key;
	return NULL;
}

bool rn_primary_changed(const struct applied_svc *a, const struct fe_want *want, size_t n)
{
	const struct svc_key *p = rn_primary(a, want, n);

	if (!p || !a->rn_has_primary)
		return !p != !a->rn_has_primary;
	return memcmp(p, &a->rn_primary, sizeof(*p)) != 0;
}

static bool rn_write(struct sync_engine *eng, const struct applied_svc *a, const struct rn_ref *ref)
{
	struct revnat_value v = { .svc_port = a->rn_primary.port, .svc_id = a->value.svc_id };

	memcpy(v.svc_addr, a->rn_primary.addr, sizeof(v.svc_addr));
	return wr_put(eng, DP_MAP_REVNAT, &ref->key, &v) == 0;
}

static int backend_order(const struct applied_backend *x, const struct applied_backend *y)
{
	int c = addr_compare(&x->addr, &y->addr);

	return c ? c : (int)x->port - (int)y->port;
}

/* Whether b is in set[] (sorted), walking *j forward. */
static bool in_set(const struct applied_backend *b, const struct applied_backend *set, size_t n,
		   size_t *j)
{
	while (*j < n && backend_order(&set[*j], b) < 0)
		(*j)++;
	return *j < n && backend_order(&set[*j], b) == 0;
}

void rn_take(struct sync_engine *eng, struct applied_svc *a, const struct fe_want *want,
	     size_t n_want, struct applied_backend *nb, size_t n,
	     const struct applied_backend *old, size_t n_old)
{
	const struct svc_key *primary = rn_primary(a, want, n_want);
	struct revnat_key key;
	size_t j = 0;

	a->rn_has_primary = primary != NULL;
	if (primary)
		a->rn_primary = *primary;
	for (size_t i = 0; i < n; i++) {
		bool held = in_set(&nb[i], old, n_old, &j);
		struct rn_ref *ref;

		nb[i].slot_flags = 0;
		if (!primary)
			continue;
		rn_key(&key, &nb[i]);
		ref = held ? rn_find(eng, &key) : rn_get(eng, &key);
		if (!ref)
			continue;
		ref->holders += !held;
		if (!ref->owner && rn_write(eng, a, ref)) {
			orphan_unlink(eng, ref);
			ref->owner = a;
		}
		if (ref->owner == a)
			nb[i].slot_flags = SLOT_FLAG_REVNAT_OWNER;
	}
}

void rn_release(struct sync_engine *eng, struct applied_svc *a, const struct applied_backend *from,
		size_t n_from, const struct applied_backend *keep, size_t n_keep)
{
	struct revnat_key key;
	size_t j = 0;

	if (!a->rn_has_primary)
		return;
	for (size_t i = 0; i < n_from; i++) {
		struct rn_ref *ref;

		if (in_set(&from[i], keep, n_keep, &j))
			continue;
		rn_key(&key, &from[i]);
		if (!(ref = rn_find(eng, &key)))
			continue;
		if (ref->owner == a) {
			ref->owner = NULL;
			orphan_add(eng, ref);
		}
		if (ref->holders)
			ref->holders--;
		rn_put(eng, ref);
	}
}

void rn_expire(struct sync_engine *eng)
{
	time_t now = rn_now();
	struct rn_ref *ref;

	while ((ref = eng->rn_orphans) &&
	       (now - ref->orphan_since >= RN_ORPHAN_TTL_S || eng->n_rn_orphans > RN_ORPHAN_MAX)) {
		wr_del(eng, DP_MAP_REVNAT, &ref->key);
		orphan_unlink(eng, ref);
		rn_put(eng, ref);
	}
}

/* An adopted port: the ClusterIP among its frontends, its holds, and the
 * entries naming it. */
static void rn_adopt_svc(struct sync_engine *eng, struct applied_svc *a)
{
	struct revnat_key key;
	struct revnat_value v;

	for (size_t i = 0; i < a->n_frontends && a->proto == IPPROTO_TCP; i++)
		if (!(a->frontends[i].flags & SVC_FLAG_EXTERNAL) &&
		    a->frontends[i].key.scope == SVC_SCOPE_ALL) {
			a->rn_primary = a->frontends[i].key;
			a->rn_has_primary = true;
			break;
		}
	for (size_t i = 0; i < a->n_backends && a->rn_has_primary; i++) {
		struct applied_backend *b = &a->backends[i];
		struct rn_ref *ref;
		bool named;

		rn_key(&key, b);
		if (!(ref = rn_get(eng, &key)))
			continue;
		ref->holders++;
		named = bpf_map_lookup_elem(eng->maps.fd[DP_MAP_REVNAT], &key, &v) == 0 &&
			v.svc_id == a->value.svc_id && v.svc_port == a->rn_primary.port &&
			memcmp(v.svc_addr, a->rn_primary.addr, sizeof(v.svc_addr)) == 0;
		if (named && !ref->owner)
			ref->owner = a;
		/* A slot that claims an entry naming another (or none) must go. */
		if ((b->slot_flags & SLOT_FLAG_REVNAT_OWNER) && ref->owner != a)
			a->rn_stale = true;
	}
}

/* Entries no adopted port owns are orphans from now on: the connections
 * they answer for may still be open. */
void rn_adopt(struct sync_engine *eng)
{
	struct revnat_key *keys;
	size_t n;

	for (struct hmap_node *it = hmap_first(&eng->svcs); it; it = hmap_next(&eng->svcs, it))
		rn_adopt_svc(eng, hmap_entry(it, struct applied_svc, by_id));
	keys = map_keys(eng->maps.fd[DP_MAP_REVNAT], sizeof(*keys), &n);
	for (size_t i = 0; i < n; i++) {
		struct rn_ref *ref = rn_get(eng, &keys[i]);

		if (ref && !ref->owner && !ref->o_next)
			orphan_add(eng, ref);
	}
	free(keys);
}

void rn_clear(struct sync_engine *eng)
{
	struct hmap_node *n, *next;

	for (n = eng->revnat.buckets ? hmap_first(&eng->revnat) : NULL; n; n = next) {
		next = hmap_next(&eng->revnat, n);
		free(hmap_entry(n, struct rn_ref, node));
	}
	hmap_free(&eng->revnat);
}
