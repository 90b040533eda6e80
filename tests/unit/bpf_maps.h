/* The service maps as ferryd creates them, small, for the sync engine's
 * unit tests on real BPF maps (test_sync, test_reconcile; root). Include it
 * after cmocka.h: it asserts. */
#ifndef FERRY_TEST_BPF_MAPS_H
#define FERRY_TEST_BPF_MAPS_H

#include <bpf/bpf.h>
#include <unistd.h>

#include "datapath/pinned.h"
#include "ferry/maps.h"

static int map_new(enum bpf_map_type type, size_t key, size_t value, uint32_t max)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts);
	int fd;

	if (type == BPF_MAP_TYPE_HASH || type == BPF_MAP_TYPE_LPM_TRIE)
		opts.map_flags = BPF_F_NO_PREALLOC;
	if (type == BPF_MAP_TYPE_ARRAY && value == sizeof(struct backend_value))
		opts.map_flags = BPF_F_MMAPABLE;
	fd = bpf_map_create(type, NULL, (uint32_t)key, (uint32_t)value, max, &opts);
	assert_true(fd >= 0);
	return fd;
}

static void bpf_maps_create(struct dp_maps *maps)
{
	for (int i = 0; i < DP_MAP__COUNT; i++)
		maps->fd[i] = -1;
	maps->fd[DP_MAP_SERVICES] = map_new(BPF_MAP_TYPE_HASH, sizeof(struct svc_key),
					    sizeof(struct svc_entry), 1024);
	maps->fd[DP_MAP_SERVICES4] = map_new(BPF_MAP_TYPE_HASH, sizeof(struct svc_key4),
					     sizeof(struct svc_entry), 1024);
	maps->fd[DP_MAP_SLOTS] = map_new(BPF_MAP_TYPE_HASH, sizeof(struct slot_key),
					 sizeof(struct slot_value), 512);
	/* The backend_id space of the tests' limits (4 x max_backends). */
	maps->fd[DP_MAP_BACKENDS] = map_new(BPF_MAP_TYPE_ARRAY, sizeof(__u32),
					    sizeof(struct backend_value), 1024);
	maps->fd[DP_MAP_REVNAT] = map_new(BPF_MAP_TYPE_HASH, sizeof(struct revnat_key),
					  sizeof(struct revnat_value), 1024);
	maps->fd[DP_MAP_STATE] = map_new(BPF_MAP_TYPE_ARRAY, sizeof(__u32),
					 sizeof(struct agent_state), 1);
	maps->fd[DP_MAP_NODE_ADDRS] = map_new(BPF_MAP_TYPE_HASH, sizeof(struct node_addr_key),
					      sizeof(struct node_addr_value), 8);
	maps->fd[DP_MAP_SOURCE_RANGES] = map_new(BPF_MAP_TYPE_LPM_TRIE,
						 sizeof(struct source_range_key), 1, 64);
	maps->fd[DP_MAP_CONFIG] = map_new(BPF_MAP_TYPE_ARRAY, sizeof(__u32),
					  sizeof(struct dp_config), 1);
	maps->fd[DP_MAP_SVC_NAMES] = map_new(BPF_MAP_TYPE_HASH, sizeof(__u32),
					     sizeof(struct svc_name), 128);
	maps->fd[DP_MAP_MAGLEV] = map_new(BPF_MAP_TYPE_ARRAY, sizeof(__u32),
					  sizeof(struct maglev_cell), 4096);
}

static void bpf_maps_close(struct dp_maps *maps)
{
	for (int i = 0; i < DP_MAP__COUNT; i++)
		if (maps->fd[i] >= 0)
			close(maps->fd[i]);
}

#endif
