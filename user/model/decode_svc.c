/* Services: type, cluster IPs (B1, B3), ports (B4), the internal traffic
 * policy (B15) and session affinity (B30); the external frontends are
 * decode_ext.c's. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/intern.h"
#include "common/log.h"
#include "model/decode_priv.h"

static const char *const svc_type_names[] = {
	[SVC_TYPE_CLUSTER_IP] = "ClusterIP",
	[SVC_TYPE_NODE_PORT] = "NodePort",
	[SVC_TYPE_LOAD_BALANCER] = "LoadBalancer",
	[SVC_TYPE_EXTERNAL_NAME] = "ExternalName",
};

static enum decode_result svc_type(const struct decode_meta *meta, const cJSON *spec,
				   struct model_service *svc, char *why, size_t why_len)
{
	const char *type = decode_string(spec, "type", "ClusterIP");

	for (size_t i = 0; type && i < sizeof(svc_type_names) / sizeof(svc_type_names[0]); i++) {
		if (strcmp(type, svc_type_names[i]) == 0) {
			svc->type = (uint8_t)i;
			return DECODE_OK;
		}
	}
	return decode_why(meta, why, why_len, "spec.type: unknown type \"%s\"", type ? type : "?");
}

/* spec.internalTrafficPolicy: Cluster when absent; anything but Cluster or
 * Local is refused rather than guessed (the API server validates it). */
static enum decode_result svc_internal_policy(const struct decode_meta *meta, const cJSON *spec,
					      struct model_service *svc, char *why,
					      size_t why_len)
{
	const char *policy = decode_string(spec, "internalTrafficPolicy", "Cluster");

	if (policy && strcmp(policy, "Local") == 0)
		svc->internal_local = true;
	else if (!policy || strcmp(policy, "Cluster") != 0)
		return decode_why(meta, why, why_len,
				  "spec.internalTrafficPolicy: unknown policy \"%s\"",
				  policy ? policy : "?");
	return DECODE_OK;
}

#define AFFINITY_DEFAULT_S 10800
#define AFFINITY_MAX_S 86400

/* spec.sessionAffinity None (or absent) or ClientIP, with
 * sessionAffinityConfig.clientIP.timeoutSeconds (1..86400, default 10800). */
static enum decode_result svc_affinity(const struct decode_meta *meta, const cJSON *spec,
				       struct model_service *svc, char *why, size_t why_len)
{
	const char *mode = decode_string(spec, "sessionAffinity", "None");
	const cJSON *timeout = decode_field(
		decode_field(decode_field(spec, "sessionAffinityConfig"), "clientIP"),
		"timeoutSeconds");
	int t;

	if (mode && strcmp(mode, "None") == 0)
		return DECODE_OK;
	if (!mode || strcmp(mode, "ClientIP") != 0)
		return decode_why(meta, why, why_len, "spec.sessionAffinity: unknown value \"%s\"",
				  mode ? mode : "?");
	if (!timeout || cJSON_IsNull(timeout)) {
		svc->affinity_timeout = AFFINITY_DEFAULT_S;
		return DECODE_OK;
	}
	if (!decode_int(timeout, 1, AFFINITY_MAX_S, &t))
		return decode_why(meta, why, why_len,
				  "spec.sessionAffinityConfig.clientIP.timeoutSeconds: want a "
				  "whole number from 1 to %d", AFFINITY_MAX_S);
	svc->affinity_timeout = (uint32_t)t;
	return DECODE_OK;
}

#define ANNOTATION_LB "ferry.io/lb-algorithm"

static const char *const lb_names[] = {
	[MODEL_LB_RANDOM] = "random",
	[MODEL_LB_ROUND_ROBIN] = "round-robin",
	[MODEL_LB_MAGLEV] = "maglev",
	[MODEL_LB_LEAST_CONN] = "least-conn",
};

const char *model_lb_name(enum model_lb lb)
{
	return lb > MODEL_LB_DEFAULT && lb < sizeof(lb_names) / sizeof(lb_names[0]) ?
		       lb_names[lb] : NULL;
}

enum model_lb model_lb_parse(const char *name)
{
	for (size_t i = MODEL_LB_RANDOM; name && i < sizeof(lb_names) / sizeof(lb_names[0]); i++)
		if (strcmp(name, lb_names[i]) == 0)
			return (enum model_lb)i;
	return MODEL_LB_DEFAULT;
}

/* metadata.annotations["ferry.io/lb-algorithm"]: a value ferryd does not
 * know is left out (logged, counted) and the Service keeps the default,
 * rather than the Service going unserved. */
static void svc_lb_algorithm(const struct decode_meta *meta, const cJSON *obj,
			     struct model_service *svc)
{
	const cJSON *anns = decode_field(decode_field(obj, "metadata"), "annotations");
	const cJSON *value = decode_field(anns, ANNOTATION_LB);

	if (!value)
		return;
	svc->lb_algorithm = (uint8_t)model_lb_parse(cJSON_IsString(value) ? value->valuestring
									  : NULL);
	if (svc->lb_algorithm == MODEL_LB_DEFAULT)
		model_field_ignored(LOG_WARN, "Service %s/%s: annotation " ANNOTATION_LB ": unknown "
				    "value \"%s\" (random, round-robin, maglev or least-conn), the "
				    "default "
				    "applies", meta->ns, meta->name,
				    cJSON_IsString(value) ? value->valuestring : "(not a string)");
}

/* The field of cluster IP i: spec.clusterIPs[i], or spec.clusterIP when i < 0. */
static const char *svc_ip_field(int i, char *buf, size_t len)
{
	if (i < 0)
		return "spec.clusterIP";
	snprintf(buf, len, "spec.clusterIPs[%d]", i);
	return buf;
}

/* One cluster IP: 0 when added, 1 when "None", "" or absent (headless, B1,
 * which ends the list), DECODE_INVALID otherwise. */
static int svc_cluster_ip(const struct decode_meta *meta, const cJSON *item, int i,
			  struct model_service *svc, char *why, size_t why_len)
{
	const char *text = cJSON_IsString(item) ? item->valuestring : NULL;
	size_t n = svc->n_cluster_ips;
	char field[48];
	int family;

	if (!item || cJSON_IsNull(item) || (text && (!*text || strcmp(text, "None") == 0)))
		return 1;
	family = addr_parse(text, &svc->cluster_ips[n]);
	if (family < 0)
		return decode_why(meta, why, why_len, "%s: \"%s\" is not an IP address",
				  svc_ip_field(i, field, sizeof(field)), text ? text : "?");
	if (n == 1 && svc->cluster_ip_family[0] == family)
		return decode_why(meta, why, why_len, "%s: second IPv%d address",
				  svc_ip_field(i, field, sizeof(field)), family);
	svc->cluster_ip_family[n] = (uint8_t)family;
	svc->n_cluster_ips++;
	return 0;
}

/* spec.clusterIPs when present, else spec.clusterIP (B3). */
static enum decode_result svc_cluster_ips(const struct decode_meta *meta, const cJSON *spec,
					  struct model_service *svc, char *why, size_t why_len)
{
	const cJSON *ips = decode_field(spec, "clusterIPs");
	const cJSON *item;
	int i = 0, rc;

	if (!cJSON_IsArray(ips) || cJSON_GetArraySize(ips) == 0) {
		rc = svc_cluster_ip(meta, decode_field(spec, "clusterIP"), -1, svc, why, why_len);
		return rc < 0 ? DECODE_INVALID : DECODE_OK;
	}
	if (cJSON_GetArraySize(ips) > 2)
		return decode_why(meta, why, why_len, "spec.clusterIPs: more than 2 addresses");
	cJSON_ArrayForEach(item, ips) {
		rc = svc_cluster_ip(meta, item, i++, svc, why, why_len);
		if (rc < 0)
			return DECODE_INVALID;
		if (rc > 0)
			break;
	}
	return DECODE_OK;
}

static bool svc_port_taken(const struct model_service *svc, const struct model_port *port)
{
	for (size_t i = 0; i < svc->n_ports; i++)
		if (svc->ports[i].proto == port->proto &&
		    strcmp(svc->ports[i].name, port->name) == 0)
			return true;
	return false;
}

/* The socket hooks never see SCTP, so an SCTP port's ClusterIP cannot be
 * translated and is not programmed (compute.c); its NodePort, LB IPs and
 * externalIPs are, by the per-packet path. Said once per change of the
 * Service, so a user reading the log knows which half works (B32). */
static void svc_sctp_note(const struct decode_meta *meta, const struct model_service *svc,
			  const struct model_port *port)
{
	if (port->proto != IPPROTO_SCTP || svc->type == SVC_TYPE_EXTERNAL_NAME)
		return;
	log_warn("model", "Service %s/%s: port %u is SCTP: its ClusterIP is not served (socket "
		 "hooks never see SCTP); %s", meta->ns, meta->name, port->port,
		 svc->type == SVC_TYPE_CLUSTER_IP ? "nothing of it is programmed" :
		 "its NodePort, LB IPs and externalIPs are served for traffic from outside the "
		 "node");
}

/* Every port must be valid and unique by (name, protocol) (B4). */
static enum decode_result svc_ports(const struct decode_meta *meta, const cJSON *spec,
				    struct model_service *svc, char *why, size_t why_len)
{
	const cJSON *ports = decode_field(spec, "ports"), *item;
	bool node_ports;
	int rc;

	if (!ports || cJSON_IsNull(ports))
		return DECODE_OK;
	if (!cJSON_IsArray(ports))
		return decode_why(meta, why, why_len, "spec.ports: not a list");
	/* Sized exactly: a large state holds one per Service. */
	svc->ports = calloc((size_t)cJSON_GetArraySize(ports) ?: 1, sizeof(*svc->ports));
	if (!svc->ports)
		return decode_why(meta, why, why_len, "out of memory");
	node_ports = decode_node_ports(meta, spec, svc->type);
	cJSON_ArrayForEach(item, ports) {
		struct model_port *port = &svc->ports[svc->n_ports];

		rc = decode_port(meta, item, "spec.ports", svc->n_ports, port, why, why_len);
		if (rc == 0)
			return decode_why(meta, why, why_len, "spec.ports[%u].port: missing or 0",
					  svc->n_ports);
		if (rc < 0)
			return DECODE_INVALID;
		if (svc_port_taken(svc, port)) {
			decode_why(meta, why, why_len, "spec.ports[%u]: duplicate name \"%s\" for %s",
				   svc->n_ports, port->name, proto_name(port->proto));
			intern_put(port->name);
			return DECODE_INVALID;
		}
		if (node_ports)
			decode_node_port(meta, item, svc->n_ports, port);
		svc_sctp_note(meta, svc, port);
		svc->n_ports++;
	}
	return DECODE_OK;
}

enum decode_result decode_service(const cJSON *obj, const struct decode_meta *meta,
				  struct model_objects *into, char *why, size_t why_len)
{
	const cJSON *spec = decode_field(obj, "spec");
	struct model_service svc = { .proxied = meta->proxied };

	if (svc_type(meta, spec, &svc, why, why_len) != DECODE_OK ||
	    svc_internal_policy(meta, spec, &svc, why, why_len) != DECODE_OK ||
	    svc_affinity(meta, spec, &svc, why, why_len) != DECODE_OK ||
	    svc_cluster_ips(meta, spec, &svc, why, why_len) != DECODE_OK ||
	    svc_ports(meta, spec, &svc, why, why_len) != DECODE_OK ||
	    decode_ext(obj, meta, &svc, why, why_len) != DECODE_OK) {
		objects_free_service(&svc);
		return DECODE_INVALID;
	}
	svc_lb_algorithm(meta, obj, &svc);
	svc.ns = intern_get(meta->ns);
	svc.name = strdup(meta->name);
	if (!svc.ns || !svc.name) {
		objects_free_service(&svc);
		return decode_why(meta, why, why_len, "out of memory");
	}
	if (objects_add_service(into, &svc) < 0)
		return decode_why(meta, why, why_len, "out of memory");
	return DECODE_OK;
}
