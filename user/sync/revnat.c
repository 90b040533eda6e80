/* ferry_revnat: for each TCP and UDP backend, the ClusterIP it stands for,
 * so a socket that connected through that ClusterIP needs no socket
 * storage (getpeername() and a connected socket's recvmsg() ask the map). A backend of several service ports can name
 * only one: its owner, the first to take it, whose slots carry
 * SLOT_FLAG_REVNAT_OWNER. The others' sockets keep socket storage.
 *
 * The map itself says who owns what: a port takes a backend with an update
 * that fails when the entry exists (BPF_NOEXIST), and its slots' flags
 * remember the outcome, so ferryd holds nothing per backend. Only the first
 * apply into fresh maps, whose writes are staged, keeps a set of the keys
 * taken until it ends.
 *
 * An owner that lets go of a backend leaves its entry in place, an orphan:
 * connections made while it owned the backend outlive its membership (a
 * readiness flap, a pod draining), and their getpeername() must still show
 * the ClusterIP (B20). The next port to write a set holding the backend
 * takes the entry over; orphans nobody takes go after RN_ORPHAN_TTL_S, or
 * oldest first beyond RN_ORPHAN_MAX. */
#include <bpf/bpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "sync/state.h"

#define RN_ORPHAN_TTL_S 3600
#define RN_ORPHAN_MAX 65536

/* An entry no port owns, in eng->rn_orphans (by key) and in the ring
 * eng->rn_oldest (oldest first). */
struct rn_orphan {
	struct hmap_node node;
	struct revnat_key key;
	struct rn_orphan *prev, *next;
	time_t since;              /* CLOCK_MONOTONIC seconds */
};

/* A key taken during the first (staged) apply. They come in chunks big
 * enough for malloc to map each apart, so that all of them go back to the
 * system when the apply ends, whatever was allocated between them. */
struct rn_taken {
	struct hmap_node node;
	struct revnat_key key;
};

#define RN_CHUNK 4096

struct rn_chunk {
	struct rn_chunk *next;
	size_t used;
	struct rn_taken taken[RN_CHUNK];
};

static struct rn_taken *taken_alloc(struct sync_engine *eng)
{
	struct rn_chunk *c = eng->rn_chunks;

	if (!c || c->used == RN_CHUNK) {
		if (!(c = malloc(sizeof(*c))))
			return NULL;
		c->next = eng->rn_chunks;
		c->used = 0;
		eng->rn_chunks = c;
	}
	return &c->taken[c->used++];
}

static void rn_key(struct revnat_key *key, const struct applied_backend *b, uint8_t proto)
{
	memset(key, 0, sizeof(*key));
	memcpy(key->addr, b->addr.w, sizeof(key->addr));
	key->port = htons(b->port);
	key->proto = proto;
}

/* The protocols whose sockets connect() through the socket LB. */
static bool rn_proto(uint8_t proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP;
}

static time_t rn_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static struct rn_orphan *orphan_find(const struct sync_engine *eng, const struct revnat_key *key)
{
	struct hmap_node *n = hmap_get(&eng->rn_orphans, key, sizeof(*key));

	return n ? hmap_entry(n, struct rn_orphan, node) : NULL;
}

static void orphan_add(struct sync_engine *eng, const struct revnat_key *key)
{
	struct rn_orphan *o, *head = eng->rn_oldest;

	if (orphan_find(eng, key) || !(o = calloc(1, sizeof(*o))))
		return;
	o->key = *key;
	o->since = rn_now();
	hmap_put(&eng->rn_orphans, &o->node, &o->key, sizeof(o->key));
	if (!head) {
		o->prev = o->next = o;
		eng->rn_oldest = o;
		return;
	}
	o->next = head;
	o->prev = head->prev;
	head->prev->next = o;
	head->prev = o;
}

static void orphan_drop(struct sync_engine *eng, struct rn_orphan *o)
{
	if (o->next == o) {
		eng->rn_oldest = NULL;
	} else {
		o->prev->next = o->next;
		o->next->prev = o->prev;
		if (eng->rn_oldest == o)
			eng->rn_oldest = o->next;
	}
	hmap_remove(&eng->rn_orphans, &o->node);
	free(o);
}

/* The ClusterIP of a TCP or UDP port, the frontend without
 * SVC_FLAG_EXTERNAL. */
static const struct svc_key *rn_primary(const struct applied_svc *a, const struct fe_want *want,
					size_t n)
{
	if (!rn_proto(a->proto))
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

/* Whether a took key: an orphan is overwritten, a free key written; a key
 * another port owns is left to it. */
static bool rn_own(struct sync_engine *eng, const struct applied_svc *a,
		   const struct revnat_key *key)
{
	struct revnat_value v = { .svc_port = a->rn_primary.port, .svc_id = a->value.svc_id };
	struct rn_orphan *o = orphan_find(eng, key);
	struct rn_taken *t;
	int err;

	memcpy(v.svc_addr, a->rn_primary.addr, sizeof(v.svc_addr));
	if (o) {
		if (wr_put(eng, DP_MAP_REVNAT, key, &v))
			return false;
		orphan_drop(eng, o);
		return true;
	}
	if (eng->staging) {
		if (hmap_get(&eng->rn_taken, key, sizeof(*key)) || !(t = taken_alloc(eng)) ||
		    wr_put(eng, DP_MAP_REVNAT, key, &v))
			return false;
		t->key = *key;
		hmap_put(&eng->rn_taken, &t->node, &t->key, sizeof(t->key));
		return true;
	}
	err = mio_update(eng, DP_MAP_REVNAT, key, &v, BPF_NOEXIST);
	if (!err) {
		eng->writes++;
		return true;
	}
	if (err == -E2BIG || err == -ENOMEM)
		eng->stats.map_full_errors++;
	return false;
}


/* b's twin in set[] (sorted), walking *j forward; NULL when absent. */
static const struct applied_backend *in_set(const struct applied_backend *b,
					    const struct applied_backend *set, size_t n, size_t *j)
{
	while (*j < n && backend_sort_cmp(&set[*j], b) < 0)
		(*j)++;
	return *j < n && backend_sort_cmp(&set[*j], b) == 0 ? &set[*j] : NULL;
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
		const struct applied_backend *was = in_set(&nb[i], old, n_old, &j);

		nb[i].slot_flags = 0;
		if (!primary)
			continue;
		rn_key(&key, &nb[i], a->proto);
		if ((was && (was->slot_flags & SLOT_FLAG_REVNAT_OWNER)) || rn_own(eng, a, &key))
			nb[i].slot_flags = SLOT_FLAG_REVNAT_OWNER;
	}
}

void rn_release(struct sync_engine *eng, uint8_t proto, const struct applied_backend *from,
		size_t n_from, const struct applied_backend *keep, size_t n_keep)
{
	struct revnat_key key;
	size_t j = 0;

	for (size_t i = 0; i < n_from; i++) {
		if (in_set(&from[i], keep, n_keep, &j) ||
		    !(from[i].slot_flags & SLOT_FLAG_REVNAT_OWNER))
			continue;
		rn_key(&key, &from[i], proto);
		orphan_add(eng, &key);
	}
}

static void rn_taken_clear(struct sync_engine *eng)
{
	while (eng->rn_chunks) {
		struct rn_chunk *next = eng->rn_chunks->next;

		free(eng->rn_chunks);
		eng->rn_chunks = next;
	}
	hmap_free(&eng->rn_taken);
	hmap_init(&eng->rn_taken, 16);
}

void rn_expire(struct sync_engine *eng)
{
	time_t now = rn_now();
	struct rn_orphan *o;

	while ((o = eng->rn_oldest) &&
	       (now - o->since >= RN_ORPHAN_TTL_S || eng->rn_orphans.count > RN_ORPHAN_MAX)) {
		wr_del(eng, DP_MAP_REVNAT, &o->key);
		orphan_drop(eng, o);
	}
	if (!eng->staging && eng->rn_chunks)
		rn_taken_clear(eng);
}

/* An adopted port's ClusterIP, and whether its owning slots still match
 * the pinned entries (when not, its set is written again). */
static void rn_adopt_svc(struct sync_engine *eng, struct applied_svc *a)
{
	struct revnat_key key;
	struct revnat_value v;

	for (size_t i = 0; i < a->n_frontends && rn_proto(a->proto); i++)
		if (!(a->frontends[i].flags & SVC_FLAG_EXTERNAL) &&
		    a->frontends[i].key.scope == SVC_SCOPE_ALL) {
			a->rn_primary = a->frontends[i].key;
			a->rn_has_primary = true;
			break;
		}
	for (size_t i = 0; i < a->n_backends; i++) {
		if (!(a->backends[i].slot_flags & SLOT_FLAG_REVNAT_OWNER))
			continue;
		rn_key(&key, &a->backends[i], a->proto);
		if (!a->rn_has_primary ||
		    mio_lookup(eng, DP_MAP_REVNAT, &key, &v) ||
		    v.svc_id != a->value.svc_id || v.svc_port != a->rn_primary.port ||
		    memcmp(v.svc_addr, a->rn_primary.addr, sizeof(v.svc_addr)) != 0)
			a->rn_stale = true;
	}
}

/* Whether an adopted port owns key: the one the entry names, with a slot
 * that says so. */
static bool rn_adopted_owner(struct sync_engine *eng, const struct revnat_key *key)
{
	struct applied_svc *a;
	struct revnat_value v;

	struct applied_backend want = { .port = ntohs(key->port) };
	const struct applied_backend *b;

	if (mio_lookup(eng, DP_MAP_REVNAT, key, &v) ||
	    !(a = adopt_find(eng, v.svc_id)) || a->rn_stale)
		return false;
	/* a's backends are sorted (adoption sorts them): a search, not a walk
	 * per entry, for a port of thousands. */
	memcpy(want.addr.w, key->addr, sizeof(want.addr.w));
	b = bsearch(&want, a->backends, a->n_backends, sizeof(*b), backend_sort_cmp);
	return b && (b->slot_flags & SLOT_FLAG_REVNAT_OWNER);
}

/* Entries no adopted port owns are orphans from now on: the connections
 * they answer for may still be open. */
void rn_adopt(struct sync_engine *eng)
{
	struct revnat_key *keys;
	size_t n;

	for (struct hmap_node *it = hmap_first(&eng->svcs); it; it = hmap_next(&eng->svcs, it))
		rn_adopt_svc(eng, hmap_entry(it, struct applied_svc, by_id));
	keys = map_keys(eng, DP_MAP_REVNAT, sizeof(*keys), &n);
	for (size_t i = 0; i < n; i++)
		if (!rn_adopted_owner(eng, &keys[i]))
			orphan_add(eng, &keys[i]);
	free(keys);
}

void rn_clear(struct sync_engine *eng)
{
	while (eng->rn_oldest)
		orphan_drop(eng, eng->rn_oldest);
	rn_taken_clear(eng);
	hmap_free(&eng->rn_orphans);
	hmap_free(&eng->rn_taken);
}
