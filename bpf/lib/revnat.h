/* Per-socket reverse translation, in socket-local storage: it lives and dies
 * with the socket and is never evicted while the socket is open. Each entry
 * ties a backend address to the service address the application used.
 * Beyond FERRY_SOCK_REVNAT_SLOTS services per socket the oldest entry is
 * reused: replies from that service's backend then show the backend's
 * address, and its UDP stickiness is lost. */
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

static __always_inline struct sock_revnat_entry *
revnat_find_svc(struct sock_revnat *st, const __u32 addr[4], __u16 port)
{
	for (int i = 0; i < FERRY_SOCK_REVNAT_SLOTS; i++) {
		struct sock_revnat_entry *e = &st->entry[i];

		if (e->svc_id && e->svc_port == port && addr_eq(e->svc_addr, addr))
			return e;
	}
	return NULL;
}

static __always_inline struct sock_revnat_entry *
revnat_find_backend(struct sock_revnat *st, const __u32 addr[4], __u16 port)
{
	for (int i = 0; i < FERRY_SOCK_REVNAT_SLOTS; i++) {
		struct sock_revnat_entry *e = &st->entry[i];

		if (e->svc_id && e->backend_port == port && addr_eq(e->backend_addr, addr))
			return e;
	}
	return NULL;
}

/* The entry for this service, else a free one, else the oldest. */
static __always_inline struct sock_revnat_entry *
revnat_claim(struct sock_revnat *st, const __u32 svc_addr[4], __u16 svc_port)
{
	struct sock_revnat_entry *e = revnat_find_svc(st, svc_addr, svc_port);
	__u32 victim;

	if (e)
		return e;
	for (int i = 0; i < FERRY_SOCK_REVNAT_SLOTS; i++)
		if (!st->entry[i].svc_id)
			return &st->entry[i];
	victim = st->next % FERRY_SOCK_REVNAT_SLOTS;
	st->next = victim + 1;
	stat_inc(STAT_REVNAT_EVICT);
	return &st->entry[victim];
}

static __always_inline void revnat_record(struct sock_revnat_entry *e,
					  const struct svc_key *svc_key,
					  const struct svc_value *svc,
					  const struct slot_value *b)
{
	addr_copy(e->svc_addr, svc_key->addr);
	addr_copy(e->backend_addr, b->addr);
	e->svc_port = svc_key->port;
	e->backend_port = b->port;
	e->svc_rev = svc->rev;
	e->backend_id = b->backend_id;
	e->svc_id = svc->svc_id;
}

#endif
