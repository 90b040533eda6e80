#include "datapath/counters.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *const dp_stat_names[STAT__COUNT] = {
	[STAT_XLATE_V4] = "translated_v4",
	[STAT_XLATE_V6] = "translated_v6",
	[STAT_REVNAT] = "reverse_translated",
	[STAT_SVC_MISS] = "lookups_missed",
	[STAT_NO_BACKEND] = "refused_no_backend",
	[STAT_UNKNOWN_PORT] = "refused_unknown_port",
	[STAT_STICKY_REUSE] = "udp_backend_kept",
	[STAT_SLOT_MISS] = "backend_set_raced",
	[STAT_SK_STORAGE_FULL] = "socket_state_unavailable",
	[STAT_REVNAT_EVICT] = "socket_state_evicted",
	[STAT_AFFINITY_KEPT] = "affinity_kept",
	[STAT_UDP_REAPED] = "udp_sockets_reaped",
	[STAT_NP_XLATE] = "packet_flows_translated",
	[STAT_NP_REVNAT] = "packet_replies_translated",
	[STAT_NP_NO_LOCAL] = "packet_dropped_no_local_endpoint",
	[STAT_NP_SOURCE_DENIED] = "packet_dropped_source_range",
	[STAT_NP_ICMP_SENT] = "packet_icmp_unreachable_sent",
	[STAT_NP_ICMP_LIMITED] = "packet_icmp_unreachable_limited",
	[STAT_NP_BACKEND_GONE] = "packet_flow_backend_replaced",
	[STAT_NP_SNAT_EXHAUSTED] = "packet_dropped_snat_ports_exhausted",
	[STAT_NP_FIB_PASS] = "packet_passed_to_stack_for_route",
	[STAT_NP_PASSED] = "packet_not_translated",
	[STAT_NP_SCTP_TOO_LONG] = "packet_dropped_sctp_too_long",
	[STAT_NP_TOO_BIG] = "packet_icmp_too_big_sent",
	[STAT_REVNAT_SHARED] = "reverse_translated_from_map",
	[STAT_REVNAT_UNSHARED] = "udp_backend_unshared",
	[STAT_LB_STATE_MISSING] = "lb_state_missing",
};

int dp_counters_read(const struct dp_maps *maps, uint64_t out[STAT__COUNT])
{
	int ncpu = libbpf_num_possible_cpus();
	struct stat_value *per_cpu = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*per_cpu)) : NULL;
	int rc = per_cpu ? 0 : -1;

	memset(out, 0, STAT__COUNT * sizeof(*out));
	for (__u32 i = 0; per_cpu && i < STAT__COUNT; i++) {
		if (bpf_map_lookup_elem(maps->fd[DP_MAP_STATS], &i, per_cpu) != 0) {
			rc = -1;
			continue;
		}
		for (int c = 0; c < ncpu; c++)
			out[i] += per_cpu[c].count;
	}
	free(per_cpu);
	return rc;
}

uint32_t dp_map_capacity(const struct dp_maps *maps, enum dp_map map)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(maps->fd[map], &info, &len) != 0)
		return 0;
	return info.max_entries;
}

long long dp_map_count(int fd)
{
	enum { BATCH = 1024 };
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info), batch = 0;
	void *keys = NULL, *values = NULL;
	long long n = 0;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -1;
	keys = malloc((size_t)BATCH * info.key_size);
	values = malloc((size_t)BATCH * info.value_size);
	for (int err = 0, first = 1; keys && values && !err; first = 0) {
		__u32 count = BATCH;

		err = bpf_map_lookup_batch(fd, first ? NULL : &batch, &batch, keys, values,
					   &count, NULL);
		n += count;
		if (err && errno != ENOENT)
			n = -1;
	}
	if (!keys || !values)
		n = -1;
	free(keys);
	free(values);
	return n;
}
