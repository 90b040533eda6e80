/* Where a service port answers besides its ClusterIP (B22, B24-B27), and
 * the problems of a Service's external fields that depend on the node. */
#ifndef FERRY_MODEL_FRONTENDS_H
#define FERRY_MODEL_FRONTENDS_H

#include "model/model.h"

/* The NodePort range of node (its own, or 30000-32767). */
void front_node_port_range(const struct model_node *node, uint16_t *lo, uint16_t *hi);

/* Fills dsvc->frontends: the ClusterIP `cluster_ip` first when not NULL,
 * then port's NodePort in family (the family's wildcard address), then the
 * Service's LB IPs and externalIPs of that family, sorted; a nodePort out of
 * the node's range and an address of the node are left out. *n_external:
 * how many are not the
 * ClusterIP, *n_lb: how many are LB IPs. Returns 0, or -1 when out of
 * memory. */
int front_build(const struct model_service *svc, const struct model_port *port, int family,
		const struct ferry_ip *cluster_ip, const struct model_node *node,
		struct desired_svc *dsvc, size_t *n_external, size_t *n_lb);

/* Fills dsvc->source_ranges with the Service's loadBalancerSourceRanges of
 * family, sorted, each once (none when one of them is 0.0.0.0/0 or ::/0:
 * every source is admitted); when it listed ranges and none parses, the
 * family's unspecified address as a /128, which no client has (fail
 * closed). Returns 0, or -1 when out of memory. */
int front_ranges(const struct model_service *svc, int family, struct desired_svc *dsvc);

/* Logs and counts (model_fields_ignored) the nodePorts of svc outside the
 * node's range and its LB IPs and externalIPs equal to a node address,
 * once for each Service object and node: a recompute with the same
 * problems says nothing. */
void front_check(const struct model_service *svc, const struct model_node *node);

#endif
