/* Loading the socket-LB object, and swapping it into place; the UDP
 * reaper's object (bpf/reaper.bpf.c) beside it, on its maps, when used.
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
#include <stddef.h>
#include <stdint.h>

#include "datapath/pinned.h"

struct ferry_maps;
struct ferry_sock_lb;
struct ferry_reaper;
struct agent_state;

struct dp_limits {
	uint32_t max_services;
	uint32_t max_backends;
	uint32_t max_per_service;
	uint32_t max_affinity;     /* remembered (client, service port) pairs */
	uint32_t max_ct;           /* per-packet flow entries (two per flow) */
	uint32_t max_source_ranges;/* loadBalancerSourceRanges prefixes, over all ports */
	uint32_t max_node_addrs;   /* this node's addresses */
	uint32_t max_maglev_entries; /* Maglev table entries, over all sets */
};

/* The most backends the maps hold at once: --max-backends, and one
 * service's new set beside its old one (make-before-break); the sync engine
 * keeps the steady state within --max-backends. */
uint32_t dp_limits_backends_held(const struct dp_limits *limits);

/* The UDP socket iterator's link, pinned as <bpffs>/links/udp-reap while a
 * ferryd uses it: what ferryctl status reads to say whether B21 is served.
 * Reading the pinned file runs the reaper in the reader's namespace. */
#define DP_REAP_LINK "udp-reap"

struct dp_loader;

struct datapath {
	struct ferry_maps *maps_skel; /* the maps (bpf/maps.bpf.c) */
	struct ferry_sock_lb *skel;   /* the programs, on maps_skel's maps */
	struct dp_maps maps;          /* borrowed from maps_skel */
	int link_fd[DP_HOOK_COUNT];   /* the cgroup links, held (made or adopted) so
				       * that datapath_heal_links can check them;
				       * -1 before datapath_publish */
	uint64_t cgroup_id;           /* the cgroup they serve */
	struct ferry_reaper *reaper;  /* the UDP reaper's program, on maps_skel's
				       * maps; NULL without the reaper */
	struct bpf_link *reap_link;   /* the UDP socket iterator (reap.c); NULL
				       * without the reaper */
	bool adopted;                 /* maps are the pinned ones */
	bool release_wanted;          /* sock_release attached at publish, or now
				       * (datapath_want_release) */
	struct dp_loader *loader;     /* the thread loading all this, until joined;
				       * after the programs load, only while the
				       * reaper's object is pending */
	int reaper_err;               /* the reaper's load, once taken */
};

/* Start loading the datapath on a thread of its own: the maps are created
 * (empty, unpinned), or the pinned ones adopted, then the programs loaded
 * on them; the kernel does both while ferryd reads its source. The UDP
 * reaper's object (bpf/reaper.bpf.c), only when udp_reaper (the kernel has
 * bpf_sock_destroy and it is wanted), loads on the same thread once
 * datapath_reaper_load says so, and only datapath_reaper waits for it.
 * Returns 0 or -errno. */
int datapath_load(struct datapath *dp, const char *bpffs, const struct dp_limits *limits,
		  bool udp_reaper);

/* Wait for the maps: then maps and adopted are set. Returns 0, or -errno
 * after a log line that says why a map could not be created. */
int datapath_maps(struct datapath *dp);

/* Wait for the socket LB's programs (datapath_publish does), not the
 * reaper's: 0, or -errno after a log line that names the program the kernel
 * refused. Nothing is attached or pinned before they are loaded. */
int datapath_programs(struct datapath *dp);

/* A least-conn set is about to be written: its connections count until
 * their sockets close, so the close hook (sock_release) must run. Attached
 * now when published, else by datapath_publish; kept until --cleanup (a
 * socket counted before stays counted until it closes). Returns 0 or
 * -errno, logged. */
int datapath_want_release(struct datapath *dp, const char *bpffs, const char *cgroup);

/* After datapath_publish, once ferryd's thread is done with the first
 * publish's own loads (the per-packet programs): start loading the UDP
 * reaper's object. Its parse of the kernel's BTF then neither delays the
 * first generation nor adds to the first fill's peak of memory. */
void datapath_reaper_load(struct datapath *dp);

/* After datapath_reaper_load: wait for the UDP reaper's object, the first
 * time, then create its iterator and pin its link. Returns 0 (also without
 * the reaper), or -errno after a log line that says why, on every call
 * after. Until then reap_link is NULL. */
int datapath_reaper(struct datapath *dp, const char *bpffs);

/* Why a load failed, from libbpf's warnings: a map the kernel would not
 * create (its capacity, or CAP_BPF) is not a program the kernel refused
 * (its verifier, or capabilities), and each has its own advice. */
struct dp_load_failure {
	char map[64];   /* the first map that could not be created, or "" */
	char prog[64];  /* the first program refused, or "" */
};

/* Take note of one of libbpf's warning lines. */
void dp_load_failure_note(struct dp_load_failure *f, const char *line);
/* The log line for a load that failed with err (-errno). */
void dp_load_failure_explain(const struct dp_load_failure *f, int err, char *out, size_t len);

/* Once the programs are loaded (datapath_programs), attach to the cgroup,
 * unpin the UDP reaper's link an earlier ferryd left when this one has no
 * reaper (datapath_reaper pins this one's) and replace whatever is pinned
 * under bpffs. */
int datapath_publish(struct datapath *dp, const char *bpffs, const char *cgroup);

/* B34: attach again each cgroup hook whose link someone detached (bpftool
 * link detach) and put back a program someone swapped in, from the held
 * links' info (no map is read). Each repair is logged, naming the hook.
 * Returns the number repaired; one that could not be is logged. */
int datapath_heal_links(struct datapath *dp, const char *bpffs, const char *cgroup);

/* Close descriptors; pinned state stays and keeps serving. */
void datapath_close(struct datapath *dp);

/* What a previous ferryd published under bpffs (its generation and ID
 * counters); all zero when nothing was. */
void datapath_pinned_state(const char *bpffs, struct agent_state *out);

/* Detach and remove everything pinned under bpffs. Returns 0 or -errno. */
int datapath_cleanup(const char *bpffs);

#endif
