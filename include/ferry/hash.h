/* The flow hash Maglev selection uses, shared by the datapath and
 * ferryctl explain so both name the same backend for a flow. It must be
 * the same on every node: no per-node seed, only the flow's own fields.
 * The mixing is MurmurHash3's 32-bit finalizer applied per word: cheap in
 * BPF (a few multiplies, unrolled) and even enough for a table index. */
#ifndef FERRY_HASH_H
#define FERRY_HASH_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define FERRY_HASH_SEED 0x9e3779b9u

static inline __u32 ferry_hash_mix(__u32 h, __u32 word)
{
	word *= 0xcc9e2d51u;
	word = (word << 15) | (word >> 17);
	word *= 0x1b873593u;
	h ^= word;
	h = (h << 13) | (h >> 19);
	return h * 5 + 0xe6546b64u;
}

static inline __u32 ferry_hash_final(__u32 h, __u32 len)
{
	h ^= len;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

/* A client address alone: session affinity's unit (B30). Addresses as in
 * the maps, network order, IPv4 v4-mapped. */
static inline __u32 ferry_hash_client(const __u32 saddr[4])
{
	__u32 h = FERRY_HASH_SEED;

	for (int i = 0; i < 4; i++)
		h = ferry_hash_mix(h, saddr[i]);
	return ferry_hash_final(h, 16);
}

/* An external flow: its source and the frontend it was sent to (ports in
 * network order), the same wherever it arrives. */
static inline __u32 ferry_hash_flow(const __u32 saddr[4], __u16 sport, const __u32 daddr[4],
				    __u16 dport, __u8 proto)
{
	__u32 h = FERRY_HASH_SEED;

	for (int i = 0; i < 4; i++)
		h = ferry_hash_mix(h, saddr[i]);
	for (int i = 0; i < 4; i++)
		h = ferry_hash_mix(h, daddr[i]);
	h = ferry_hash_mix(h, ((__u32)sport << 16) | dport);
	h = ferry_hash_mix(h, proto);
	return ferry_hash_final(h, 40);
}

/* A client on the node: its network namespace (a pod), as session
 * affinity's socket path knows it; the cookie is this node's own, so the
 * choice is stable for the pod, not across nodes. */
static inline __u32 ferry_hash_netns(__u64 netns_cookie)
{
	__u32 h = FERRY_HASH_SEED;

	h = ferry_hash_mix(h, (__u32)netns_cookie);
	h = ferry_hash_mix(h, (__u32)(netns_cookie >> 32));
	return ferry_hash_final(h, 8);
}

/* ferry_fast4's home entry for an IPv4 frontend, svc_key4's two words;
 * mask: the table's size - 1. Finalized: ClusterIPs differ in their last
 * octet, the high byte of a little-endian word, which a multiply alone
 * would leave out of the low bits the mask keeps. */
static inline __u32 ferry_fast_home(__u32 addr, __u32 port_word, __u32 mask)
{
	return ferry_hash_final(addr ^ (port_word * FERRY_HASH_SEED), 0) & mask;
}

#endif
