/* Unit tests of the model's north-south side: decoding NodePort,
 * LoadBalancer and externalIPs Services and Nodes, the frontends, source
 * ranges and externalTrafficPolicy Local sets model_compute gives them
 * (B11, B16, B22-B28, B31 of ../shared/spec/kube-proxy-behaviour.md), and
 * bad input: a field left out, logged once, counted, the rest served. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "capture.h"
#include "decode_yaml.h"
#include "desired_fmt.h"
#include "model/model.h"

static const struct model_node node_a = { .name = "node-a", .zone = "zone-1" };

/* Every service port of st, one desired_fmt.h line each, in id order. */
static const char *state_text(const struct desired_state *st, char *buf, size_t len)
{
	char line[1024];

	buf[0] = '\0';
	for (size_t i = 0; i < st->n_svcs; i++) {
		fmt_desired(&st->svcs[i], line, sizeof(line));
		fmt_add(buf, len, line);
		fmt_add(buf, len, "\n");
	}
	return buf;
}

/* Decodes yaml (each document DECODE_OK) and computes it for node. */
static void compute_node(const char *yaml, const struct model_node *node, char *out, size_t len)
{
	struct model_objects objs = { 0 };
	struct desired_state st;
	char why[256];

	decode_yaml(&objs, yaml, DECODE_OK, why, sizeof(why));
	assert_int_equal(model_compute(&objs, 1, node, 64, &st), 0);
	state_text(&st, out, len);
	desired_free(&st);
	model_objects_free(&objs);
}

/* The same with what is logged meanwhile in log. */
static void compute_logged(const char *yaml, const struct model_node *node, char *out,
			   size_t len, char *log, size_t log_len)
{
	struct capture c;

	capture_begin(&c);
	compute_node(yaml, node, out, len);
	capture_end(&c, log, log_len);
}

static void assert_logged(const char *log, const char *expect)
{
	if (!strstr(log, expect))
		fail_msg("not logged: %s", expect);
}

static void assert_not_logged(const char *log, const char *what)
{
	if (strstr(log, what))
		fail_msg("logged: %s", what);
}

/* One slice of the Service "s" in namespace "n", IPv4, port http 8080. */
#define SLICE4(endpoints)                                                                  \
	"---\n{kind: EndpointSlice, metadata: {name: s4, namespace: n, labels:"           \
	" {kubernetes.io/service-name: s}}, addressType: IPv4,"                            \
	" ports: [{name: http, port: 8080}], endpoints: [" endpoints "]}\n"
#define SLICE6(endpoints)                                                                  \
	"---\n{kind: EndpointSlice, metadata: {name: s6, namespace: n, labels:"           \
	" {kubernetes.io/service-name: s}}, addressType: IPv6,"                            \
	" ports: [{name: http, port: 8080}], endpoints: [" endpoints "]}\n"
#define EP_A "{addresses: [10.0.0.1], nodeName: node-a}"
#define EP_B "{addresses: [10.0.0.2], nodeName: node-b}"

/* A Service "n/s" with one port http 80 (nodePort 30080) and the spec and
 * status given (YAML flow mapping entries, each ending with ","). */
#define SVC(spec, status)                                                                  \
	"{kind: Service, metadata: {name: s, namespace: n}, spec: {clusterIP: 10.96.0.1, "   \
	spec " ports: [{name: http, port: 80, nodePort: 30080}]}, status: {" status "}}\n"

static void test_b22_b27_decode_node_ports_and_defaults(void **state)
{
	struct model_objects objs = { 0 };
	char why[256];

	(void)state;
	decode_yaml(&objs,
		    SVC("", "") "---\n" SVC("type: NodePort,", "") "---\n"
		    SVC("type: LoadBalancer,", "") "---\n"
		    SVC("type: LoadBalancer, allocateLoadBalancerNodePorts: false,", "") "---\n"
		    SVC("type: NodePort, externalTrafficPolicy: Local, healthCheckNodePort: 31000,", "")
		    "---\n" SVC("type: LoadBalancer, externalTrafficPolicy: Local,"
				" healthCheckNodePort: 31000,", "") "---\n"
		    SVC("type: LoadBalancer, externalTrafficPolicy: Global,", ""),
		    DECODE_OK, why, sizeof(why));
	assert_int_equal(objs.n_services, 7);
	/* ClusterIP: the API server's stale nodePort is not read; no ext. */
	assert_int_equal(objs.services[0].ports[0].node_port, 0);
	assert_null(objs.services[0].ext);
	assert_int_equal(objs.services[1].ports[0].node_port, 30080);
	assert_false(objs.services[1].ext->ext_local); /* Cluster by default */
	assert_int_equal(objs.services[2].ports[0].node_port, 30080);
	assert_int_equal(objs.services[3].ports[0].node_port, 0); /* B27 */
	/* healthCheckNodePort belongs to LoadBalancer + Local only (B28). */
	assert_true(objs.services[4].ext->ext_local);
	assert_int_equal(objs.services[4].ext->health_check_node_port, 0);
	assert_true(objs.services[5].ext->ext_local);
	assert_int_equal(objs.services[5].ext->health_check_node_port, 31000);
	assert_false(objs.services[6].ext->ext_local); /* Global: the old name of Cluster */
	model_objects_free(&objs);
}

#define LB_STATUS                                                                          \
	"loadBalancer: {ingress: [{ip: 198.51.100.2, ipMode: VIP}, {ip: 198.51.100.1},"    \
	" {ip: 198.51.100.3, ipMode: Proxy}, {hostname: lb.example.com},"                  \
	" {ip: '2001:db8::10'}]},"

/* B24: ipMode VIP or absent only; neither Proxy, nor a hostname-only entry,
 * nor spec.loadBalancerIP; nor the status of a Service that is no longer a
 * LoadBalancer. */
static void test_b24_lb_ingress_vip_only(void **state)
{
	char out[2048];

	(void)state;
	compute_node(SVC("type: LoadBalancer, loadBalancerIP: 198.51.100.9,", LB_STATUS)
		     SLICE4(EP_A), &node_a, out, sizeof(out));
	assert_string_equal(out, "n/s:http/TCP/v4 TCP 10.96.0.1:80 0.0.0.0:30080 lb:198.51.100.1:80 "
				 "lb:198.51.100.2:80 -> 10.0.0.1:8080\n");
	/* Type NodePort: the stale status is not served. */
	compute_node(SVC("type: NodePort,", LB_STATUS) SLICE4(EP_A), &node_a, out, sizeof(out));
	assert_string_equal(out, "n/s:http/TCP/v4 TCP 10.96.0.1:80 0.0.0.0:30080 -> "
				 "10.0.0.1:8080\n");
}

/* B22: one NodePort per family at the family's wildcard; B24, B25: LB IPs
 * and externalIPs of each family, sorted, after the NodePort; the ClusterIP
 * first. */
static void test_b22_b24_b25_dual_stack_frontends(void **state)
{
	struct model_objects objs = { 0 };
	struct desired_state st;
	char out[4096], why[256], text[ADDR_STR_LEN];

	(void)state;
	decode_yaml(&objs,
		    "{kind: Service, metadata: {name: s, namespace: n}, spec: {type: LoadBalancer,"
		    " clusterIPs: [10.96.0.1, 'fd00::1'], externalIPs: [203.0.113.9, '2001:db8::9',"
		    " 203.0.113.1], ports: [{name: http, port: 80, nodePort: 30080}]},"
		    " status: {" LB_STATUS "}}\n" SLICE4(EP_A) SLICE6("{addresses: ['fd00::a']}"),
		    DECODE_OK, why, sizeof(why));
	assert_int_equal(model_compute(&objs, 1, &node_a, 64, &st), 0);
	assert_string_equal(state_text(&st, out, sizeof(out)),
			    "n/s:http/TCP/v4 TCP 10.96.0.1:80 0.0.0.0:30080 lb:198.51.100.1:80 "
			    "lb:198.51.100.2:80 ext:203.0.113.1:80 ext:203.0.113.9:80 -> 10.0.0.1:8080\n"
			    "n/s:http/TCP/v6 TCP [fd00::1]:80 [::]:30080 ext:[2001:db8::9]:80 "
			    "lb:[2001:db8::10]:80 -> [fd00::a]:8080\n");
	assert_int_equal(st.svcs[0].frontends[1].kind, FRONTEND_NODE_PORT);
	assert_true(addr_is_v4(&st.svcs[0].frontends[1].addr)); /* ::ffff:0.0.0.0 */
	assert_int_equal(st.svcs[1].frontends[1].kind, FRONTEND_NODE_PORT);
	assert_string_equal(addr_format(&st.svcs[1].frontends[1].addr, text), "::");
	for (size_t i = 0; i < st.n_svcs; i++) {
		assert_int_equal(st.svcs[i].frontends[0].kind, FRONTEND_CLUSTER_IP);
	}
	desired_free(&st);
	model_objects_free(&objs);
}

/* B25: externalIPs on a ClusterIP Service too; B27: no NodePort, the LB IPs
 * still served; an address both an LB IP and an externalIP is one frontend. */
static void test_b25_b27_external_ips_and_no_node_port(void **state)
{
	char out[2048];

	(void)state;
	compute_node(SVC("externalIPs: [203.0.113.5],", "") SLICE4(EP_A), &node_a, out,
		     sizeof(out));
	assert_string_equal(out, "n/s:http/TCP/v4 TCP 10.96.0.1:80 ext:203.0.113.5:80 -> "
				 "10.0.0.1:8080\n");
	compute_node(SVC("type: LoadBalancer, allocateLoadBalancerNodePorts: false,"
			 " externalIPs: [198.51.100.1],", LB_STATUS) SLICE4(EP_A), &node_a, out,
		     sizeof(out));
	assert_string_equal(out, "n/s:http/TCP/v4 TCP 10.96.0.1:80 lb:198.51.100.1:80 "
				 "lb:198.51.100.2:80 -> 10.0.0.1:8080\n");
}

/* B32: SCTP never passes the socket hooks, so its ClusterIP is not listed
 * as programmed; its NodePort and externalIP are (the per-packet path), and
 * the log says which half works. */
static void test_b32_sctp_cluster_ip_not_programmed(void **state)
{
	char out[2048], log[2048];

	(void)state;
	compute_logged("{kind: Service, metadata: {name: s, namespace: n}, spec: {type: NodePort,"
		       " clusterIP: 10.96.0.1, externalIPs: [203.0.113.5], ports: [{name: http,"
		       " port: 80, nodePort: 30080, protocol: SCTP}]}}\n"
		       "---\n{kind: EndpointSlice, metadata: {name: s4, namespace: n, labels:"
		       " {kubernetes.io/service-name: s}}, addressType: IPv4, ports: [{name: http,"
		       " port: 8080, protocol: SCTP}], endpoints: [" EP_A "]}\n",
		       &node_a, out, sizeof(out), log, sizeof(log));
	assert_string_equal(out, "n/s:http/SCTP/v4 SCTP 0.0.0.0:30080 ext:203.0.113.5:80 -> "
				 "10.0.0.1:8080\n");
	assert_logged(log, "Service n/s: port 80 is SCTP: its ClusterIP is not served");
	compute_logged("{kind: Service, metadata: {name: s, namespace: n}, spec: {clusterIP:"
		       " 10.96.0.1, ports: [{name: http, port: 80, protocol: SCTP}]}}\n",
		       &node_a, out, sizeof(out), log, sizeof(log));
	assert_string_equal(out, "");
	assert_logged(log, "nothing of it is programmed");
}

/* B25: a string that is no IP is ignored as kube-proxy does (not warned:
 * debug level), but counted; the Service is served. */
static void test_b25_invalid_external_ips_ignored_and_counted(void **state)
{
	uint64_t before = model_fields_ignored();
	char out[2048], log[4096];

	(void)state;
	compute_logged(SVC("externalIPs: [not-an-ip, 203.0.113.5, 7, '203.0.113.300'],", "")
		       SLICE4(EP_A), &node_a, out, sizeof(out), log, sizeof(log));
	assert_string_equal(out, "n/s:http/TCP/v4 TCP 10.96.0.1:80 ext:203.0.113.5:80 -> "
				 "10.0.0.1:8080\n");
	assert_int_equal(model_fields_ignored() - before, 3);
	assert_not_logged(log, "level=warn");
}

#define RANGES_SVC(ranges)                                                                 \
	"{kind: Service, metadata: {name: s, namespace: n}, spec: {type: LoadBalancer,"     \
	" clusterIPs: [10.96.0.1, 'fd00::1'], loadBalancerSourceRanges: [" ranges "],"        \
	" ports: [{name: http, port: 80, nodePort: 30080}]}, status: {" LB_STATUS "}}\n"

/* B26: each family's LB IP ports get that family's ranges (v4-mapped, host
 * bits cleared, sorted, each once; ::/0 among them admits every source, as
 * no range does); an entry that does not parse is left out with a warning
 * naming the Service and the field, and counted. */
static void test_b26_source_ranges_per_family_bad_entry_left_out(void **state)
{
	uint64_t before = model_fields_ignored();
	char out[4096], log[8192];

	(void)state;
	compute_logged(RANGES_SVC("' 10.1.2.3/8 ', 203.0.113.0/24, '2001:db8::/32', bogus,"
				  " 10.0.0.0/33, 203.0.113.0/24, '::/0'")
		       SLICE4(EP_A) SLICE6("{addresses: ['fd00::a']}"),
		       &node_a, out, sizeof(out), log, sizeof(log));
	assert_string_equal(out,
			    "n/s:http/TCP/v4 TCP 10.96.0.1:80 0.0.0.0:30080 lb:198.51.100.1:80 "
			    "lb:198.51.100.2:80 ranges 10.0.0.0/8 203.0.113.0/24 -> 10.0.0.1:8080\n"
			    "n/s:http/TCP/v6 TCP [fd00::1]:80 [::]:30080 lb:[2001:db8::10]:80 "
			    "-> [fd00::a]:8080\n");
	assert_logged(log, "level=warn component=model msg=\"Service n/s: "
			   "spec.loadBalancerSourceRanges[3]: \"bogus\" is not a CIDR, left out\"");
	assert_logged(log, "spec.loadBalancerSourceRanges[4]: \"10.0.0.0/33\" is not a CIDR");
	assert_int_equal(model_fields_ignored() - before, 2);
}

/* B26: ranges listed and none parses: fail closed, the LB IPs admit only the
 * family's unspecified address, which no client has; said in the log. A
 * port without LB IPs has no ranges (they apply to LB IPs only). */
static void test_b26_no_range_parses_fails_closed(void **state)
{
	char out[4096], log[8192];

	(void)state;
	compute_logged(RANGES_SVC("bogus, 10.0.0.0/40")
		       SLICE4(EP_A) SLICE6("{addresses: ['fd00::a']}"),
		       &node_a, out, sizeof(out), log, sizeof(log));
	assert_string_equal(out,
			    "n/s:http/TCP/v4 TCP 10.96.0.1:80 0.0.0.0:30080 lb:198.51.100.1:80 "
			    "lb:198.51.100.2:80 ranges 0.0.0.0/32 -> 10.0.0.1:8080\n"
			    "n/s:http/TCP/v6 TCP [fd00::1]:80 [::]:30080 lb:[2001:db8::10]:80 "
			    "ranges ::/128 -> [fd00::a]:8080\n");
	assert_logged(log, "Service n/s: no entry of spec.loadBalancerSourceRanges parses: its "
			   "LB IPs admit no source");
	compute_node("{kind: Service, metadata: {name: s, namespace: n}, spec: {type: LoadBalancer,"
		     " clusterIP: 10.96.0.1, loadBalancerSourceRanges: [10.0.0.0/8],"
		     " ports: [{name: http, port: 80, nodePort: 30080}]}}\n" SLICE4(EP_A),
		     &node_a, out, sizeof(out));
	assert_string_equal(out, "n/s:http/TCP/v4 TCP 10.96.0.1:80 0.0.0.0:30080 -> "
				 "10.0.0.1:8080\n");
}

#define LOCAL_LB(extra)                                                                    \
	SVC("type: LoadBalancer, externalTrafficPolicy: Local, healthCheckNodePort: 31999,"  \
	    " sessionAffinity: ClientIP, loadBalancerSourceRanges: [203.0.113.0/24]," extra,  \
	    "loadBalancer: {ingress: [{ip: 198.51.100.1}]},")

/* B16, B23, B28, B30: externalTrafficPolicy Local keeps every endpoint in the
 * Cluster set (flagged ext-local) and adds "<id>/external": the external
 * frontends only, this node's ready endpoints, the same ranges and
 * affinity, and the healthCheckNodePort. */
static void test_b16_b23_b28_etp_local_external_set(void **state)
{
	struct model_objects objs = { 0 };
	struct desired_state st;
	char out[4096], why[256];

	(void)state;
	decode_yaml(&objs, LOCAL_LB("") SLICE4(EP_A ", " EP_B
					       ", {addresses: [10.0.0.3], nodeName: node-a,"
					       " conditions: {ready: false}}"),
		    DECODE_OK, why, sizeof(why));
	assert_int_equal(model_compute(&objs, 1, &node_a, 64, &st), 0);
	assert_string_equal(state_text(&st, out, sizeof(out)),
			    "n/s:http/TCP/v4 TCP 10.96.0.1:80 0.0.0.0:30080 lb:198.51.100.1:80 "
			    "ranges 203.0.113.0/24 ext-local -> 10.0.0.1:8080 10.0.0.2:8080\n"
			    "n/s:http/TCP/v4/external TCP 0.0.0.0:30080 lb:198.51.100.1:80 "
			    "ranges 203.0.113.0/24 external ext-local hc=31999 -> 10.0.0.1:8080\n");
	assert_int_equal(st.svcs[1].affinity_timeout, 10800);
	assert_int_equal(st.svcs[0].affinity_timeout, 10800);
	assert_int_equal(st.svcs[1].frontends[0].kind, FRONTEND_NODE_PORT);
	assert_int_equal(st.svcs[1].frontends[0].port, 30080);
	assert_false(st.svcs[1].local);
	desired_free(&st);
	model_objects_free(&objs);
}

/* B11 on the Local set alone: no local endpoint ready, its serving and
 * terminating ones (fallback); none at all: no backend, the datapath drops
 * (B16); the Cluster set is unaffected. */
static void test_b11_b16_etp_local_fallback_and_none(void **state)
{
	char out[4096];

	(void)state;
	compute_node(LOCAL_LB("") SLICE4(EP_B ", {addresses: [10.0.0.1], nodeName: node-a,"
				  " conditions: {ready: false, serving: true, terminating: true}}"),
		     &node_a, out, sizeof(out));
	assert_string_equal(out, "n/s:http/TCP/v4 TCP 10.96.0.1:80 0.0.0.0:30080 lb:198.51.100.1:80 "
				 "ranges 203.0.113.0/24 ext-local -> 10.0.0.2:8080\n"
				 "n/s:http/TCP/v4/external TCP 0.0.0.0:30080 lb:198.51.100.1:80 "
				 "ranges 203.0.113.0/24 external ext-local hc=31999 (fallback) -> "
				 "10.0.0.1:8080\n");
	compute_node(LOCAL_LB("") SLICE4(EP_B), &node_a, out, sizeof(out));
	assert_string_equal(out, "n/s:http/TCP/v4 TCP 10.96.0.1:80 0.0.0.0:30080 lb:198.51.100.1:80 "
				 "ranges 203.0.113.0/24 ext-local -> 10.0.0.2:8080\n"
				 "n/s:http/TCP/v4/external TCP 0.0.0.0:30080 lb:198.51.100.1:80 "
				 "ranges 203.0.113.0/24 external ext-local hc=31999 ->\n");
}

/* ETP Local on a NodePort Service: an external set without
 * healthCheckNodePort (B28: LoadBalancer only); on a port with no external
 * frontend (a ClusterIP Service), no external set at all. */
static void test_b16_b28_etp_local_node_port_and_cluster_ip(void **state)
{
	char out[4096];

	(void)state;
	compute_node(SVC("type: NodePort, externalTrafficPolicy: Local,"
			 " healthCheckNodePort: 31999,", "") SLICE4(EP_A ", " EP_B),
		     &node_a, out, sizeof(out));
	assert_string_equal(out, "n/s:http/TCP/v4 TCP 10.96.0.1:80 0.0.0.0:30080 ext-local -> "
				 "10.0.0.1:8080 10.0.0.2:8080\n"
				 "n/s:http/TCP/v4/external TCP 0.0.0.0:30080 external ext-local -> "
				 "10.0.0.1:8080\n");
	compute_node(SVC("externalTrafficPolicy: Local,", "") SLICE4(EP_A ", " EP_B), &node_a,
		     out, sizeof(out));
	assert_string_equal(out, "n/s:http/TCP/v4 TCP 10.96.0.1:80 -> 10.0.0.1:8080 "
				 "10.0.0.2:8080\n");
}

/* B31: topology hints steer the Cluster set only; the external set is this
 * node's endpoints whatever their hints. */
static void test_b31_hints_cluster_set_only(void **state)
{
	char out[4096];

	(void)state;
	compute_node(LOCAL_LB("") SLICE4(
			     "{addresses: [10.0.0.1], nodeName: node-a, hints: {forZones: [{name: zone-2}]}},"
			     " {addresses: [10.0.0.2], nodeName: node-b, hints: {forZones: [{name: zone-1}]}}"),
		     &node_a, out, sizeof(out));
	assert_string_equal(out, "n/s:http/TCP/v4 TCP 10.96.0.1:80 0.0.0.0:30080 lb:198.51.100.1:80 "
				 "ranges 203.0.113.0/24 ext-local -> 10.0.0.2:8080\n"
				 "n/s:http/TCP/v4/external TCP 0.0.0.0:30080 lb:198.51.100.1:80 "
				 "ranges 203.0.113.0/24 external ext-local hc=31999 -> "
				 "10.0.0.1:8080\n");
}

/* Bad input: a nodePort outside the node-port range is not programmed (the
 * node's range, else 30000-32767); an LB IP or externalIP equal to a node
 * address is left out. Each warned naming the Service, counted, once: a
 * recompute of the same objects says nothing more. */
static void test_node_port_out_of_range_and_node_address_left_out(void **state)
{
	struct model_node node = node_a;
	struct model_objects objs = { 0 };
	struct ferry_ip addrs[2];
	struct desired_state st;
	struct capture c;
	char out[4096], why[256], log[8192];
	uint64_t before = model_fields_ignored();

	(void)state;
	addr_parse("198.51.100.1", &addrs[0]);
	addr_parse("203.0.113.5", &addrs[1]);
	node.addrs = addrs;
	node.n_addrs = 2;
	decode_yaml(&objs,
		    "{kind: Service, metadata: {name: s, namespace: n}, spec: {type: LoadBalancer,"
		    " clusterIP: 10.96.0.1, externalIPs: [203.0.113.5, 203.0.113.6], ports:"
		    " [{name: http, port: 80, nodePort: 8080}, {name: dns, port: 53, protocol: UDP,"
		    " nodePort: 30053}]}, status: {" LB_STATUS "}}\n" SLICE4(EP_A),
		    DECODE_OK, why, sizeof(why));
	capture_begin(&c);
	assert_int_equal(model_compute(&objs, 1, &node, 64, &st), 0);
	state_text(&st, out, sizeof(out));
	desired_free(&st);
	assert_int_equal(model_compute(&objs, 1, &node, 64, &st), 0);
	desired_free(&st);
	capture_end(&c, log, sizeof(log));
	assert_string_equal(out, "n/s:dns/UDP/v4 UDP 10.96.0.1:53 0.0.0.0:30053 lb:198.51.100.2:53 "
				 "ext:203.0.113.6:53 ->\n"
				 "n/s:http/TCP/v4 TCP 10.96.0.1:80 lb:198.51.100.2:80 "
				 "ext:203.0.113.6:80 -> 10.0.0.1:8080\n");
	assert_logged(log, "level=warn component=model msg=\"Service n/s: spec.ports[0].nodePort "
			   "8080 is outside the node-port range 30000-32767: not programmed\"");
	assert_logged(log, "Service n/s: LoadBalancer ingress IP 198.51.100.1 is an address of "
			   "this node: left out");
	assert_logged(log, "Service n/s: externalIP 203.0.113.5 is an address of this node: "
			   "left out");
	assert_int_equal(model_fields_ignored() - before, 3); /* once, not twice */
	/* A node whose range holds 8080 and 30053 not: the problems changed. */
	node.node_port_min = 8000;
	node.node_port_max = 9000;
	capture_begin(&c);
	assert_int_equal(model_compute(&objs, 1, &node, 64, &st), 0);
	state_text(&st, out, sizeof(out));
	desired_free(&st);
	capture_end(&c, log, sizeof(log));
	assert_string_equal(out, "n/s:dns/UDP/v4 UDP 10.96.0.1:53 lb:198.51.100.2:53 "
				 "ext:203.0.113.6:53 ->\n"
				 "n/s:http/TCP/v4 TCP 10.96.0.1:80 0.0.0.0:8080 lb:198.51.100.2:80 "
				 "ext:203.0.113.6:80 -> 10.0.0.1:8080\n");
	assert_logged(log, "spec.ports[1].nodePort 30053 is outside the node-port range 8000-9000");
	model_objects_free(&objs);
}

/* Other fields that do not parse: left out with a warning, counted, and the
 * Service served. */
static void test_bad_fields_never_drop_the_service(void **state)
{
	uint64_t before = model_fields_ignored();
	char out[4096], log[8192];

	(void)state;
	compute_logged(SVC("type: LoadBalancer, externalTrafficPolicy: Sometimes,"
			   " allocateLoadBalancerNodePorts: 'no', healthCheckNodePort: x,"
			   " externalIPs: 203.0.113.5,",
			   "loadBalancer: {ingress: [{ip: 198.51.100.300}, {ip: 198.51.100.1}]},")
		       SLICE4(EP_A), &node_a, out, sizeof(out), log, sizeof(log));
	assert_string_equal(out, "n/s:http/TCP/v4 TCP 10.96.0.1:80 0.0.0.0:30080 lb:198.51.100.1:80 "
				 "-> 10.0.0.1:8080\n");
	assert_logged(log, "Service n/s: spec.externalTrafficPolicy: unknown policy \"Sometimes\","
			   " taken as Cluster");
	assert_logged(log, "Service n/s: spec.allocateLoadBalancerNodePorts: not a boolean, taken "
			   "as true");
	assert_logged(log, "Service n/s: spec.externalIPs: not a list, ignored");
	assert_logged(log, "Service n/s: status.loadBalancer.ingress[0].ip: \"198.51.100.300\" is "
			   "not an IP address, ignored");
	assert_int_equal(model_fields_ignored() - before, 4);
	compute_logged("{kind: Service, metadata: {name: s, namespace: n}, spec: {type: NodePort,"
		       " clusterIP: 10.96.0.1, ports: [{name: http, port: 80, nodePort: '30080'}]}}\n"
		       SLICE4(EP_A), &node_a, out, sizeof(out), log, sizeof(log));
	assert_string_equal(out, "n/s:http/TCP/v4 TCP 10.96.0.1:80 -> 10.0.0.1:8080\n");
	assert_logged(log, "Service n/s: spec.ports[0].nodePort: not a port number, no NodePort "
			   "for this port");
}

/* A Node: its zone label and the InternalIP and ExternalIP addresses of
 * both families, sorted, each once; Hostname and DNS entries and strings
 * that are no IP left out. */
static void test_b22_decode_node(void **state)
{
	struct model_objects objs = { 0 };
	const struct model_node *node;
	char why[256], text[ADDR_STR_LEN], all[256] = "";

	(void)state;
	decode_yaml(&objs,
		    "{kind: Node, metadata: {name: node-a, labels: {topology.kubernetes.io/zone: z1}},"
		    " status: {addresses: [{type: InternalIP, address: 192.0.2.11},"
		    " {type: Hostname, address: node-a}, {type: InternalIP, address: '2001:db8::11'},"
		    " {type: ExternalIP, address: 198.51.100.7}, {type: InternalDNS, address: 10.9.9.9},"
		    " {type: ExternalIP, address: 192.0.2.11}, {type: InternalIP, address: bad}]}}\n"
		    "---\n{kind: Node, metadata: {name: node-b}}\n",
		    DECODE_OK, why, sizeof(why));
	assert_int_equal(objs.n_nodes, 2);
	assert_int_equal(objs.n_services + objs.n_slices, 0);
	node = model_objects_node(&objs, 1, "node-a");
	assert_non_null(node);
	assert_string_equal(node->zone, "z1");
	for (size_t i = 0; i < node->n_addrs; i++)
		snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s%s", i ? " " : "",
			 addr_format(&node->addrs[i], text));
	assert_string_equal(all, "192.0.2.11 198.51.100.7 2001:db8::11");
	node = model_objects_node(&objs, 1, "node-b");
	assert_non_null(node);
	assert_string_equal(node->zone, "");
	assert_int_equal(node->n_addrs, 0);
	assert_null(model_objects_node(&objs, 1, "node-c"));
	model_objects_free(&objs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b22_b27_decode_node_ports_and_defaults),
		cmocka_unit_test(test_b24_lb_ingress_vip_only),
		cmocka_unit_test(test_b22_b24_b25_dual_stack_frontends),
		cmocka_unit_test(test_b25_b27_external_ips_and_no_node_port),
		cmocka_unit_test(test_b25_invalid_external_ips_ignored_and_counted),
		cmocka_unit_test(test_b26_source_ranges_per_family_bad_entry_left_out),
		cmocka_unit_test(test_b26_no_range_parses_fails_closed),
		cmocka_unit_test(test_b16_b23_b28_etp_local_external_set),
		cmocka_unit_test(test_b11_b16_etp_local_fallback_and_none),
		cmocka_unit_test(test_b16_b28_etp_local_node_port_and_cluster_ip),
		cmocka_unit_test(test_b31_hints_cluster_set_only),
		cmocka_unit_test(test_node_port_out_of_range_and_node_address_left_out),
		cmocka_unit_test(test_bad_fields_never_drop_the_service),
		cmocka_unit_test(test_b22_decode_node),
		cmocka_unit_test(test_b32_sctp_cluster_ip_not_programmed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
