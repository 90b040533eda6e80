/* A Service's external frontends: nodePorts (B22, B27), LoadBalancer
 * ingress IPs (B24), externalIPs (B25), loadBalancerSourceRanges (B26),
 * externalTrafficPolicy (B16, B23) and healthCheckNodePort (B28). Each
 * field that does not parse is left out and counted; the Service stays. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "model/decode_priv.h"

/* The lists of the Service being decoded, before they move into its ext. */
struct ext_lists {
	struct ferry_ip *ips;
	size_t n_lb, n_ips;
	struct ferry_prefix *ranges;
	size_t n_ranges;
};

static bool ext_has_node_ports(uint8_t type)
{
	return type == SVC_TYPE_NODE_PORT || type == SVC_TYPE_LOAD_BALANCER;
}

/* spec.allocateLoadBalancerNodePorts: false means no NodePort (B27). */
static bool ext_allocates_node_ports(const struct decode_meta *meta, const cJSON *spec)
{
	const cJSON *alloc = decode_field(spec, "allocateLoadBalancerNodePorts");

	if (!alloc || cJSON_IsNull(alloc) || cJSON_IsTrue(alloc))
		return true;
	if (cJSON_IsFalse(alloc))
		return false;
	model_field_ignored(LOG_WARN, "Service %s/%s: spec.allocateLoadBalancerNodePorts: not "
			    "a boolean, taken as true", meta->ns, meta->name);
	return true;
}

bool decode_node_ports(const struct decode_meta *meta, const cJSON *spec, uint8_t type)
{
	if (type == SVC_TYPE_LOAD_BALANCER)
		return ext_allocates_node_ports(meta, spec);
	return type == SVC_TYPE_NODE_PORT;
}

void decode_node_port(const struct decode_meta *meta, const cJSON *item, size_t i,
		      struct model_port *port)
{
	const cJSON *np = decode_field(item, "nodePort");
	int n;

	if (!np || cJSON_IsNull(np))
		return;
	if (!decode_int(np, 0, 65535, &n)) {
		model_field_ignored(LOG_WARN, "Service %s/%s: spec.ports[%zu].nodePort: not a port "
				    "number, no NodePort for this port", meta->ns, meta->name, i);
		return;
	}
	port->node_port = (uint16_t)n;
}

bool decode_prefix(const char *text, struct ferry_prefix *out)
{
	char buf[64], *slash, *end;
	const char *start = text;
	size_t len;
	long bits;
	int family, max;

	while (isspace((unsigned char)*start))
		start++;
	len = strlen(start);
	while (len && isspace((unsigned char)start[len - 1]))
		len--;
	if (len >= sizeof(buf))
		return false;
	memcpy(buf, start, len);
	buf[len] = '\0';
	slash = strchr(buf, '/');
	if (!slash || !isdigit((unsigned char)slash[1]))
		return false;
	*slash = '\0';
	bits = strtol(slash + 1, &end, 10);
	family = addr_parse(buf, &out->addr);
	/* The family of the literal: "::ffff:10.0.0.0/104" is an IPv6 prefix. */
	max = strchr(buf, ':') ? 128 : 32;
	if (family < 0 || *end || bits < 0 || bits > max)
		return false;
	out->len = (uint8_t)(bits + 128 - max);
	for (int w = 0; w < 4; w++) {
		int keep = out->len - 32 * w;
		uint32_t mask = keep >= 32 ? 0xffffffffu : keep <= 0 ? 0 : ~(0xffffffffu >> keep);

		out->addr.w[w] &= htonl(mask);
	}
	return true;
}

/* The externalIPs that are IPs (B25: the others are ignored, as kube-proxy
 * does, at debug level; they still count). */
static void ext_external_ips(const struct decode_meta *meta, const cJSON *spec,
			     struct ext_lists *l)
{
	const cJSON *ips = decode_field(spec, "externalIPs"), *item;
	size_t i = 0;

	if (ips && !cJSON_IsNull(ips) && !cJSON_IsArray(ips))
		model_field_ignored(LOG_WARN, "Service %s/%s: spec.externalIPs: not a list, "
				    "ignored", meta->ns, meta->name);
	if (!cJSON_IsArray(ips))
		return;
	cJSON_ArrayForEach(item, ips) {
		const char *text = cJSON_IsString(item) ? item->valuestring : NULL;

		if (addr_parse(text, &l->ips[l->n_ips]) > 0)
			l->n_ips++;
		else
			model_field_ignored(LOG_DEBUG, "Service %s/%s: spec.externalIPs[%zu]: \"%s\" "
					    "is not an IP address, ignored (B25)", meta->ns,
					    meta->name, i, text ? text : "?");
		i++;
	}
}

/* status.loadBalancer.ingress[].ip of a LoadBalancer, when ipMode is VIP or
 * absent; Proxy entries and hostname-only ones are not captured, and
 * spec.loadBalancerIP is never read (B24). */
static void ext_lb_ips(const struct decode_meta *meta, const cJSON *obj, struct ext_lists *l)
{
	const cJSON *ingress = decode_field(decode_field(decode_field(obj, "status"),
							 "loadBalancer"), "ingress");
	const cJSON *item;
	size_t i = 0;

	if (!cJSON_IsArray(ingress))
		return;
	cJSON_ArrayForEach(item, ingress) {
		const char *ip = decode_string(item, "ip", "");
		const char *mode = decode_string(item, "ipMode", "VIP");

		i++;
		if (ip && !*ip)
			continue;
		if (!mode || strcmp(mode, "VIP") != 0)
			continue;
		if (addr_parse(ip, &l->ips[l->n_ips]) > 0)
			l->n_ips++;
		else
			model_field_ignored(LOG_WARN, "Service %s/%s: status.loadBalancer.ingress[%zu]"
					    ".ip: \"%s\" is not an IP address, ignored", meta->ns,
					    meta->name, i - 1, ip ? ip : "?");
	}
	l->n_lb = l->n_ips;
}

/* spec.loadBalancerSourceRanges (B26): an entry that does not parse is left
 * out; when none parses, the Service's LB IPs admit no source. */
static void ext_ranges(const struct decode_meta *meta, const cJSON *spec, struct ext_lists *l,
		       bool *unusable)
{
	const cJSON *ranges = decode_field(spec, "loadBalancerSourceRanges"), *item;
	size_t i = 0;

	if (ranges && !cJSON_IsNull(ranges) && !cJSON_IsArray(ranges))
		model_field_ignored(LOG_WARN, "Service %s/%s: spec.loadBalancerSourceRanges: not a "
				    "list, its LB IPs admit no source", meta->ns, meta->name);
	*unusable = ranges && !cJSON_IsNull(ranges) && !cJSON_IsArray(ranges);
	if (!cJSON_IsArray(ranges))
		return;
	cJSON_ArrayForEach(item, ranges) {
		const char *text = cJSON_IsString(item) ? item->valuestring : NULL;

		if (text && decode_prefix(text, &l->ranges[l->n_ranges]))
			l->n_ranges++;
		else
			model_field_ignored(LOG_WARN, "Service %s/%s: spec.loadBalancerSourceRanges"
					    "[%zu]: \"%s\" is not a CIDR, left out", meta->ns,
					    meta->name, i, text ? text : "?");
		i++;
	}
	if (i && !l->n_ranges) {
		*unusable = true;
		log_warn("model", "Service %s/%s: no entry of spec.loadBalancerSourceRanges parses: "
			 "its LB IPs admit no source", meta->ns, meta->name);
	}
}

/* spec.externalTrafficPolicy: Cluster (or its old name Global) or Local. */
static bool ext_local_policy(const struct decode_meta *meta, const cJSON *spec)
{
	const char *policy = decode_string(spec, "externalTrafficPolicy", "Cluster");

	if (policy && strcmp(policy, "Local") == 0)
		return true;
	if (!policy || (strcmp(policy, "Cluster") != 0 && strcmp(policy, "Global") != 0))
		model_field_ignored(LOG_WARN, "Service %s/%s: spec.externalTrafficPolicy: unknown "
				    "policy \"%s\", taken as Cluster", meta->ns, meta->name,
				    policy ? policy : "?");
	return false;
}

/* spec.healthCheckNodePort, of a LoadBalancer with policy Local only (B28). */
static uint16_t ext_health_port(const struct decode_meta *meta, const cJSON *spec)
{
	const cJSON *hc = decode_field(spec, "healthCheckNodePort");
	int n;

	if (!hc || cJSON_IsNull(hc))
		return 0;
	if (decode_int(hc, 0, 65535, &n))
		return (uint16_t)n;
	model_field_ignored(LOG_WARN, "Service %s/%s: spec.healthCheckNodePort: not a port "
			    "number, ignored", meta->ns, meta->name);
	return 0;
}

static size_t ext_array_size(const cJSON *item)
{
	return cJSON_IsArray(item) ? (size_t)cJSON_GetArraySize(item) : 0;
}

/* Room for every entry of the lists. */
static int ext_lists_alloc(const cJSON *obj, const cJSON *spec, struct ext_lists *l)
{
	size_t n_ips = ext_array_size(decode_field(spec, "externalIPs")) +
		       ext_array_size(decode_field(decode_field(decode_field(obj, "status"),
								"loadBalancer"), "ingress"));
	size_t n_ranges = ext_array_size(decode_field(spec, "loadBalancerSourceRanges"));

	l->ips = n_ips ? calloc(n_ips, sizeof(*l->ips)) : NULL;
	l->ranges = n_ranges ? calloc(n_ranges, sizeof(*l->ranges)) : NULL;
	return (n_ips && !l->ips) || (n_ranges && !l->ranges) ? -1 : 0;
}

enum decode_result decode_ext(const cJSON *obj, const struct decode_meta *meta,
			      struct model_service *svc, char *why, size_t why_len)
{
	const cJSON *spec = decode_field(obj, "spec");
	struct ext_lists l = { 0 };
	struct model_service_ext *ext;
	bool unusable = false, lb = svc->type == SVC_TYPE_LOAD_BALANCER;

	if (svc->type == SVC_TYPE_EXTERNAL_NAME)
		return DECODE_OK;
	if (ext_lists_alloc(obj, spec, &l) < 0)
		goto oom;
	if (lb)
		ext_lb_ips(meta, obj, &l);
	ext_external_ips(meta, spec, &l);
	if (!ext_has_node_ports(svc->type) && l.n_ips == 0) {
		free(l.ips);
		free(l.ranges);
		return DECODE_OK;
	}
	if (lb)
		ext_ranges(meta, spec, &l, &unusable);
	ext = calloc(1, sizeof(*ext));
	if (!ext)
		goto oom;
	ext->ips = l.ips;
	ext->n_lb_ips = (uint32_t)l.n_lb;
	ext->n_external_ips = (uint32_t)(l.n_ips - l.n_lb);
	ext->ranges = l.ranges;
	ext->n_ranges = (uint32_t)l.n_ranges;
	ext->ranges_unusable = unusable;
	ext->ext_local = ext_local_policy(meta, spec);
	if (lb && ext->ext_local)
		ext->health_check_node_port = ext_health_port(meta, spec);
	svc->ext = ext;
	return DECODE_OK;
oom:
	free(l.ips);
	free(l.ranges);
	return decode_why(meta, why, why_len, "out of memory");
}
