/* The maps and links ferryd pins under its bpffs folder. ferryctl and the
 * sync engine reach the maps through these descriptors only. */
#ifndef FERRY_PINNED_H
#define FERRY_PINNED_H

#include <stddef.h>

struct fast_map;

/* DP_MAP_SERVICES is ferry_services6, and with DP_MAP_SERVICES4 the one
 * map of svc_key the rest of userspace sees: the sync engine reaches the two
 * through sync/mapio.c, ferryctl through datapath/svc_map.h. */
enum dp_map {
	DP_MAP_SERVICES4,
	DP_MAP_SERVICES,
	DP_MAP_FAST4,
	DP_MAP_SLOTS,
	DP_MAP_BACKENDS,
	DP_MAP_REVNAT,
	DP_MAP_SK_REVNAT,
	DP_MAP_AFFINITY,
	DP_MAP_STATS,
	DP_MAP_STATE,
	DP_MAP_NODE_ADDRS,
	DP_MAP_SOURCE_RANGES,
	DP_MAP_CT,
	DP_MAP_CONFIG,
	DP_MAP_RR,
	DP_MAP_MAGLEV,
	DP_MAP_SVC_NAMES,
	DP_MAP_CONNS,
	DP_MAP_SK_CONN,
	DP_MAP_PEER_MARK,
	DP_MAP__COUNT,
};

#define DP_HOOK_COUNT 9
/* dp_hook_names' sock_release: attached only while a least-conn set may
 * count sockets (datapath_want_release), since every socket's close in the
 * cgroup pays for it. */
#define DP_HOOK_RELEASE 8

struct dp_maps {
	int fd[DP_MAP__COUNT];
	void *maglev_cells;      /* ferry_maglev mapped (dp_maps_map_cells), or NULL */
	struct fast_map *fast;   /* ferry_fast4's writer: ferryd's (datapath/svc_map.c
				  * feeds it), NULL elsewhere */
	size_t maglev_len;
};

/* Names as pinned, and as the BPF object declares them. */
extern const char *const dp_map_names[DP_MAP__COUNT];
/* map's name for a log line: dp_map_names', but "ferry_services4/6" for
 * DP_MAP_SERVICES where it stands for both (the sync engine's view). */
const char *dp_map_label(enum dp_map map);
/* Maps an older layout pinned that this one has not: unpinned when ferryd
 * pins its own, and by ferryd --cleanup. */
#define DP_RETIRED_MAP_COUNT 1
extern const char *const dp_retired_map_names[DP_RETIRED_MAP_COUNT];
extern const char *const dp_hook_names[DP_HOOK_COUNT];

/* <bpffs>/<map name> and <bpffs>/links/<hook>. */
void pinned_map_path(const char *bpffs, const char *name, char *out, size_t len);
void pinned_link_path(const char *bpffs, const char *hook, char *out, size_t len);

/* Open every pinned map. Returns 0, or -errno (logged, naming the map). */
int dp_maps_open_pinned(const char *bpffs, struct dp_maps *maps);
void dp_maps_close(struct dp_maps *maps);
/* Map ferry_maglev's cells into memory for writing (it is BPF_F_MMAPABLE).
 * 0, or -errno: the cells are then written through bpf(2). */
int dp_maps_map_cells(struct dp_maps *maps);
void dp_maps_unmap_cells(struct dp_maps *maps);

#endif
