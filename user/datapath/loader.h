/* Loading the socket-LB object, and swapping it into place.
 *
 * Restart is make-before-break: a new ferryd loads its programs and fills
 * its maps while the previous generation still serves; then it attaches its
 * links beside the old ones, unpins the old links (which detaches them) and
 * pins its own. The socket-storage map is adopted from the pins, so sockets
 * keep their reverse translation across restarts. */
#ifndef FERRY_LOADER_H
#define FERRY_LOADER_H

#include <stdint.h>

#include "datapath/pinned.h"

struct ferry_sock_lb;

struct dp_limits {
	uint32_t max_services;
	uint32_t max_backends;
	uint32_t max_per_service;
};

struct datapath {
	struct ferry_sock_lb *skel;
	struct dp_maps maps;          /* borrowed from skel */
	struct bpf_link *links[DP_HOOK_COUNT];
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
