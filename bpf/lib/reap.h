/* Connected UDP sockets pinned to a backend that left its service (B21).
 * connect() chose the backend once; later datagrams never pass a sock_addr
 * hook, so they would go to a removed pod until the application gives up.
 * kube-proxy flushes UDP conntrack for this; ferry aborts the socket
 * (bpf_sock_destroy): a waiting recv() gets ECONNABORTED, and send() on the
 * now disconnected socket EDESTADDRREQ, so the application reconnects
 * through the service. */
#ifndef FERRY_BPF_REAP_H
#define FERRY_BPF_REAP_H

#include "lib/maps.h"
#include "lib/revnat.h"
#include "lib/select.h"
#include "lib/sockaddr.h"

#define AF_INET 2
#define SOCK_ESTABLISHED 1 /* TCP_ESTABLISHED: a connected UDP socket */

struct reap_scan {
	struct slot_key key;
	__u32 addr[4];
	__u16 port;
	bool found;
};

static long reap_scan_slot(__u32 slot, void *data)
{
	struct reap_scan *s = data;
	struct slot_value *v;

	s->key.slot = slot;
	v = bpf_map_lookup_elem(&ferry_slots, &s->key);
	if (v && v->port == s->port && addr_eq(v->addr, s->addr)) {
		s->found = true;
		return 1;
	}
	return 0;
}

/* Whether an inline set holds (addr, port). No helper runs during the
 * scan: the entry's element may be reused once one does. */
static __always_inline bool reap_inline_has(const struct svc_entry *e, bool v4, __u32 count,
					    const __u32 addr[4], __u16 port)
{
	for (__u32 i = 0; i < FERRY_SVC_INLINE_V4 && i < count; i++) {
		if (v4 && e->in.v4[i].port == port && e->in.v4[i].addr == addr[3])
			return true;
		if (!v4 && i < FERRY_SVC_INLINE_V6 && e->in.v6[i].port == port &&
		    addr_eq(e->in.v6[i].addr, addr))
			return true;
	}
	return false;
}

/* Still a backend of the service the socket connected to? By address, not
 * ID: a backend that turned terminating gets a new ID but still serves. A
 * socket connected to a backend's own address (backend_id 0) is not the
 * reaper's. */
static __always_inline bool reap_backend_kept(const struct sock_revnat_entry *e)
{
	struct svc_key key = { .port = e->svc_port, .proto = IPPROTO_UDP };
	struct reap_scan scan = {};
	struct svc_value *svc;
	bool v4;

	if (!e->backend_id ||
	    backend_alive(e->backend_id, e->svc_id, e->backend_addr, e->backend_port))
		return true;
	__builtin_memcpy(key.addr, e->svc_addr, sizeof(key.addr));
	v4 = addr_is_v4_mapped(key.addr);
	svc = (struct svc_value *)svc_find(&key, v4);
	if (!svc || !svc->count)
		return false;
	if (set_inline(v4, svc->count))
		return reap_inline_has((const struct svc_entry *)svc, v4, svc->count,
				       e->backend_addr, e->backend_port);
	scan.key.svc_id = svc->svc_id;
	scan.key.rev = svc->rev;
	__builtin_memcpy(scan.addr, e->backend_addr, sizeof(scan.addr));
	scan.port = e->backend_port;
	bpf_loop(svc->count, reap_scan_slot, &scan, 0);
	return scan.found;
}

/* A socket without an entry of its own for its peer connected through the
 * ClusterIP its ferry_revnat entry names, if it has one (revnat.h): the
 * entry outlives the backend's membership (an orphan), long enough for the
 * apply that took the backend out to find this socket. */
static __always_inline bool reap_shared_kept(const __u32 addr[4], __u16 port)
{
	struct sock_revnat_entry e = { .backend_port = port };
	struct revnat_value v;

	revnat_shared_get(addr, port, IPPROTO_UDP, &v);
	if (!v.svc_id)
		return true;
	addr_copy(e.svc_addr, v.svc_addr);
	addr_copy(e.backend_addr, addr);
	e.svc_port = v.svc_port;
	e.svc_id = v.svc_id;
	e.backend_id = ~0U; /* unknown: kept only if its address still serves */
	return reap_backend_kept(&e);
}

/* The socket's peer, family-neutral (IPv4 v4-mapped), as revnat stores it. */
static __always_inline void reap_peer(const struct sock *sk, __u32 addr[4], __u16 *port)
{
	*port = sk->__sk_common.skc_dport;
	if (sk->__sk_common.skc_family == AF_INET) {
		addr_map_v4(addr, sk->__sk_common.skc_daddr);
		return;
	}
	addr[0] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[0];
	addr[1] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[1];
	addr[2] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[2];
	addr[3] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[3];
}

#endif
