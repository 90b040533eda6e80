/* Service lookup. A miss on (VIP, port, proto) is checked against the VIP
 * marker (port 0, proto 0) so an undefined port on a known ClusterIP is
 * refused (B17) instead of reaching whatever listens on the host. */
#ifndef FERRY_BPF_LOOKUP_H
#define FERRY_BPF_LOOKUP_H

#include <bpf/bpf_endian.h>

#include "lib/maps.h"
#include "lib/sockaddr.h"

enum lookup_result {
	LOOKUP_NOT_SERVICE,
	LOOKUP_UNKNOWN_PORT,
	LOOKUP_FOUND,
};

/* key's entry, in its family's map (include/ferry/maps.h): an IPv4
 * frontend (v4: key is v4-mapped) under its 8-byte svc_key4. Every lookup
 * of a frontend is this. Callers pass v4 as a constant where the hook
 * fixes the family: the verifier cannot merge what follows a lookup in one
 * map with what follows one in the other, so a family known only at run
 * time doubles its work from there on. */
static __always_inline struct svc_entry *svc_find(const struct svc_key *key, bool v4)
{
	struct svc_key4 k4;

	if (!v4)
		return bpf_map_lookup_elem(&ferry_services6, key);
	k4.addr = key->addr[3];
	__builtin_memcpy(&k4.port, &key->port, sizeof(__u32));
	return bpf_map_lookup_elem(&ferry_services4, &k4);
}

static __always_inline bool addr_is_loopback(const __u32 addr[4])
{
	if (addr[0] == 0 && addr[1] == 0 && addr[2] == bpf_htonl(0xffff))
		return (bpf_ntohl(addr[3]) >> 24) == 127;
	return addr[0] == 0 && addr[1] == 0 && addr[2] == 0 && addr[3] == bpf_htonl(1);
}

/* A NodePort answers on every node address, and on loopback for the
 * node's own sockets (B22), through one wildcard entry per family, so a
 * node address change rewrites one small map and no service entry. Only
 * destinations in the NodePort range pay for the extra lookups, and only
 * loopback ones for the network namespace's cookie: a pod's loopback is its
 * own, so only sockets of the node's namespace (ferryd's) get loopback
 * NodePorts. On a hit, key holds the wildcard: the key to look the service
 * up again with. */
static __always_inline struct svc_value *svc_lookup_node_port(struct svc_key *key, bool v4,
								struct bpf_sock_addr *ctx)
{
	struct dp_config *cfg;
	__u32 zero = 0;
	__u16 port = bpf_ntohs(key->port);

	cfg = bpf_map_lookup_elem(&ferry_config, &zero);
	if (!cfg || port < cfg->node_port_min || port > cfg->node_port_max)
		return NULL;
	if (addr_is_loopback(key->addr)) {
		if (bpf_get_netns_cookie(ctx) != cfg->node_netns_cookie)
			return NULL;
	} else if (!bpf_map_lookup_elem(&ferry_node_addrs, key->addr)) {
		return NULL;
	}
	key->addr[0] = 0;
	key->addr[1] = 0;
	key->addr[2] = v4 ? bpf_htonl(0xffff) : 0;
	key->addr[3] = 0;
	return (struct svc_value *)svc_find(key, v4);
}

/* key's port, proto and scope in one 32-bit store. The hash and the
 * compare of the lookup read them as one word, and a load that spans
 * several narrower stores cannot take its data from them: it waits for them
 * to reach the cache (about 20 cycles on AMD Zen). */
static __always_inline void svc_key_set_port(struct svc_key *key, __u16 port, __u8 proto,
					     __u8 scope)
{
	__u32 word = port | (__u32)proto << 16 | (__u32)scope << 24;

	_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "svc_key's last word");
	__builtin_memcpy(&key->port, &word, sizeof(word));
}

static __always_inline enum lookup_result
svc_lookup(struct svc_key *key, bool v4, struct svc_value **out)
{
	struct svc_value *svc = (struct svc_value *)svc_find(key, v4);
	struct svc_key vip = {};

	if (svc) {
		*out = svc;
		return LOOKUP_FOUND;
	}
	vip.addr[0] = key->addr[0];
	vip.addr[1] = key->addr[1];
	vip.addr[2] = key->addr[2];
	vip.addr[3] = key->addr[3];
	if (svc_find(&vip, v4))
		return LOOKUP_UNKNOWN_PORT;
	return LOOKUP_NOT_SERVICE;
}

#endif
