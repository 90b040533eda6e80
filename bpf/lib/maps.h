/* The datapath's maps. Sizes here are defaults: ferryd sets max_entries
 * from its flags before loading. Hash maps are not preallocated, so memory
 * follows what is programmed rather than the configured maximum. */
#ifndef FERRY_BPF_MAPS_H
#define FERRY_BPF_MAPS_H

#include "ferry/maps.h"

/* The frontends by family (include/ferry/maps.h); reached through
 * svc_find (lib/lookup.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FERRY_DEFAULT_MAX_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct svc_key4);
	__type(value, struct svc_entry);
} ferry_services4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FERRY_DEFAULT_MAX_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct svc_key);
	__type(value, struct svc_entry);
} ferry_services6 SEC(".maps");

/* The common ClusterIP ports again, one line each (include/ferry/maps.h);
 * reached through fast_pick (lib/fast.h). Its size is a power of two. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FERRY_DEFAULT_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct fast_entry);
} ferry_fast4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FERRY_DEFAULT_MAX_BACKENDS + FERRY_DEFAULT_MAX_PER_SERVICE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct slot_key);
	__type(value, struct slot_value);
} ferry_slots SEC(".maps");

/* An array by backend_id, sized by ferryd to their space like ferry_conns:
 * writing an element is a copy, where a hash insert allocates and charges
 * it (a third as long; most of a cold start's writes are here). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4 * FERRY_DEFAULT_MAX_BACKENDS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct backend_value);
} ferry_backends SEC(".maps");

/* LRU: a client that stops connecting is forgotten first when it fills. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FERRY_DEFAULT_MAX_AFFINITY);
	__type(key, struct affinity_key);
	__type(value, struct affinity_value);
} ferry_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FERRY_DEFAULT_MAX_BACKENDS + FERRY_DEFAULT_MAX_PER_SERVICE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct revnat_key);
	__type(value, struct revnat_value);
} ferry_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_revnat);
} ferry_sk_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT__COUNT);
	__type(key, __u32);
	__type(value, struct stat_value);
} ferry_stats SEC(".maps");

/* Written by ferryd; read by the socket LB for NodePorts (B22) and by the
 * per-packet path for what is addressed to this node. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FERRY_DEFAULT_MAX_NODE_ADDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct node_addr_key);
	__type(value, struct node_addr_value);
} ferry_node_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FERRY_DEFAULT_MAX_SOURCE_RANGES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct source_range_key);
	__type(value, __u8);
} ferry_source_ranges SEC(".maps");

/* LRU: flows that stop sending are forgotten first when it fills. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FERRY_DEFAULT_MAX_CT);
	__type(key, struct ct_key);
	__type(value, struct ct_value);
} ferry_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dp_config);
} ferry_config SEC(".maps");

/* Round-robin's next slot, by svc_id: one counter per service port that
 * every CPU advances atomically, so the rotation is exact. An array (its
 * lookups are inlined), sized by ferryd to the svc_id space. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4 * FERRY_DEFAULT_MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
} ferry_rr SEC(".maps");

/* By backend_id, sized by ferryd to their space (user/sync/ids.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4 * FERRY_DEFAULT_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend_conns);
} ferry_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_conn);
} ferry_sk_conn SEC(".maps");

/* Sized by ferryd (--max-maglev-entries). Mappable: ferryd writes a table
 * into its run with memcpy, not a syscall per cell. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, FERRY_DEFAULT_MAX_MAGLEV_ENTRIES / FERRY_MAGLEV_PER_CELL);
	__type(key, __u32);
	__type(value, struct maglev_cell);
} ferry_maglev SEC(".maps");

/* Set by the socket LB; ferryd sets it only when it keeps the socket
 * state of maps it does not keep (a migration). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct peer_mark);
} ferry_peer_mark SEC(".maps");

/* Written by ferryd only, for ferryctl; declared here so it is created
 * with BTF. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FERRY_DEFAULT_MAX_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct svc_name);
} ferry_svc_names SEC(".maps");

/* Written by ferryd only; declared here so it is created with BTF. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct agent_state);
} ferry_state SEC(".maps");

#endif
