#include "datapath/pinned.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"

const char *const dp_map_names[DP_MAP__COUNT] = {
	[DP_MAP_SERVICES] = "ferry_services6",
	[DP_MAP_SERVICES4] = "ferry_services4",
	[DP_MAP_FAST4] = "ferry_fast4",
	[DP_MAP_SLOTS] = "ferry_slots",
	[DP_MAP_BACKENDS] = "ferry_backends",
	[DP_MAP_REVNAT] = "ferry_revnat",
	[DP_MAP_SK_REVNAT] = "ferry_sk_revnat",
	[DP_MAP_AFFINITY] = "ferry_affinity",
	[DP_MAP_STATS] = "ferry_stats",
	[DP_MAP_STATE] = "ferry_state",
	[DP_MAP_NODE_ADDRS] = "ferry_node_addrs",
	[DP_MAP_SOURCE_RANGES] = "ferry_source_ranges",
	[DP_MAP_CT] = "ferry_ct",
	[DP_MAP_CONFIG] = "ferry_config",
	[DP_MAP_RR] = "ferry_rr",
	[DP_MAP_MAGLEV] = "ferry_maglev",
	[DP_MAP_SVC_NAMES] = "ferry_svc_names",
	[DP_MAP_CONNS] = "ferry_conns",
	[DP_MAP_SK_CONN] = "ferry_sk_conn",
	[DP_MAP_PEER_MARK] = "ferry_peer_mark",
};

/* Layout 8's one frontend map, before it was split by family. */
const char *const dp_retired_map_names[DP_RETIRED_MAP_COUNT] = { "ferry_services" };

const char *const dp_hook_names[DP_HOOK_COUNT] = {
	"connect4", "connect6", "sendmsg4", "sendmsg6",
	"recvmsg4", "recvmsg6", "getpeername4", "getpeername6", "sock_release",
};

const char *dp_map_label(enum dp_map map)
{
	return map == DP_MAP_SERVICES ? "ferry_services4/6" : dp_map_names[map];
}

void pinned_map_path(const char *bpffs, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", bpffs, name);
}

void pinned_link_path(const char *bpffs, const char *hook, char *out, size_t len)
{
	snprintf(out, len, "%s/links/%s", bpffs, hook);
}

int dp_maps_open_pinned(const char *bpffs, struct dp_maps *maps)
{
	char path[512];

	maps->maglev_cells = NULL;
	maps->fast = NULL;
	for (int i = 0; i < DP_MAP__COUNT; i++)
		maps->fd[i] = -1;
	for (int i = 0; i < DP_MAP__COUNT; i++) {
		pinned_map_path(bpffs, dp_map_names[i], path, sizeof(path));
		maps->fd[i] = bpf_obj_get(path);
		if (maps->fd[i] < 0) {
			int err = -errno;

			log_error("datapath", "cannot open pinned map %s: %s", path, strerror(errno));
			dp_maps_close(maps);
			return err;
		}
	}
	return 0;
}

void dp_maps_close(struct dp_maps *maps)
{
	for (int i = 0; i < DP_MAP__COUNT; i++) {
		if (maps->fd[i] >= 0)
			close(maps->fd[i]);
		maps->fd[i] = -1;
	}
}

int dp_maps_map_cells(struct dp_maps *maps)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	long page = sysconf(_SC_PAGESIZE);
	size_t bytes;
	void *mem;

	maps->maglev_cells = NULL;
	if (maps->fd[DP_MAP_MAGLEV] < 0 ||
	    bpf_obj_get_info_by_fd(maps->fd[DP_MAP_MAGLEV], &info, &len))
		return -EBADF;
	if (!(info.map_flags & BPF_F_MMAPABLE))
		return -EOPNOTSUPP;
	bytes = (size_t)info.max_entries * info.value_size;
	bytes = (bytes + (size_t)page - 1) / (size_t)page * (size_t)page;
	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, maps->fd[DP_MAP_MAGLEV], 0);
	if (mem == MAP_FAILED)
		return -errno;
	maps->maglev_cells = mem;
	maps->maglev_len = (size_t)info.max_entries * info.value_size;
	return 0;
}

void dp_maps_unmap_cells(struct dp_maps *maps)
{
	long page = sysconf(_SC_PAGESIZE);

	if (maps->maglev_cells)
		munmap(maps->maglev_cells,
		       (maps->maglev_len + (size_t)page - 1) / (size_t)page * (size_t)page);
	maps->maglev_cells = NULL;
}
