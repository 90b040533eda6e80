/* The Kubernetes objects ferry reads (Services, EndpointSlices, Nodes), reduced to
 * the fields the datapath needs, and the service ports they program.
 *
 * model_decode turns one API object (cJSON) into a model object; it knows
 * the API's field names and defaults. model_compute applies the rules of
 * ../shared/spec/kube-proxy-behaviour.md (B1-B11, B13-B17, B22-B28, B30, B31) to produce the
 * desired state that the sync engine writes into the maps.
 */
#ifndef FERRY_MODEL_H
#define FERRY_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"

struct cJSON;

enum svc_type {
	SVC_TYPE_CLUSTER_IP,
	SVC_TYPE_NODE_PORT,
	SVC_TYPE_LOAD_BALANCER,
	SVC_TYPE_EXTERNAL_NAME,
};

struct model_port {
	const char *name;     /* "" when unnamed; shared (common/intern.h) */
	uint8_t proto;        /* IPPROTO_TCP/UDP/SCTP */
	uint16_t port;        /* host order */
	uint16_t node_port;   /* Services: nodePort of a NodePort or LoadBalancer
			       * Service; 0 = none (B22, B27) */
};

/* An address prefix (loadBalancerSourceRanges), v4-mapped: an IPv4 /24 has
 * len 96 + 24. */
struct ferry_prefix {
	struct ferry_ip addr;
	uint8_t len;
};

/* What NodePort, LoadBalancer and externalIPs add to a Service (B22-B28):
 * allocated apart, so that ClusterIP Services (most of them) carry only a
 * NULL pointer. Only what parses is here; what does not was logged and
 * counted (model_fields_ignored) when the Service was decoded. */
struct model_service_ext {
	struct ferry_ip *ips;         /* n_lb_ips LB ingress IPs (ipMode VIP or absent,
				       * B24), then n_external_ips externalIPs (B25) */
	struct ferry_prefix *ranges;  /* loadBalancerSourceRanges, host bits cleared */
	uint32_t n_lb_ips, n_external_ips, n_ranges;
	uint16_t health_check_node_port; /* LoadBalancer + Local only (B28); 0 = none */
	bool ext_local;               /* externalTrafficPolicy Local (B16, B23) */
	bool ranges_unusable;         /* ranges were listed but none parses: LB IPs
				       * admit no source (fail closed) */
	/* model_compute's note of the problems it last logged for this Service
	 * (a hash; 0 = none), so that each is logged once per change of the
	 * object or of the node, not at every recompute. */
	uint32_t warned;
};

/* Fields ordered by size: the store holds one per Service (80 bytes). */
struct model_service {
	const char *ns;       /* shared (common/intern.h) */
	char *name;
	struct model_port *ports;
	struct model_service_ext *ext; /* NULL: no NodePort, LB IP or externalIP */
	struct ferry_ip cluster_ips[2];
	uint32_t n_ports;
	uint32_t affinity_timeout; /* sessionAffinity ClientIP: seconds; 0 = none (B30) */
	uint8_t type;              /* enum svc_type */
	uint8_t n_cluster_ips;     /* 0 for headless (B1) */
	uint8_t cluster_ip_family[2]; /* 4 or 6, paired with cluster_ips (B3) */
	bool proxied;         /* false: service-proxy-name or headless label (B2) */
	bool internal_local;  /* spec.internalTrafficPolicy: Local (B13, B15) */
	uint8_t lb_algorithm; /* enum model_lb: annotation ferry.io/lb-algorithm */
};

/* How the Service's ports pick backends (annotation ferry.io/lb-algorithm);
 * MODEL_LB_DEFAULT: absent or unknown, ferryd's --lb-algorithm applies. */
enum model_lb {
	MODEL_LB_DEFAULT = 0,
	MODEL_LB_RANDOM,
	MODEL_LB_ROUND_ROBIN,
	MODEL_LB_MAGLEV,
	MODEL_LB_LEAST_CONN,
};

/* The annotation value of each enum model_lb but the default, or NULL. */
const char *model_lb_name(enum model_lb lb);
/* The enum model_lb a value names; MODEL_LB_DEFAULT when none. */
enum model_lb model_lb_parse(const char *name);

/* The API server allows 8 (EndpointSlice validation: hints.forZones). */
#define MODEL_MAX_HINT_ZONES 8

struct model_endpoint {
	struct ferry_ip addr; /* addresses[0] (B8) */
	/* nodeName ("" when absent), then the n_hint_zones names of
	 * hints.forZones, each NUL-terminated: "node\0zone-a\0zone-b". Shared
	 * (common/intern.h) by its number: a few hundred nodes and zones stand
	 * in a million endpoints, and 32 bits keep this struct at 24 bytes.
	 * Read it with model_endpoint_node and model_endpoint_zone. */
	uint32_t place;
	bool ready;           /* absent = true (B10) */
	bool serving;         /* absent = ready */
	bool terminating;     /* absent = false */
	uint8_t n_hint_zones; /* 0: no hints.forZones (B31); at most MODEL_MAX_HINT_ZONES */
};

/* ep's nodeName, "" when absent. */
const char *model_endpoint_node(const struct model_endpoint *ep);
/* The i-th hint zone of ep, i < ep->n_hint_zones. */
const char *model_endpoint_zone(const struct model_endpoint *ep, size_t i);

struct model_slice {
	const char *ns;       /* shared (common/intern.h) */
	char *name;           /* owned: one block with service_name after it */
	char *service_name;   /* kubernetes.io/service-name label; "" when absent;
			       * in name's block (freed with it) */
	int family;           /* 4, 6, or 0 for FQDN/unknown (B6) */
	bool proxied;         /* false: service-proxy-name or headless label (B2) */
	int64_t trigger_ns;   /* endpoints.kubernetes.io/last-change-trigger-time,
			       * ns since the epoch (wall clock); 0 = none */
	size_t n_ports;
	struct model_port *ports;   /* only valid ports: named or not, port > 0 (B7) */
	size_t n_endpoints;
	struct model_endpoint *endpoints; /* only endpoints with an address (B8) */
};

/* The node ferryd runs on, as the rules see it: endpoints are local when
 * their nodeName equals name (B13); hints are read for zone, "" when the
 * zone is unknown (B31); an LB IP or externalIP equal to one of addrs is
 * left out, and a nodePort outside node_port_min..max is not programmed.
 * Given to model_compute, every field is borrowed; in model_objects (a
 * decoded Node: name, zone label, status.addresses) they are owned. */
struct model_node {
	const char *name;
	const char *zone;
	size_t n_addrs;
	const struct ferry_ip *addrs;  /* InternalIP and ExternalIP, sorted, each once */
	uint16_t node_port_min, node_port_max; /* --node-port-range; 0 = 30000-32767 */
};

#define MODEL_NODE_PORT_MIN 30000
#define MODEL_NODE_PORT_MAX 32767

struct model_objects {
	size_t n_services, cap_services;
	struct model_service *services;
	size_t n_slices, cap_slices;
	struct model_slice *slices;
	size_t n_nodes, cap_nodes;
	struct model_node *nodes;
};

enum decode_result {
	DECODE_OK = 0,        /* appended to the model_objects */
	DECODE_IGNORED = 1,   /* a kind ferry does not use (Pod, ConfigMap, ...) */
	DECODE_INVALID = -1,  /* a Service/EndpointSlice/Node with bad fields: skipped */
};

/* The identity of an API object, borrowed from it: kind, namespace ("default"
 * when absent or empty) and name. False when one of them is missing or not a
 * string (the others are still set, NULL when missing). */
struct model_ref {
	const char *kind;
	const char *ns;
	const char *name;
};
bool model_object_ref(const struct cJSON *obj, struct model_ref *ref);

/* Decode one API object and append it. On DECODE_INVALID, why[] says what is
 * wrong, naming the object (namespace/name) and the field. */
enum decode_result model_decode(const struct cJSON *obj, struct model_objects *into,
				char *why, size_t why_len);
void model_objects_free(struct model_objects *objs);

/* The last Node named name in sets[0..n_sets) (a snapshot's
 * `kubectl get nodes -o yaml`), NULL when there is none. */
const struct model_node *model_objects_node(const struct model_objects *sets, size_t n_sets,
					    const char *name);

/* Fields of an object that were left out while the rest of it is served
 * (B25's invalid externalIPs, unparsable loadBalancerSourceRanges, a
 * nodePort outside the node-port range, an LB IP or externalIP equal to a
 * node address ...), each also named in a warning: the total since start. */
uint64_t model_fields_ignored(void);


/* One frontend (ClusterIP, port, protocol) and the backends it spreads over. */
struct desired_backend {
	struct ferry_ip addr;
	uint16_t port;        /* host order */
};

/* Where a service port answers (B22, B24, B25). */
enum frontend_kind {
	FRONTEND_CLUSTER_IP,
	FRONTEND_NODE_PORT,      /* addr is the family's wildcard: ::ffff:0.0.0.0 or :: */
	FRONTEND_LOAD_BALANCER,  /* status.loadBalancer.ingress[].ip, ipMode VIP or absent */
	FRONTEND_EXTERNAL_IP,    /* spec.externalIPs */
};

struct desired_frontend {
	struct ferry_ip addr;
	uint16_t port;        /* host order: the service port, or the nodePort */
	uint8_t kind;         /* enum frontend_kind */
};

struct desired_svc {
	/* Stable identity of the service port in one family, e.g.
	 * "shop/web:http/TCP/v4"; with externalTrafficPolicy Local its
	 * external set is a second one, "shop/web:http/TCP/v4/external". Sync
	 * keeps IDs per identity. */
	char *id;
	/* Every address of this service port, sharing one backend set and one
	 * affinity (B30): the ClusterIP first (for the Cluster set), then the
	 * NodePort, LB IPs and externalIPs, sorted. The external set of an
	 * externalTrafficPolicy Local port has no ClusterIP. */
	size_t n_frontends;
	struct desired_frontend *frontends;
	uint8_t proto;
	bool external;        /* the external set of an externalTrafficPolicy Local
			       * port: its keys have scope SVC_SCOPE_EXTERNAL (B16) */
	bool ext_local;       /* externalTrafficPolicy Local: on the Cluster set, its
			       * external frontends are flagged SVC_FLAG_EXT_LOCAL */
	uint16_t health_check_node_port; /* external set only; 0 = none (B28) */
	size_t n_source_ranges; /* LB IP frontends only accept these; 0 = all (B26) */
	struct ferry_prefix *source_ranges; /* this family's, sorted */
	bool fallback;        /* backends are serving+terminating ones (B11) */
	bool local;           /* internalTrafficPolicy Local: this node's endpoints (B15) */
	bool zone_hints;      /* only the endpoints hinted for this node's zone (B31) */
	uint32_t affinity_timeout; /* seconds; 0 = no session affinity (B30) */
	uint8_t lb_algorithm; /* enum model_lb */
	size_t n_backends;    /* 0 = refuse connections (B14) */
	struct desired_backend *backends; /* sorted by (addr, port), no duplicates (B9) */
};

struct desired_state {
	size_t n_svcs, cap_svcs;
	struct desired_svc *svcs;  /* sorted by id (model_compute) */
	size_t truncated;          /* service ports cut to max_per_service (each
				    * named in a warning) */
};

/* Compute what the maps must hold from n_sets sets of objects (e.g. one per
 * file of a folder), taken as one: a Service replaces an earlier one of the
 * same namespace/name, in its own set or in an earlier set (with a warning),
 * and the EndpointSlices of every set are merged. A service port with more
 * than max_per_service backends keeps the first max_per_service (in sorted
 * order), is named in a warning and counts in ->truncated. node NULL is a
 * node of unknown name and zone. Returns 0, or -1 on allocation failure. */
int model_compute(const struct model_objects *sets, size_t n_sets, const struct model_node *node,
		  size_t max_per_service, struct desired_state *out);
/* The service ports of one Service, given the EndpointSlices that name it
 * (any order; those ignored by B2 or B6 are skipped), appended to out
 * unsorted. Returns 0, or -1 on allocation failure. */
int model_compute_service(const struct model_service *svc, const struct model_slice *const *slices,
			  size_t n_slices, const struct model_node *node, size_t max_per_service,
			  struct desired_state *out);
void desired_sort(struct desired_state *state);
void desired_free(struct desired_state *state);

#endif
