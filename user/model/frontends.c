/* A service port's NodePort, LB IP and externalIP frontends (B22, B24,
 * B25, B27) and source ranges (B26). */
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "model/decode_priv.h"
#include "model/frontends.h"

void front_node_port_range(const struct model_node *node, uint16_t *lo, uint16_t *hi)
{
	bool set = node && node->node_port_min && node->node_port_max;

	*lo = set ? node->node_port_min : MODEL_NODE_PORT_MIN;
	*hi = set ? node->node_port_max : MODEL_NODE_PORT_MAX;
}

static bool front_node_port_ok(const struct model_node *node, uint16_t port)
{
	uint16_t lo, hi;

	front_node_port_range(node, &lo, &hi);
	return port >= lo && port <= hi;
}

static bool front_is_node_addr(const struct model_node *node, const struct ferry_ip *ip)
{
	for (size_t i = 0; node && i < node->n_addrs; i++)
		if (addr_equal(&node->addrs[i], ip))
			return true;
	return false;
}

static bool front_family(const struct ferry_ip *ip, int family)
{
	return addr_is_v4(ip) == (family == 4);
}

/* By address, then kind: of an address both an LB IP and an externalIP,
 * the LB IP (with its source ranges) sorts first and stays. */
static int front_cmp(const void *pa, const void *pb)
{
	const struct desired_frontend *a = pa, *b = pb;
	int c = addr_compare(&a->addr, &b->addr);

	return c ? c : (int)a->kind - (int)b->kind;
}

/* The LB IPs and externalIPs of family at f[0..), sorted, each address
 * once; returns how many. */
static size_t front_ips(const struct model_service_ext *ext, uint16_t port, int family,
			const struct model_node *node, struct desired_frontend *f)
{
	size_t n = 0, kept = 0;

	for (uint32_t i = 0; i < ext->n_lb_ips + ext->n_external_ips; i++) {
		if (!front_family(&ext->ips[i], family) || front_is_node_addr(node, &ext->ips[i]))
			continue;
		f[n].addr = ext->ips[i];
		f[n].port = port;
		f[n++].kind = i < ext->n_lb_ips ? FRONTEND_LOAD_BALANCER : FRONTEND_EXTERNAL_IP;
	}
	if (n)
		qsort(f, n, sizeof(*f), front_cmp);
	for (size_t i = 0; i < n; i++)
		if (!kept || !addr_equal(&f[i].addr, &f[kept - 1].addr))
			f[kept++] = f[i];
	return kept;
}

int front_build(const struct model_service *svc, const struct model_port *port, int family,
		const struct ferry_ip *cluster_ip, const struct model_node *node,
		struct desired_svc *dsvc, size_t *n_external, size_t *n_lb)
{
	const struct model_service_ext *ext = svc->ext;
	size_t cap = 2 + (ext ? ext->n_lb_ips + ext->n_external_ips : 0), n = 0, n_ips;
	struct desired_frontend *f = calloc(cap, sizeof(*f));

	*n_external = *n_lb = 0;
	if (!f)
		return -1;
	if (cluster_ip)
		f[n++] = (struct desired_frontend){ .addr = *cluster_ip, .port = port->port,
						    .kind = FRONTEND_CLUSTER_IP };
	if (port->node_port && front_node_port_ok(node, port->node_port)) {
		/* The wildcard: ::ffff:0.0.0.0 for IPv4, :: for IPv6. */
		f[n].addr.w[2] = family == 4 ? htonl(0xffff) : 0;
		f[n].port = port->node_port;
		f[n++].kind = FRONTEND_NODE_PORT;
	}
	n_ips = ext ? front_ips(ext, port->port, family, node, &f[n]) : 0;
	for (size_t i = n; i < n + n_ips; i++)
		*n_lb += f[i].kind == FRONTEND_LOAD_BALANCER;
	n += n_ips;
	*n_external = n - (cluster_ip ? 1 : 0);
	dsvc->frontends = f;
	dsvc->n_frontends = n;
	return 0;
}

static int front_prefix_cmp(const void *pa, const void *pb)
{
	const struct ferry_prefix *a = pa, *b = pb;
	int c = addr_compare(&a->addr, &b->addr);

	return c ? c : (int)a->len - (int)b->len;
}

static bool front_prefix_family(const struct ferry_prefix *p, int family)
{
	return (p->len >= 96 && addr_is_v4(&p->addr)) == (family == 4);
}

int front_ranges(const struct model_service *svc, int family, struct desired_svc *dsvc)
{
	const struct model_service_ext *ext = svc->ext;
	struct ferry_prefix *r;
	size_t n = 0, kept = 0;

	if (!ext || (!ext->n_ranges && !ext->ranges_unusable))
		return 0;
	r = calloc(ext->n_ranges + 1, sizeof(*r));
	if (!r)
		return -1;
	if (ext->ranges_unusable) {
		r[n].addr.w[2] = family == 4 ? htonl(0xffff) : 0;
		r[n++].len = 128;
	}
	for (uint32_t i = 0; i < ext->n_ranges; i++) {
		if (!front_prefix_family(&ext->ranges[i], family))
			continue;
		/* 0.0.0.0/0 or ::/0 admits every source, as no range does (so
		 * kube-proxy then leaves out the family's other ranges too). */
		if (ext->ranges[i].len == (family == 4 ? 96 : 0)) {
			n = 0;
			break;
		}
		r[n++] = ext->ranges[i];
	}
	if (n)
		qsort(r, n, sizeof(*r), front_prefix_cmp);
	for (size_t i = 0; i < n; i++)
		if (!kept || r[i].len != r[kept - 1].len ||
		    !addr_equal(&r[i].addr, &r[kept - 1].addr))
			r[kept++] = r[i];
	if (!kept) {
		free(r);
		r = NULL;
	}
	dsvc->source_ranges = r;
	dsvc->n_source_ranges = kept;
	return 0;
}

/* FNV-1a over the problems found, so that front_check knows whether they
 * changed since it last logged. */
static uint32_t front_hash(uint32_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* The problems of svc with node: logged when log, and hashed. */
static uint32_t front_problems(const struct model_service *svc, const struct model_node *node,
			       bool log)
{
	const struct model_service_ext *ext = svc->ext;
	uint32_t h = 2166136261u, n = 0;
	char text[ADDR_STR_LEN];
	uint16_t lo, hi;

	front_node_port_range(node, &lo, &hi);
	for (uint32_t i = 0; i < svc->n_ports; i++) {
		uint16_t np = svc->ports[i].node_port;

		if (!np || front_node_port_ok(node, np))
			continue;
		h = front_hash(front_hash(h, &i, sizeof(i)), &np, sizeof(np));
		n++;
		if (log)
			model_field_ignored(LOG_WARN, "Service %s/%s: spec.ports[%u].nodePort %u is "
					    "outside the node-port range %u-%u: not programmed",
					    svc->ns, svc->name, i, np, lo, hi);
	}
	for (uint32_t i = 0; i < ext->n_lb_ips + ext->n_external_ips; i++) {
		if (!front_is_node_addr(node, &ext->ips[i]))
			continue;
		h = front_hash(front_hash(h, &i, sizeof(i)), &ext->ips[i], sizeof(ext->ips[i]));
		n++;
		if (log)
			model_field_ignored(LOG_WARN, "Service %s/%s: %s %s is an address of this "
					    "node: left out", svc->ns, svc->name,
					    i < ext->n_lb_ips ? "LoadBalancer ingress IP" :
					    "externalIP", addr_format(&ext->ips[i], text));
	}
	return n ? (h ? h : 1) : 0;
}

void front_check(const struct model_service *svc, const struct model_node *node)
{
	uint32_t h;

	if (!svc->ext)
		return;
	h = front_problems(svc, node, false);
	if (h && h != svc->ext->warned)
		front_problems(svc, node, true);
	svc->ext->warned = h;
}
