/* Unit tests of model_decode and model_compute against the B rules of
 * ../shared/spec/kube-proxy-behaviour.md. Objects are written as flow-style
 * YAML and decoded like the file source does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>

#include "capture.h"
#include "decode_yaml.h"
#include "common/intern.h"
#include "model/model.h"

static void compute_yaml(const char *yaml, size_t max, struct desired_state *st)
{
	struct model_objects objs = { 0 };
	char why[256];

	decode_yaml(&objs, yaml, DECODE_OK, why, sizeof(why));
	assert_int_equal(model_compute(&objs, 1, NULL, max, st), 0);
	model_objects_free(&objs);
}

static const struct desired_svc *find_svc(const struct desired_state *st, const char *id)
{
	for (size_t i = 0; i < st->n_svcs; i++)
		if (strcmp(st->svcs[i].id, id) == 0)
			return &st->svcs[i];
	fail_msg("no service port %s", id);
	return NULL;
}

/* backends: "addr:port" separated by spaces, in order; "" for none. */
static void assert_backends(const struct desired_svc *s, const char *backends)
{
	char buf[1024] = "", one[64];

	for (size_t i = 0; i < s->n_backends; i++) {
		addr_format_port(&s->backends[i].addr, s->backends[i].port, one, sizeof(one));
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? " " : "", one);
	}
	assert_string_equal(buf, backends);
}

#define WEB_SVC \
	"{kind: Service, metadata: {name: web, namespace: shop}, spec: {clusterIP: 10.96.0.1," \
	" ports: [{name: http, port: 80, targetPort: 9999}]}}\n"

static void test_b1_headless_and_external_name_ignored(void **state)
{
	struct desired_state st;

	(void)state;
	compute_yaml("{kind: Service, metadata: {name: a}, spec: {clusterIP: None, ports: [{port: 1}]}}\n"
		     "---\n{kind: Service, metadata: {name: b}, spec: {clusterIP: '', ports: [{port: 1}]}}\n"
		     "---\n{kind: Service, metadata: {name: c}, spec: {ports: [{port: 1}]}}\n"
		     "---\n{kind: Service, metadata: {name: d}, spec: {type: ExternalName,"
		     " clusterIP: 10.96.0.4, ports: [{port: 1}]}}\n", 64, &st);
	assert_int_equal(st.n_svcs, 0);
	desired_free(&st);
}

static void test_b2_proxy_labels_ignored(void **state)
{
	struct model_objects objs = { 0 };
	struct desired_state st;
	char why[256];

	(void)state;
	decode_yaml(&objs,
		    "{kind: Service, metadata: {name: a, labels: {service.kubernetes.io/service-proxy-name: x}},"
		    " spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}}\n"
		    "---\n{kind: Service, metadata: {name: b, labels: {service.kubernetes.io/headless: ''}},"
		    " spec: {clusterIP: 10.96.0.2, ports: [{port: 80}]}}\n"
		    "---\n{kind: Service, metadata: {name: c}, spec: {clusterIP: 10.96.0.3, ports: [{port: 80}]}}\n"
		    "---\n{kind: EndpointSlice, metadata: {name: c-1, labels: {kubernetes.io/service-name: c,"
		    " service.kubernetes.io/service-proxy-name: x}}, addressType: IPv4, ports: [{port: 8080}],"
		    " endpoints: [{addresses: [10.0.0.1]}]}\n", DECODE_OK, why, sizeof(why));
	assert_false(objs.services[0].proxied);
	assert_false(objs.services[1].proxied);
	assert_true(objs.services[2].proxied);
	assert_false(objs.slices[0].proxied);
	assert_int_equal(model_compute(&objs, 1, NULL, 64, &st), 0);
	assert_int_equal(st.n_svcs, 1);
	assert_string_equal(st.svcs[0].id, "default/c:/TCP/v4");
	assert_backends(&st.svcs[0], "");
	desired_free(&st);
	model_objects_free(&objs);
}

static void test_b3_dual_stack_one_entry_per_family(void **state)
{
	struct desired_state st;
	char vip[ADDR_STR_LEN];

	(void)state;
	compute_yaml("{kind: Service, metadata: {name: api, namespace: shop}, spec: {clusterIP: 10.96.0.9,"
		     " clusterIPs: ['fd00::9', 10.96.0.9], ports: [{name: https, port: 443}]}}\n"
		     "---\n{kind: EndpointSlice, metadata: {name: a6, namespace: shop, labels:"
		     " {kubernetes.io/service-name: api}}, addressType: IPv6,"
		     " ports: [{name: https, port: 8443}], endpoints: [{addresses: ['fd00::21']}]}\n"
		     "---\n{kind: EndpointSlice, metadata: {name: a4, namespace: shop, labels:"
		     " {kubernetes.io/service-name: api}}, addressType: IPv4,"
		     " ports: [{name: https, port: 8443}], endpoints: [{addresses: [10.0.0.21]}]}\n",
		     64, &st);
	assert_int_equal(st.n_svcs, 2);
	assert_string_equal(st.svcs[0].id, "shop/api:https/TCP/v4");
	assert_string_equal(addr_format(&st.svcs[0].frontends[0].addr, vip), "10.96.0.9");
	assert_backends(&st.svcs[0], "10.0.0.21:8443");
	assert_string_equal(st.svcs[1].id, "shop/api:https/TCP/v6");
	assert_string_equal(addr_format(&st.svcs[1].frontends[0].addr, vip), "fd00::9");
	assert_backends(&st.svcs[1], "[fd00::21]:8443");
	desired_free(&st);
}

static void test_b4_same_port_tcp_and_udp(void **state)
{
	struct desired_state st;

	(void)state;
	compute_yaml("{kind: Service, metadata: {name: dns}, spec: {clusterIP: 10.96.0.10, ports:"
		     " [{name: dns, port: 53, protocol: UDP}, {name: dns, port: 53, protocol: TCP}]}}\n"
		     "---\n{kind: EndpointSlice, metadata: {name: dns-1, labels: {kubernetes.io/service-name: dns}},"
		     " addressType: IPv4, ports: [{name: dns, port: 5353, protocol: UDP}],"
		     " endpoints: [{addresses: [10.0.0.53]}]}\n", 64, &st);
	assert_int_equal(st.n_svcs, 2);
	assert_int_equal(find_svc(&st, "default/dns:dns/UDP/v4")->proto, IPPROTO_UDP);
	assert_backends(find_svc(&st, "default/dns:dns/UDP/v4"), "10.0.0.53:5353");
	assert_int_equal(find_svc(&st, "default/dns:dns/TCP/v4")->proto, IPPROTO_TCP);
	assert_backends(find_svc(&st, "default/dns:dns/TCP/v4"), "");
	desired_free(&st);
}

static void test_b6_family_and_fqdn_slices(void **state)
{
	struct model_objects objs = { 0 };
	struct desired_state st;
	char why[256];

	(void)state;
	decode_yaml(&objs, WEB_SVC
		    "---\n{kind: EndpointSlice, metadata: {name: w6, namespace: shop, labels:"
		    " {kubernetes.io/service-name: web}}, addressType: IPv6, ports: [{name: http, port: 1}],"
		    " endpoints: [{addresses: ['fd00::1']}]}\n"
		    "---\n{kind: EndpointSlice, metadata: {name: wf, namespace: shop, labels:"
		    " {kubernetes.io/service-name: web}}, addressType: FQDN, ports: [{name: http, port: 2}],"
		    " endpoints: [{addresses: [pod.example.com]}]}\n"
		    "---\n{kind: EndpointSlice, metadata: {name: other-ns, namespace: other, labels:"
		    " {kubernetes.io/service-name: web}}, addressType: IPv4, ports: [{name: http, port: 3}],"
		    " endpoints: [{addresses: [10.0.0.3]}]}\n"
		    "---\n{kind: EndpointSlice, metadata: {name: hand-written, namespace: shop, labels:"
		    " {kubernetes.io/service-name: web}}, addressType: IPv4, ports: [{name: http, port: 4}],"
		    " endpoints: [{addresses: [10.0.0.4]}]}\n", DECODE_OK, why, sizeof(why));
	assert_int_equal(objs.slices[0].family, 6);
	assert_int_equal(objs.slices[1].family, 0);
	assert_int_equal(objs.slices[1].n_endpoints, 0);
	assert_int_equal(objs.slices[2].family, 4);
	assert_int_equal(model_compute(&objs, 1, NULL, 64, &st), 0);
	assert_int_equal(st.n_svcs, 1);
	assert_backends(find_svc(&st, "shop/web:http/TCP/v4"), "10.0.0.4:4");
	desired_free(&st);
	model_objects_free(&objs);
}

static void test_b7_name_match_merge_and_port_zero_skipped(void **state)
{
	struct model_objects objs = { 0 };
	struct desired_state st;
	char why[256];

	(void)state;
	decode_yaml(&objs,
		    "{kind: Service, metadata: {name: s}, spec: {clusterIP: 10.96.0.1, ports:"
		    " [{port: 80, targetPort: 1234}]}}\n"
		    "---\n{kind: EndpointSlice, metadata: {name: s-1, labels: {kubernetes.io/service-name: s}},"
		    " addressType: IPv4, ports: [{name: other, port: 9}, {port: 0}, {name: ''}, {port: 8080}],"
		    " endpoints: [{addresses: [10.0.0.2]}]}\n"
		    "---\n{kind: EndpointSlice, metadata: {name: s-2, labels: {kubernetes.io/service-name: s}},"
		    " addressType: IPv4, ports: [{name: '', port: 8081, protocol: TCP}],"
		    " endpoints: [{addresses: [10.0.0.1]}]}\n", DECODE_OK, why, sizeof(why));
	assert_int_equal(objs.slices[0].n_ports, 2); /* port 0 and no port skipped */
	assert_string_equal(objs.slices[0].ports[1].name, "");
	assert_int_equal(model_compute(&objs, 1, NULL, 64, &st), 0);
	/* targetPort 1234 never read; both slices merged, sorted by address. */
	assert_backends(find_svc(&st, "default/s:/TCP/v4"), "10.0.0.1:8081 10.0.0.2:8080");
	desired_free(&st);
	model_objects_free(&objs);
}

static void test_b8_first_address_only(void **state)
{
	struct model_objects objs = { 0 };
	struct desired_state st;
	char why[256];

	(void)state;
	decode_yaml(&objs, WEB_SVC
		    "---\n{kind: EndpointSlice, metadata: {name: w, namespace: shop, labels:"
		    " {kubernetes.io/service-name: web}}, addressType: IPv4, ports: [{name: http, port: 8080}],"
		    " endpoints: [{addresses: [10.0.0.1, 10.0.0.2]}, {addresses: []}, {conditions: {}}]}\n",
		    DECODE_OK, why, sizeof(why));
	assert_int_equal(objs.slices[0].n_endpoints, 1);
	assert_int_equal(model_compute(&objs, 1, NULL, 64, &st), 0);
	assert_backends(&st.svcs[0], "10.0.0.1:8080");
	desired_free(&st);
	model_objects_free(&objs);
}

static void test_b9_duplicate_non_terminating_wins(void **state)
{
	struct desired_state st;

	(void)state;
	compute_yaml(WEB_SVC
		     "---\n{kind: EndpointSlice, metadata: {name: w1, namespace: shop, labels:"
		     " {kubernetes.io/service-name: web}}, addressType: IPv4, ports: [{name: http, port: 8080}],"
		     " endpoints: [{addresses: [10.0.0.1], conditions: {ready: false, terminating: true,"
		     " serving: true}}, {addresses: [10.0.0.2]}]}\n"
		     "---\n{kind: EndpointSlice, metadata: {name: w2, namespace: shop, labels:"
		     " {kubernetes.io/service-name: web}}, addressType: IPv4, ports: [{name: http, port: 8080}],"
		     " endpoints: [{addresses: [10.0.0.1], conditions: {ready: true}}, {addresses: [10.0.0.2]}]}\n",
		     64, &st);
	assert_backends(&st.svcs[0], "10.0.0.1:8080 10.0.0.2:8080");
	assert_false(st.svcs[0].fallback);
	desired_free(&st);
}

static void test_b10_condition_defaults(void **state)
{
	struct model_objects objs = { 0 };
	const struct model_endpoint *ep;
	char why[256];

	(void)state;
	decode_yaml(&objs,
		    "{kind: EndpointSlice, metadata: {name: e}, addressType: IPv4, endpoints: ["
		    "{addresses: [10.0.0.1]},"
		    " {addresses: [10.0.0.2], conditions: {ready: false}},"
		    " {addresses: [10.0.0.3], conditions: {ready: false, serving: true, terminating: true},"
		    " nodeName: n1, zone: z1}]}\n", DECODE_OK, why, sizeof(why));
	ep = objs.slices[0].endpoints;
	assert_string_equal(objs.slices[0].service_name, "");
	assert_true(ep[0].ready && ep[0].serving && !ep[0].terminating);
	assert_string_equal(model_endpoint_node(&ep[0]), "");
	assert_int_equal(ep[0].n_hint_zones, 0);
	assert_true(!ep[1].ready && !ep[1].serving && !ep[1].terminating);
	assert_true(!ep[2].ready && ep[2].serving && ep[2].terminating);
	assert_string_equal(model_endpoint_node(&ep[2]), "n1");
	model_objects_free(&objs);
}

#define WEB_SLICE_HEAD \
	"---\n{kind: EndpointSlice, metadata: {name: w, namespace: shop, labels:" \
	" {kubernetes.io/service-name: web}}, addressType: IPv4, ports: [{name: http, port: 8080}]," \
	" endpoints: ["

static void test_b11_terminating_fallback(void **state)
{
	struct desired_state st;

	(void)state;
	compute_yaml(WEB_SVC WEB_SLICE_HEAD
		     "{addresses: [10.0.0.3], conditions: {ready: false, serving: true, terminating: true}},"
		     " {addresses: [10.0.0.2], conditions: {ready: false, serving: false, terminating: true}},"
		     " {addresses: [10.0.0.1], conditions: {ready: false, serving: true, terminating: true}},"
		     " {addresses: [10.0.0.4], conditions: {ready: false}}]}\n", 64, &st);
	assert_true(st.svcs[0].fallback);
	assert_backends(&st.svcs[0], "10.0.0.1:8080 10.0.0.3:8080");
	desired_free(&st);
}

static void test_b11_ready_preferred_over_terminating(void **state)
{
	struct desired_state st;

	(void)state;
	compute_yaml(WEB_SVC WEB_SLICE_HEAD
		     "{addresses: [10.0.0.1], conditions: {ready: false, serving: true, terminating: true}},"
		     " {addresses: [10.0.0.2]}]}\n", 64, &st);
	assert_false(st.svcs[0].fallback);
	assert_backends(&st.svcs[0], "10.0.0.2:8080");
	desired_free(&st);
}

static void test_b14_no_endpoints_zero_backends(void **state)
{
	struct desired_state st;

	(void)state;
	compute_yaml(WEB_SVC WEB_SLICE_HEAD
		     "{addresses: [10.0.0.1], conditions: {ready: false}}]}\n"
		     "---\n{kind: EndpointSlice, metadata: {name: w2, namespace: shop, labels:"
		     " {kubernetes.io/service-name: web}}, addressType: IPv4, ports: null, endpoints: null}\n",
		     64, &st);
	assert_int_equal(st.n_svcs, 1);
	assert_int_equal(st.svcs[0].n_backends, 0);
	assert_null(st.svcs[0].backends);
	assert_false(st.svcs[0].fallback);
	desired_free(&st);
}

/* B30: ClientIP affinity carries its timeout (default 10800) into every
 * port of the Service; None or absent is 0; bad values refuse the Service. */
static void test_b30_session_affinity(void **state)
{
	struct model_objects objs = { 0 };
	struct desired_state st;
	char why[256];

	(void)state;
	compute_yaml("{kind: Service, metadata: {name: a}, spec: {clusterIP: 10.96.0.1,"
		     " sessionAffinity: ClientIP, ports: [{name: x, port: 1}, {name: y, port: 2}]}}\n"
		     "---\n{kind: Service, metadata: {name: b}, spec: {clusterIP: 10.96.0.2,"
		     " sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 30}},"
		     " ports: [{port: 1}]}}\n"
		     "---\n{kind: Service, metadata: {name: c}, spec: {clusterIP: 10.96.0.3,"
		     " sessionAffinity: None, sessionAffinityConfig: {clientIP: {timeoutSeconds: 30}},"
		     " ports: [{port: 1}]}}\n", 64, &st);
	assert_int_equal(find_svc(&st, "default/a:x/TCP/v4")->affinity_timeout, 10800);
	assert_int_equal(find_svc(&st, "default/a:y/TCP/v4")->affinity_timeout, 10800);
	assert_int_equal(find_svc(&st, "default/b:/TCP/v4")->affinity_timeout, 30);
	assert_int_equal(find_svc(&st, "default/c:/TCP/v4")->affinity_timeout, 0);
	desired_free(&st);

	decode_yaml(&objs, "{kind: Service, metadata: {name: d}, spec: {clusterIP: 10.96.0.4,"
		    " sessionAffinity: Sticky, ports: [{port: 1}]}}\n", DECODE_INVALID, why, sizeof(why));
	assert_non_null(strstr(why, "spec.sessionAffinity: unknown value \"Sticky\""));
	decode_yaml(&objs, "{kind: Service, metadata: {name: d}, spec: {clusterIP: 10.96.0.4,"
		    " sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}},"
		    " ports: [{port: 1}]}}\n"
		    "---\n{kind: Service, metadata: {name: e}, spec: {clusterIP: 10.96.0.5,"
		    " sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}},"
		    " ports: [{port: 1}]}}\n"
		    "---\n{kind: Service, metadata: {name: f}, spec: {clusterIP: 10.96.0.6,"
		    " sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 1.5}},"
		    " ports: [{port: 1}]}}\n", DECODE_INVALID, why, sizeof(why));
	assert_non_null(strstr(why, "timeoutSeconds: want a whole number from 1 to 86400"));
	assert_int_equal(objs.n_services, 0);
	model_objects_free(&objs);
}

/* compute_yaml with what it logs (stderr) into log, echoed so that it still
 * shows. */
static void compute_yaml_logged(const char *yaml, size_t max, struct desired_state *st,
				char *log, size_t len)
{
	struct capture c;

	capture_begin(&c);
	compute_yaml(yaml, max, st);
	capture_end(&c, log, len);
}

/* Cut to the limit, with a warning naming the service port. */
static void test_truncation_to_max_per_service(void **state)
{
	struct desired_state st;
	char log[1024];

	(void)state;
	compute_yaml_logged(WEB_SVC WEB_SLICE_HEAD
			    "{addresses: [10.0.0.4]}, {addresses: [10.0.0.2]}, {addresses: [10.0.0.3]},"
			    " {addresses: [10.0.0.1]}]}\n", 3, &st, log, sizeof(log));
	assert_int_equal(st.truncated, 1);
	assert_non_null(strstr(log, "level=warn component=model msg=\"shop/web:http/TCP/v4 has 4 "
				    "backends, programmed the first 3 (--max-backends-per-service)\""));
	assert_backends(&st.svcs[0], "10.0.0.1:8080 10.0.0.2:8080 10.0.0.3:8080");
	desired_free(&st);
	compute_yaml(WEB_SVC WEB_SLICE_HEAD "{addresses: [10.0.0.1]}]}\n", 1, &st);
	assert_int_equal(st.truncated, 0);
	desired_free(&st);
}

static void test_decode_defaults_and_ignored_kinds(void **state)
{
	struct model_objects objs = { 0 };
	const struct model_service *svc;
	char why[256];

	(void)state;
	decode_yaml(&objs, "{kind: Pod, metadata: {name: p}}\n---\n{kind: ConfigMap}\n---\n{metadata: {}}\n",
		    DECODE_IGNORED, why, sizeof(why));
	decode_yaml(&objs, "{kind: Service, metadata: {name: s, namespace: ''}, status: {x: 1},"
		    " spec: {type: NodePort, clusterIP: 10.96.0.1, ports: [{port: 80, nodePort: 30080}]}}\n",
		    DECODE_OK, why, sizeof(why));
	assert_int_equal(objs.n_services, 1);
	assert_int_equal(objs.n_slices, 0);
	svc = &objs.services[0];
	assert_string_equal(svc->ns, "default");
	assert_int_equal(svc->type, SVC_TYPE_NODE_PORT);
	assert_int_equal(svc->n_cluster_ips, 1);
	assert_int_equal(svc->cluster_ip_family[0], 4);
	assert_string_equal(svc->ports[0].name, "");
	assert_int_equal(svc->ports[0].proto, IPPROTO_TCP);
	assert_int_equal(svc->ports[0].port, 80);
	model_objects_free(&objs);
}

/* Each invalid object names itself and the field. */
static void test_decode_invalid_reasons(void **state)
{
	static const char *const cases[][2] = {
		{ "{kind: Service, metadata: {name: s, namespace: n}, spec: {clusterIP: 10.96.0.300}}",
		  "Service n/s: spec.clusterIP: \"10.96.0.300\" is not an IP address" },
		{ "{kind: Service, metadata: {name: s}, spec: {clusterIPs: [10.0.0.1, 10.0.0.2]}}",
		  "Service default/s: spec.clusterIPs[1]: second IPv4 address" },
		{ "{kind: Service, metadata: {name: s}, spec: {ports: [{port: 80, protocol: ICMP}]}}",
		  "Service default/s: spec.ports[0].protocol: unknown protocol \"ICMP\"" },
		{ "{kind: Service, metadata: {name: s}, spec: {ports: [{port: 70000}]}}",
		  "Service default/s: spec.ports[0].port: not a port number" },
		{ "{kind: Service, metadata: {name: s}, spec: {ports: [{port: 0}]}}",
		  "Service default/s: spec.ports[0].port: missing or 0" },
		{ "{kind: Service, metadata: {name: s}, spec: {ports: [{port: 1}, {port: 2}]}}",
		  "Service default/s: spec.ports[1]: duplicate name \"\" for TCP" },
		{ "{kind: Service, metadata: {name: s}, spec: {type: Weird}}",
		  "Service default/s: spec.type: unknown type \"Weird\"" },
		{ "{kind: Service, metadata: {namespace: n}}",
		  "Service n/?: metadata.name: missing or not a string" },
		{ "{kind: EndpointSlice, metadata: {name: e}, addressType: IPv4,"
		  " endpoints: [{addresses: ['fd00::1']}]}",
		  "EndpointSlice default/e: endpoints[0].addresses[0]: \"fd00::1\" is not an IPv4 address" },
		{ "{kind: EndpointSlice, metadata: {name: e}, addressType: IPv4,"
		  " ports: [{port: 80, protocol: tcp}]}",
		  "EndpointSlice default/e: ports[0].protocol: unknown protocol \"tcp\"" },
	};
	struct model_objects objs = { 0 };
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		decode_yaml(&objs, cases[i][0], DECODE_INVALID, why, sizeof(why));
		assert_string_equal(why, cases[i][1]);
	}
	assert_int_equal(objs.n_services + objs.n_slices, 0);
	model_objects_free(&objs);
}

/* An object's identity: namespace "default" when absent or empty. */
static void test_object_ref(void **state)
{
	static const char yaml[] =
		"{kind: Service, metadata: {name: a}}\n---\n"
		"{kind: EndpointSlice, metadata: {name: b, namespace: ''}}\n---\n"
		"{kind: Service, metadata: {name: c, namespace: n}}\n---\n"
		"{kind: Service, metadata: {namespace: n}}\n---\n"
		"{kind: Service, metadata: {name: d, namespace: 1}}\n---\n"
		"{metadata: {name: e}}\n";
	static const char *const expect[] = {
		"Service default/a", "EndpointSlice default/b", "Service n/c", NULL, NULL, NULL,
	};
	struct yaml_doc_error err;
	cJSON *docs = yaml_doc_parse(yaml, strlen(yaml), 1, &err), *doc;
	struct model_ref ref;
	char text[128];
	size_t i = 0;

	(void)state;
	assert_non_null(docs);
	cJSON_ArrayForEach(doc, docs) {
		bool ok = model_object_ref(doc, &ref);

		assert_int_equal(ok, expect[i] != NULL);
		if (ok) {
			snprintf(text, sizeof(text), "%s %s/%s", ref.kind, ref.ns, ref.name);
			assert_string_equal(text, expect[i]);
		}
		i++;
	}
	assert_int_equal(i, 6);
	cJSON_Delete(docs);
}

static void test_ids_sorted_and_duplicate_service_last_wins(void **state)
{
	struct desired_state st;

	(void)state;
	compute_yaml("{kind: Service, metadata: {name: z}, spec: {clusterIP: 10.96.0.1, ports:"
		     " [{name: b, port: 2}, {name: a, port: 1, protocol: UDP}]}}\n"
		     "---\n{kind: Service, metadata: {name: a}, spec: {clusterIP: 10.96.0.2, ports: [{port: 1}]}}\n"
		     "---\n{kind: Service, metadata: {name: a}, spec: {clusterIP: 10.96.0.3, ports: [{port: 3}]}}\n",
		     64, &st);
	assert_int_equal(st.n_svcs, 3);
	assert_string_equal(st.svcs[0].id, "default/a:/TCP/v4");
	assert_int_equal(st.svcs[0].frontends[0].port, 3);
	assert_string_equal(st.svcs[1].id, "default/z:a/UDP/v4");
	assert_int_equal(st.svcs[1].proto, IPPROTO_UDP);
	assert_string_equal(st.svcs[2].id, "default/z:b/TCP/v4");
	desired_free(&st);
}

/* Sets (one per file of a folder) are computed as one: a Service in a later
 * set replaces the one of an earlier set, the slices of every set merge. */
static void test_sets_computed_as_one(void **state)
{
	struct model_objects sets[3] = { 0 };
	struct desired_state st;
	char why[256], vip[ADDR_STR_LEN];

	(void)state;
	decode_yaml(&sets[0], WEB_SVC WEB_SLICE_HEAD "{addresses: [10.0.0.2]}]}\n"
		    "---\n{kind: Service, metadata: {name: a}, spec: {clusterIP: 10.96.0.5,"
		    " ports: [{port: 1}]}}\n", DECODE_OK, why, sizeof(why));
	decode_yaml(&sets[2], "{kind: Service, metadata: {name: web, namespace: shop}, spec:"
		    " {clusterIP: 10.96.0.7, ports: [{name: http, port: 81}]}}\n"
		    "---\n{kind: EndpointSlice, metadata: {name: w2, namespace: shop, labels:"
		    " {kubernetes.io/service-name: web}}, addressType: IPv4, ports: [{name: http,"
		    " port: 8080}], endpoints: [{addresses: [10.0.0.1]}, {addresses: [10.0.0.2]}]}\n",
		    DECODE_OK, why, sizeof(why));
	assert_int_equal(model_compute(sets, 3, NULL, 64, &st), 0);
	assert_int_equal(st.n_svcs, 2);
	assert_string_equal(st.svcs[0].id, "default/a:/TCP/v4");
	assert_string_equal(st.svcs[1].id, "shop/web:http/TCP/v4");
	assert_string_equal(addr_format(&st.svcs[1].frontends[0].addr, vip), "10.96.0.7");
	assert_int_equal(st.svcs[1].frontends[0].port, 81);
	assert_backends(&st.svcs[1], "10.0.0.1:8080 10.0.0.2:8080");
	desired_free(&st);
	assert_int_equal(model_compute(sets, 0, NULL, 64, &st), 0);
	assert_int_equal(st.n_svcs, 0);
	desired_free(&st);
	for (size_t i = 0; i < 3; i++)
		model_objects_free(&sets[i]);
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return p;
}

/* A slice's name and its Service's name in one block, as decoded (model.h). */
static char *xslice_names(const char *name, const char *service_name)
{
	size_t len = strlen(name) + 1, svc_len = strlen(service_name) + 1;
	char *p = malloc(len + svc_len);

	assert_non_null(p);
	memcpy(p, name, len);
	memcpy(p + len, service_name, svc_len);
	return p;
}

/* n services, each with one port and one slice of 10 ready endpoints. */
static void build_scale(struct model_objects *objs, size_t n)
{
	char name[32];

	objs->services = calloc(n, sizeof(*objs->services));
	objs->slices = calloc(n, sizeof(*objs->slices));
	assert_true(objs->services && objs->slices);
	objs->n_services = objs->cap_services = objs->n_slices = objs->cap_slices = n;
	for (size_t i = 0; i < n; i++) {
		struct model_service *svc = &objs->services[i];
		struct model_slice *sl = &objs->slices[n - 1 - i];

		snprintf(name, sizeof(name), "svc-%zu", i);
		*svc = (struct model_service){ .ns = intern_get("ns"), .name = xstrdup(name),
			.proxied = true, .n_cluster_ips = 1, .cluster_ip_family = { 4 },
			.n_ports = 1, .ports = calloc(1, sizeof(struct model_port)) };
		addr_parse("10.96.0.1", &svc->cluster_ips[0]);
		svc->cluster_ips[0].w[3] += (uint32_t)i;
		*svc->ports = (struct model_port){ .name = intern_get("http"), .proto = IPPROTO_TCP,
						  .port = 80 };
		*sl = (struct model_slice){ .ns = intern_get("ns"), .name = xslice_names(name, name),
			.family = 4, .proxied = true, .n_ports = 1,
			.ports = calloc(1, sizeof(struct model_port)), .n_endpoints = 10,
			.endpoints = calloc(10, sizeof(struct model_endpoint)) };
		sl->service_name = sl->name + strlen(name) + 1;
		*sl->ports = (struct model_port){ .name = intern_get("http"), .proto = IPPROTO_TCP,
						 .port = 8080 };
		for (size_t e = 0; e < 10; e++) {
			sl->endpoints[e] = (struct model_endpoint){ .ready = true, .serving = true,
				.place = intern_index(intern_get("")) };
			addr_parse("10.0.0.1", &sl->endpoints[e].addr);
			sl->endpoints[e].addr.w[3] += (uint32_t)((i * 10 + e) << 8);
		}
	}
}

/* 100,000 services x 10 endpoints: every one computed (its speed is make
 * bench's to measure, not a test's). */
static void test_compute_scale_100k(void **state)
{
	struct model_objects objs = { 0 };
	struct desired_state st;

	(void)state;
	build_scale(&objs, 100000);
	assert_int_equal(model_compute(&objs, 1, NULL, 64, &st), 0);
	assert_int_equal(st.n_svcs, 100000);
	for (size_t i = 0; i < st.n_svcs; i++)
		assert_int_equal(st.svcs[i].n_backends, 10);
	desired_free(&st);
	model_objects_free(&objs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b1_headless_and_external_name_ignored),
		cmocka_unit_test(test_b2_proxy_labels_ignored),
		cmocka_unit_test(test_b3_dual_stack_one_entry_per_family),
		cmocka_unit_test(test_b4_same_port_tcp_and_udp),
		cmocka_unit_test(test_b6_family_and_fqdn_slices),
		cmocka_unit_test(test_b7_name_match_merge_and_port_zero_skipped),
		cmocka_unit_test(test_b8_first_address_only),
		cmocka_unit_test(test_b9_duplicate_non_terminating_wins),
		cmocka_unit_test(test_b10_condition_defaults),
		cmocka_unit_test(test_b11_terminating_fallback),
		cmocka_unit_test(test_b11_ready_preferred_over_terminating),
		cmocka_unit_test(test_b14_no_endpoints_zero_backends),
		cmocka_unit_test(test_b30_session_affinity),
		cmocka_unit_test(test_truncation_to_max_per_service),
		cmocka_unit_test(test_decode_defaults_and_ignored_kinds),
		cmocka_unit_test(test_decode_invalid_reasons),
		cmocka_unit_test(test_object_ref),
		cmocka_unit_test(test_ids_sorted_and_duplicate_service_last_wins),
		cmocka_unit_test(test_sets_computed_as_one),
		cmocka_unit_test(test_compute_scale_100k),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
