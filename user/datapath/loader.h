/* Loading the socket-LB object, and swapping it into place.
 *
 * A ferryd that finds maps of its own layout pinned (same FERRY_LAYOUT_VERSION
 * in ferry_state, same types, key and value sizes, capacities and flags)
 * adopts them: its programs are loaded against the live maps and swapped
 * into the pinned links with bpf_link_update, so nothing is detached and
 * nothing is emptied.
 *
 * Any difference is a migration: new maps are created and filled from the
 * source while the old ones still serve, then the new programs are attached
 * beside the old, the old links unpinned (which detaches them) and the new
 * maps and links pinned in their place. The socket-storage map is adopted
 * whenever its layout matches, so open sockets keep their reverse
 * translation; ferryd logs what differed. */
#ifndef FERRY_LOADER_H
#define FERRY_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "datapath/pinned.h"

struct ferry_sock_lb;

struct dp_limits {
	uint32_t max_services;
	uint32_t max_backends;
	uint32_t max_per_service;
	uint32_t max_affinity;     /* remembered (client, service port) pairs */
	uint32_t max_ct;           /* per-packet flow entries (two per flow) */
	uint32_t max_source_ranges;/* loadBalancerSourceRanges prefixes, over all ports */
	uint32_t max_node_addrs;   /* this node's addresses */
};

struct datapath {
	struct ferry_sock_lb *skel;
	struct dp_maps maps;          /* borrowed from skel */
	struct bpf_link *links[DP_HOOK_COUNT]; /* NULL where a pinned link was updated */
	struct bpf_link *reap_link;   /* the UDP socket iterator (reap.c); not pinned */
	bool adopted;                 /* maps are the pinned ones */
};

/* Load programs and create maps (empty, unpinned). Returns 0 or -errno. */
int datapath_load(struct datapath *dp, const char *bpffs, const struct dp_limits *limits);

/* Attach to the cgroup and replace whatever is pinned under bpffs. */
int datapath_publish(struct datapath *dp, const char *bpffs, const char *cgroup);

/* Close descriptors; pinned state stays and keeps serving. */
void datapath_close(struct datapath *dp);

/* The generation a previous ferryd published under bpffs, or 0. */
uint64_t datapath_pinned_generation(const char *bpffs);

/* Detach and remove everything pinned under bpffs. Returns 0 or -errno. */
int datapath_cleanup(const char *bpffs);

#endif
