/* Nodes: the name, the zone label (B31) and the addresses a NodePort
 * answers on (B22), for the API source's own Node and a snapshot's Nodes. */
#include <stdlib.h>
#include <string.h>

#include "common/intern.h"
#include "model/decode_priv.h"

#define LABEL_ZONE "topology.kubernetes.io/zone"

static int node_addr_cmp(const void *a, const void *b)
{
	return addr_compare(a, b);
}

/* status.addresses of type InternalIP and ExternalIP that are IPs, sorted,
 * each once (Hostname and DNS entries name no address). */
static size_t node_addrs(const cJSON *obj, struct ferry_ip *out)
{
	const cJSON *addrs = decode_field(decode_field(obj, "status"), "addresses"), *a;
	size_t n = 0, kept = 0;

	if (!cJSON_IsArray(addrs))
		return 0;
	cJSON_ArrayForEach(a, addrs) {
		const char *type = decode_string(a, "type", "");
		const char *text = decode_string(a, "address", NULL);

		if (type && (strcmp(type, "InternalIP") == 0 || strcmp(type, "ExternalIP") == 0) &&
		    addr_parse(text, &out[n]) > 0)
			n++;
	}
	if (n)
		qsort(out, n, sizeof(*out), node_addr_cmp);
	for (size_t i = 0; i < n; i++)
		if (!kept || !addr_equal(&out[i], &out[kept - 1]))
			out[kept++] = out[i];
	return kept;
}

enum decode_result decode_node(const cJSON *obj, const struct decode_meta *meta,
			       struct model_objects *into, char *why, size_t why_len)
{
	const cJSON *addrs = decode_field(decode_field(obj, "status"), "addresses");
	const char *zone = decode_string(meta->labels, LABEL_ZONE, "");
	size_t cap = cJSON_IsArray(addrs) ? (size_t)cJSON_GetArraySize(addrs) : 0;
	struct model_node node = { 0 };
	struct ferry_ip *ips = cap ? calloc(cap, sizeof(*ips)) : NULL;

	if (cap && !ips)
		return decode_why(meta, why, why_len, "out of memory");
	node.n_addrs = cap ? node_addrs(obj, ips) : 0;
	node.addrs = ips;
	node.name = intern_get(meta->name);
	node.zone = intern_get(zone ? zone : "");
	if (!node.name || !node.zone) {
		objects_free_node(&node);
		return decode_why(meta, why, why_len, "out of memory");
	}
	if (objects_add_node(into, &node) < 0)
		return decode_why(meta, why, why_len, "out of memory");
	return DECODE_OK;
}
