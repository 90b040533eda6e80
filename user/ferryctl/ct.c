/* ferryctl ct list: the per-packet path's flows (ferry_ct), each entry as
 * the tuple it matches and the tuple it rewrites the packet to. */
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "common/addr.h"
#include "ferry/maps.h"
#include "ferryctl/ctl.h"

/* Seconds since the flow's last packet; the datapath stamps
 * bpf_ktime_get_coarse_ns(), CLOCK_MONOTONIC at tick resolution. */
static double ct_age(__u64 last_seen_ns)
{
	struct timespec now;
	__u64 now_ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	now_ns = (__u64)now.tv_sec * 1000000000ULL + (__u64)now.tv_nsec;
	return now_ns > last_seen_ns ? (double)(now_ns - last_seen_ns) / 1e9 : 0;
}

static const char *ct_endpoint(const __u32 addr[4], __u16 port, char *buf, size_t len)
{
	struct ferry_ip ip;

	memcpy(ip.w, addr, sizeof(ip.w));
	return addr_format_port(&ip, ntohs(port), buf, len);
}

static cJSON *ct_json(const struct ct_key *k, const struct ct_value *v)
{
	cJSON *o = cJSON_CreateObject();
	char buf[64];

	cJSON_AddStringToObject(o, "protocol", proto_name(k->proto));
	cJSON_AddStringToObject(o, "direction", v->flags & CT_FLAG_REPLY ? "reply" : "original");
	cJSON_AddStringToObject(o, "source", ct_endpoint(k->saddr, k->sport, buf, sizeof(buf)));
	cJSON_AddStringToObject(o, "destination",
				ct_endpoint(k->daddr, k->dport, buf, sizeof(buf)));
	cJSON_AddStringToObject(o, "new_source",
				ct_endpoint(v->new_saddr, v->new_sport, buf, sizeof(buf)));
	cJSON_AddStringToObject(o, "new_destination",
				ct_endpoint(v->new_daddr, v->new_dport, buf, sizeof(buf)));
	cJSON_AddBoolToObject(o, "snat", v->flags & CT_FLAG_SNAT);
	cJSON_AddNumberToObject(o, "service_id", v->svc_id);
	cJSON_AddNumberToObject(o, "backend_id", v->backend_id);
	cJSON_AddNumberToObject(o, "idle_seconds", ct_age(v->last_seen_ns));
	return o;
}

static void ct_print(const cJSON *o)
{
	printf("%-5s %-8s %-46s %-46s -> %-46s %-46s %s%.0fs\n",
	       cJSON_GetObjectItem(o, "protocol")->valuestring,
	       cJSON_GetObjectItem(o, "direction")->valuestring,
	       cJSON_GetObjectItem(o, "source")->valuestring,
	       cJSON_GetObjectItem(o, "destination")->valuestring,
	       cJSON_GetObjectItem(o, "new_source")->valuestring,
	       cJSON_GetObjectItem(o, "new_destination")->valuestring,
	       cJSON_IsTrue(cJSON_GetObjectItem(o, "snat")) ? "snat " : "",
	       cJSON_GetObjectItem(o, "idle_seconds")->valuedouble);
}

int ctl_ct_list(const struct dp_maps *maps, bool json)
{
	cJSON *list = cJSON_CreateArray();
	struct ct_key key, cursor;
	struct ct_value value;
	void *prev = NULL;

	while (bpf_map_get_next_key(maps->fd[DP_MAP_CT], prev, &key) == 0) {
		cursor = key;
		prev = &cursor;
		if (bpf_map_lookup_elem(maps->fd[DP_MAP_CT], &key, &value) == 0)
			cJSON_AddItemToArray(list, ct_json(&key, &value));
	}
	if (json) {
		ctl_print_json(list);
		return 0;
	}
	printf("%-5s %-8s %-46s %-46s    %-46s %-46s %s\n", "Proto", "Dir", "Source",
	       "Destination", "New source", "New destination", "Idle");
	for (const cJSON *o = list->child; o; o = o->next)
		ct_print(o);
	cJSON_Delete(list);
	return 0;
}
