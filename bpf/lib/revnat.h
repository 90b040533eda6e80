/* Reverse translation. Per socket, in socket-local storage: it lives and
 * dies with the socket and is never evicted while the socket is open. Each
 * entry ties a backend address to the service address the application used.
 * Beyond FERRY_SOCK_REVNAT_SLOTS services per socket the least recently
 * used entry is reused: replies from that service's backend then show the
 * backend's address, and its UDP stickiness is lost. A reply from a backend
 * two entries name (two services selecting one pod) shows the service last
 * sent through, which is right for all but replies that cross.
 *
 * Creating that storage is an allocation (and an RCU free at close) per
 * socket, most of what a connect() would cost, and rewriting it is most of
 * what a connect() on a socket that has it costs. A connected socket needs
 * it only to answer for its one peer. So a TCP or UDP socket that connected
 * to a backend through the ClusterIP its ferry_revnat entry names gets none:
 * getpeername() and a connected socket's recvmsg() find the service in
 * ferry_revnat. Unconnected UDP keeps its storage: it talks to many peers,
 * one of them perhaps a backend reached by its own address.
 *
 * Such a connect() does not look for storage either (a third of a connected
 * UDP connect()'s cost): a connected socket reads only the entry its own
 * connect() wrote (sock_revnat.peer), so entries of earlier unconnected
 * datagrams cannot stand for its peer, and a UDP socket that connects again
 * (still SOCK_ESTABLISHED) forgets its old peer's entry. One case escapes:
 * a UDP socket that disconnects (AF_UNSPEC: no hook runs) and connects
 * through a ClusterIP to the backend its previous connect() reached through
 * another frontend shows that frontend as its peer. */
#ifndef FERRY_BPF_REVNAT_H
#define FERRY_BPF_REVNAT_H

#include "lib/maps.h"
#include "lib/sockaddr.h"
#include "lib/stats.h"

static __always_inline struct sock_revnat *revnat_get(struct bpf_sock *sk, bool create)
{
	__u64 flags = create ? BPF_SK_STORAGE_GET_F_CREATE : 0;

	if (!sk)
		return NULL;
	return bpf_sk_storage_get(&ferry_sk_revnat, sk, NULL, flags);
}

/* Whether a connect() to b through key can leave the reverse translation
 * to ferry_revnat: b's entry names this service port's ClusterIP (the slot
 * says so), and key is that ClusterIP, not a NodePort, LB IP or externalIP
 * of the same port. */
static __always_inline bool revnat_shared_serves(const struct svc_key *key,
						 const struct svc_value *svc,
						 const struct slot_value *b)
{
	return (key->proto == IPPROTO_TCP || key->proto == IPPROTO_UDP) &&
	       (b->flags & SLOT_FLAG_REVNAT_OWNER) && !(svc->flags & SVC_FLAG_EXTERNAL);
}

/* A connected socket's peer is its only one: a UDP socket's only when
 * connected (SOCK_ESTABLISHED, as TCP names it). */
static __always_inline bool revnat_peer_only(const struct bpf_sock *sk, __u8 proto)
{
	if (proto == IPPROTO_TCP)
		return true;
	return proto == IPPROTO_UDP && sk && sk->state == 1 /* TCP_ESTABLISHED */;
}

/* The ferry_revnat entry of a backend (proto IPPROTO_TCP or _UDP), copied
 * out; v->svc_id 0 when there is none. */
static __always_inline void revnat_shared_get(const __u32 addr[4], __u16 port, __u8 proto,
					      struct revnat_value *out)
{
	struct revnat_key key = { .port = port, .proto = proto };
	struct revnat_value *v;

	addr_copy(key.addr, addr);
	v = bpf_map_lookup_elem(&ferry_revnat, &key);
	if (v)
		*out = *v;
	else
		out->svc_id = 0;
}

/* Whether a UDP socket may hold a peer entry (struct peer_mark): an array
 * lookup the verifier inlines, where the socket's storage takes a helper
 * call. */
static __always_inline bool revnat_peer_marked(void)
{
	__u32 zero = 0;
	struct peer_mark *m = bpf_map_lookup_elem(&ferry_peer_mark, &zero);

	return !m || m->seen;
}

/* Said before a UDP socket keeps a peer entry. The line is written once. */
static __always_inline void revnat_peer_mark(__u8 proto)
{
	__u32 zero = 0;
	struct peer_mark *m;

	if (proto != IPPROTO_UDP)
		return;
	m = bpf_map_lookup_elem(&ferry_peer_mark, &zero);
	if (m && !m->seen)
		m->seen = 1;
}

/* A connect() that leaves its peer to ferry_revnat. Only a UDP socket that
 * was connected (connect() again) may hold an entry for an old peer; a TCP
 * socket's hook runs only while it is unconnected. */
static __always_inline void revnat_forget_peer(const struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct sock_revnat *st;

	if (!sk || sk->state != 1 /* TCP_ESTABLISHED */ || !revnat_peer_marked())
		return;
	st = revnat_get(sk, false);
	if (st)
		st->peer = 0;
}

/* The entry a connected socket's connect() wrote, if it names the peer. */
static __always_inline struct sock_revnat_entry *
revnat_find_peer(struct sock_revnat *st, const __u32 addr[4], __u16 port)
{
	__u32 i = st->peer - 1;
	struct sock_revnat_entry *e;

	if (i >= FERRY_SOCK_REVNAT_SLOTS)
		return NULL;
	e = &st->entry[i];
	if (!e->svc_id || e->backend_port != port || !addr_eq(e->backend_addr, addr))
		return NULL;
	return e;
}

/* The index of the entry for the service at (addr, port); -1 when none. */
static __always_inline int revnat_svc_index(struct sock_revnat *st, const __u32 addr[4],
					    __u16 port)
{
	for (int i = 0; i < FERRY_SOCK_REVNAT_SLOTS; i++) {
		struct sock_revnat_entry *e = &st->entry[i];

		if (e->svc_id && e->svc_port == port && addr_eq(e->svc_addr, addr))
			return i;
	}
	return -1;
}

static __always_inline struct sock_revnat_entry *
revnat_find_svc(struct sock_revnat *st, const __u32 addr[4], __u16 port)
{
	int i = revnat_svc_index(st, addr, port);

	return i < 0 ? NULL : &st->entry[i & (FERRY_SOCK_REVNAT_SLOTS - 1)];
}

/* The scans below return as they find, or carry a clock, never the
 * pointer or index of the best entry so far: a value that may name any of
 * 8 entries, a constant on each of the verifier's paths, multiplies its
 * states (a quarter of a second per program once); a clock read from an
 * entry is one unknown value on all of them. Slots are a power of two, so
 * a mask keeps an index's bound. */

static __always_inline bool revnat_names_backend(const struct sock_revnat_entry *e,
						 const __u32 addr[4], __u16 port)
{
	return e->svc_id && e->backend_port == port && addr_eq(e->backend_addr, addr);
}

/* The most recently used entry naming this backend: the newest clock among
 * the matches, then the entry that holds it. Clocks start at 1
 * (revnat_touch). */
static __always_inline struct sock_revnat_entry *
revnat_find_backend(struct sock_revnat *st, const __u32 addr[4], __u16 port)
{
	__u32 newest = 0;

	for (int i = 0; i < FERRY_SOCK_REVNAT_SLOTS; i++) {
		struct sock_revnat_entry *e = &st->entry[i];

		if (revnat_names_backend(e, addr, port) &&
		    (!newest || (__s32)(e->used - newest) > 0))
			newest = e->used;
	}
	if (!newest)
		return NULL;
	for (int i = 0; i < FERRY_SOCK_REVNAT_SLOTS; i++) {
		struct sock_revnat_entry *e = &st->entry[i];

		if (e->used == newest && revnat_names_backend(e, addr, port))
			return e;
	}
	return NULL;
}

/* Whether an entry of another service than svc_id names this backend. */
static __always_inline bool revnat_backend_shared(struct sock_revnat *st, const __u32 addr[4],
						  __u16 port, __u32 svc_id)
{
	for (int i = 0; i < FERRY_SOCK_REVNAT_SLOTS; i++) {
		struct sock_revnat_entry *e = &st->entry[i];

		if (e->svc_id != svc_id && revnat_names_backend(e, addr, port))
			return true;
	}
	return false;
}

/* Clocks are never 0, which revnat_find_backend reads as "no match". */
static __always_inline void revnat_touch(struct sock_revnat *st, struct sock_revnat_entry *e)
{
	if (!++st->clock)
		st->clock = 1;
	e->used = st->clock;
}

/* The index of the entry for this service, else of a free one, else of
 * the least recently used (its clock, then the entry that holds it). */
static __always_inline __u32 revnat_claim(struct sock_revnat *st, const __u32 svc_addr[4],
					  __u16 svc_port)
{
	int found = revnat_svc_index(st, svc_addr, svc_port);
	__u32 oldest;

	if (found >= 0)
		return found;
	oldest = st->entry[0].used;
	for (int i = 0; i < FERRY_SOCK_REVNAT_SLOTS; i++) {
		struct sock_revnat_entry *e = &st->entry[i];

		if (!e->svc_id)
			return i;
		if ((__s32)(e->used - oldest) < 0)
			oldest = e->used;
	}
	stat_inc(STAT_REVNAT_EVICT);
	for (int i = 1; i < FERRY_SOCK_REVNAT_SLOTS; i++)
		if (st->entry[i].used == oldest)
			return i;
	return 0;
}

/* Entry i of st names svc (reached at svc_key) for backend b; connected:
 * it is the socket's peer from now on. */
static __always_inline void revnat_record(struct sock_revnat *st, __u32 i,
					  const struct svc_key *svc_key,
					  const struct svc_value *svc,
					  const struct slot_value *b, bool connected)
{
	struct sock_revnat_entry *e = &st->entry[i & (FERRY_SOCK_REVNAT_SLOTS - 1)];

	if (connected) {
		revnat_peer_mark(svc_key->proto);
		st->peer = (i & (FERRY_SOCK_REVNAT_SLOTS - 1)) + 1;
	}
	revnat_touch(st, e);
	addr_copy(e->svc_addr, svc_key->addr);
	addr_copy(e->backend_addr, b->addr);
	e->svc_port = svc_key->port;
	e->backend_port = b->port;
	e->svc_rev = svc->rev;
	e->backend_id = b->backend_id;
	e->svc_id = svc->svc_id;
}

/* A socket connected to a backend's own address, not through a service,
 * must keep seeing that address: ferry_revnat would show the service. Its
 * storage gets an entry naming the backend as its own service (backend_id
 * 0: what the reaper leaves alone). */
static __always_inline void revnat_mark_direct(struct bpf_sock *sk, const struct svc_key *key)
{
	struct revnat_key rkey = { .port = key->port, .proto = key->proto };
	struct sock_revnat_entry *e;
	struct revnat_value *v;
	struct sock_revnat *st;
	__u32 svc_id, i;

	addr_copy(rkey.addr, key->addr);
	v = bpf_map_lookup_elem(&ferry_revnat, &rkey);
	if (!v)
		return;
	svc_id = v->svc_id;
	st = revnat_get(sk, true);
	if (!st) {
		stat_inc(STAT_SK_STORAGE_FULL);
		return;
	}
	i = revnat_claim(st, key->addr, key->port) & (FERRY_SOCK_REVNAT_SLOTS - 1);
	e = &st->entry[i];
	revnat_peer_mark(key->proto);
	st->peer = i + 1;
	revnat_touch(st, e);
	addr_copy(e->svc_addr, key->addr);
	addr_copy(e->backend_addr, key->addr);
	e->svc_port = key->port;
	e->backend_port = key->port;
	e->svc_rev = 0;
	e->backend_id = 0;
	e->svc_id = svc_id;
}

#endif
