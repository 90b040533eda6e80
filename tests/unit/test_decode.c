/* Unit tests of the numbers the decoders take from JSON (user/model/decode*.c):
 * every one must be a whole number in its range, checked before it is
 * converted to an integer (converting 1e300 or NaN to int is undefined
 * behaviour: build with -fsanitize=undefined,float-cast-overflow to see the
 * old code trip). Objects are JSON as the API sends them. */
#define _GNU_SOURCE /* asprintf */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "model/decode_priv.h"
#include "model/model.h"

/* Values that are not a whole number in any range the decoders use. */
static const char *const not_whole[] = {
	"1e300", "-1e300", "1e999", "-1e999", "65535.5", "0.5", "-0.5", "80.000001",
	"4294967376", "-4294967216", "9.3e18", "-9.3e18",
};

/* A cJSON number whose value is NaN: no JSON text parses to it, but a
 * decoder must not depend on that. */
static cJSON *nan_number(void)
{
	cJSON *n = cJSON_CreateNumber(0);

	assert_non_null(n);
	n->valuedouble = NAN;
	return n;
}

static void test_decode_int(void **state)
{
	int out = -7;
	cJSON *n;

	(void)state;
	for (size_t i = 0; i < sizeof(not_whole) / sizeof(not_whole[0]); i++) {
		n = cJSON_Parse(not_whole[i]);
		assert_non_null(n);
		if (decode_int(n, 0, 65535, &out))
			fail_msg("%s accepted as %d", not_whole[i], out);
		cJSON_Delete(n);
	}
	n = nan_number();
	assert_false(decode_int(n, 0, 65535, &out));
	assert_false(decode_int(n, -2147483647 - 1, 2147483647, &out));
	cJSON_Delete(n);
	assert_int_equal(out, -7); /* never written on failure */

	n = cJSON_Parse("65535");
	assert_true(decode_int(n, 0, 65535, &out));
	assert_int_equal(out, 65535);
	assert_false(decode_int(n, 0, 65534, &out));
	cJSON_Delete(n);
	n = cJSON_Parse("-0");
	assert_true(decode_int(n, 0, 1, &out));
	assert_int_equal(out, 0);
	cJSON_Delete(n);
	n = cJSON_Parse("2147483647");
	assert_true(decode_int(n, -2147483647 - 1, 2147483647, &out));
	assert_int_equal(out, 2147483647);
	cJSON_Delete(n);
	n = cJSON_Parse("\"80\"");
	assert_false(decode_int(n, 0, 65535, &out));
	cJSON_Delete(n);
	assert_false(decode_int(NULL, 0, 65535, &out));
}

/* Decodes the object; NULL: decoded, else the error must contain expect. */
static void decode_expect(cJSON *obj, const char *expect, struct model_objects *objs)
{
	char why[256] = "";
	enum decode_result rc = model_decode(obj, objs, why, sizeof(why));

	if (!expect) {
		if (rc != DECODE_OK)
			fail_msg("not decoded: %s", why);
		return;
	}
	if (rc != DECODE_INVALID)
		fail_msg("decoded, want an error with \"%s\"", expect);
	if (!strstr(why, expect))
		fail_msg("error \"%s\" lacks \"%s\"", why, expect);
}

static cJSON *parse_svc(const char *port, const char *timeout)
{
	char *json;
	cJSON *obj;

	assert_true(asprintf(&json,
			     "{\"kind\":\"Service\",\"metadata\":{\"name\":\"s\",\"namespace\":\"n\"},"
			     "\"spec\":{\"clusterIP\":\"10.96.0.1\",\"ports\":[{\"port\":%s}],"
			     "\"sessionAffinity\":\"ClientIP\",\"sessionAffinityConfig\":"
			     "{\"clientIP\":{\"timeoutSeconds\":%s}}}}", port, timeout) > 0);
	obj = cJSON_Parse(json);
	if (!obj)
		fail_msg("not JSON: %s", json);
	free(json);
	return obj;
}

static cJSON *parse_slice(const char *port)
{
	char *json;
	cJSON *obj;

	assert_true(asprintf(&json,
			     "{\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"s-1\",\"namespace\":\"n\","
			     "\"labels\":{\"kubernetes.io/service-name\":\"s\"}},\"addressType\":\"IPv4\","
			     "\"ports\":[{\"name\":\"\",\"port\":%s}],"
			     "\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}]}", port) > 0);
	obj = cJSON_Parse(json);
	if (!obj)
		fail_msg("not JSON: %s", json);
	free(json);
	return obj;
}

/* The port number at spec.ports[0].port of a Service, then ports[0].port
 * of a slice: expect NULL to decode, else the error. */
static void port_case(const char *port, const char *expect, cJSON *(*poke)(void))
{
	struct model_objects objs = { 0 };
	cJSON *svc = parse_svc(port, "30"), *slice = parse_slice(port);

	if (poke) {
		cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(
			cJSON_GetObjectItem(svc, "spec"), "ports"), 0), "port", poke());
		cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(slice, "ports"), 0),
					  "port", poke());
	}
	decode_expect(svc, expect ? "spec.ports[0].port: " : NULL, &objs);
	if (expect)
		decode_expect(svc, expect, &objs);
	decode_expect(slice, expect ? "ports[0].port: " : NULL, &objs);
	if (expect)
		decode_expect(slice, expect, &objs);
	cJSON_Delete(svc);
	cJSON_Delete(slice);
	model_objects_free(&objs);
}

static void assert_port(const char *port, uint16_t want)
{
	struct model_objects objs = { 0 };
	cJSON *svc = parse_svc(port, "30"), *slice = parse_slice(port);

	decode_expect(svc, NULL, &objs);
	decode_expect(slice, NULL, &objs);
	assert_int_equal(objs.n_services, 1);
	assert_int_equal(objs.n_slices, 1);
	assert_int_equal(objs.services[0].ports[0].port, want);
	assert_int_equal(objs.slices[0].ports[0].port, want);
	cJSON_Delete(svc);
	cJSON_Delete(slice);
	model_objects_free(&objs);
}

/* B4, B7: ports 1-65535; 0 is "no port" (refused for a Service, skipped in
 * a slice); anything else is refused with the field named. */
static void test_port_numbers(void **state)
{
	struct model_objects objs = { 0 };
	cJSON *obj;

	(void)state;
	for (size_t i = 0; i < sizeof(not_whole) / sizeof(not_whole[0]); i++)
		port_case(not_whole[i], "not a port number", NULL);
	port_case("0", "not a port number", nan_number);
	port_case("65536", "not a port number", NULL);
	port_case("-1", "not a port number", NULL);
	port_case("-80", "not a port number", NULL);
	port_case("\"80\"", "not a port number", NULL);
	port_case("true", "not a port number", NULL);
	assert_port("65535", 65535);
	assert_port("1", 1);
	assert_port("80.0", 80);
	assert_port("8e1", 80);

	obj = parse_svc("0", "30");
	decode_expect(obj, "spec.ports[0].port: missing or 0", &objs);
	cJSON_Delete(obj);
	obj = parse_slice("0");
	decode_expect(obj, NULL, &objs);
	assert_int_equal(objs.slices[0].n_ports, 0);
	cJSON_Delete(obj);
	model_objects_free(&objs);
}

/* B30: timeoutSeconds is a whole number from 1 to 86400. */
static void test_affinity_timeout_numbers(void **state)
{
	static const char *const bad[] = { "0", "-1", "86401", "86400.5" };
	const char *expect = "timeoutSeconds: want a whole number from 1 to 86400";
	struct model_objects objs = { 0 };
	cJSON *obj;

	(void)state;
	for (size_t i = 0; i < sizeof(not_whole) / sizeof(not_whole[0]); i++) {
		obj = parse_svc("80", not_whole[i]);
		decode_expect(obj, expect, &objs);
		cJSON_Delete(obj);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		obj = parse_svc("80", bad[i]);
		decode_expect(obj, expect, &objs);
		cJSON_Delete(obj);
	}
	obj = parse_svc("80", "1");
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(cJSON_GetObjectItem(
		cJSON_GetObjectItem(obj, "spec"), "sessionAffinityConfig"), "clientIP"),
		"timeoutSeconds", nan_number());
	decode_expect(obj, expect, &objs);
	cJSON_Delete(obj);

	obj = parse_svc("80", "86400");
	decode_expect(obj, NULL, &objs);
	cJSON_Delete(obj);
	obj = parse_svc("80", "1");
	decode_expect(obj, NULL, &objs);
	cJSON_Delete(obj);
	assert_int_equal(objs.n_services, 2);
	assert_int_equal(objs.services[0].affinity_timeout, 86400);
	assert_int_equal(objs.services[1].affinity_timeout, 1);
	model_objects_free(&objs);
}

/* B26: what decode_prefix makes of loadBalancerSourceRanges entries:
 * "addr/len" with spaces around (kube-proxy trims them), host bits cleared,
 * IPv4 v4-mapped (len 96 + n); anything else refused. */
static void test_source_range_prefixes(void **state)
{
	static const char *const good[][2] = {
		{ "10.1.2.3/8", "10.0.0.0/104" },
		{ " 203.0.113.7/24 \t", "203.0.113.0/120" },
		{ "0.0.0.0/0", "0.0.0.0/96" },
		{ "192.0.2.1/32", "192.0.2.1/128" },
		{ "2001:db8::1/32", "2001:db8::/32" },
		{ "::/0", "::/0" },
		{ "2001:db8::1/128", "2001:db8::1/128" },
		{ "::ffff:10.1.0.0/104", "10.0.0.0/104" },
	};
	static const char *const bad[] = {
		"", "10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8",
		"10.0.0.0/8x", "10.0.0.0/8/8", "/8", "10.0.0/8", "2001:db8::/129", "bogus/8",
		"10.0.0.0 /8", "10.0.0.0/99999999999999999999",
	};
	struct ferry_prefix p;
	char text[ADDR_STR_LEN], got[64];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!decode_prefix(good[i][0], &p))
			fail_msg("\"%s\" refused", good[i][0]);
		snprintf(got, sizeof(got), "%s/%u", addr_format(&p.addr, text), p.len);
		assert_string_equal(got, good[i][1]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (decode_prefix(bad[i], &p))
			fail_msg("\"%s\" accepted", bad[i]);
}

/* B22, B28: nodePort and healthCheckNodePort are port numbers; another
 * value leaves that field out (counted), never the Service. */
static void test_node_port_numbers(void **state)
{
	static const char *const values[] = { "30080", "30080.0", "0", "1e300", "-1", "65536",
					      "\"30080\"", "30080.5", "null" };
	static const uint16_t want[] = { 30080, 30080, 0, 0, 0, 0, 0, 0, 0 };
	static const bool counted[] = { false, false, false, true, true, true, true, true, false };
	struct model_objects objs = { 0 };
	char json[512], why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		uint64_t before = model_fields_ignored();
		const struct model_service *svc;
		cJSON *obj;

		snprintf(json, sizeof(json),
			 "{\"kind\": \"Service\", \"metadata\": {\"name\": \"s\"}, \"spec\": {"
			 "\"type\": \"LoadBalancer\", \"externalTrafficPolicy\": \"Local\", "
			 "\"clusterIP\": \"10.96.0.1\", \"healthCheckNodePort\": %s, "
			 "\"ports\": [{\"port\": 80, \"nodePort\": %s}]}}", values[i], values[i]);
		obj = cJSON_Parse(json);
		assert_non_null(obj);
		assert_int_equal(model_decode(obj, &objs, why, sizeof(why)), DECODE_OK);
		svc = &objs.services[objs.n_services - 1];
		if (svc->ports[0].node_port != want[i] ||
		    svc->ext->health_check_node_port != want[i])
			fail_msg("%s: nodePort %u, healthCheckNodePort %u", values[i],
				 svc->ports[0].node_port, svc->ext->health_check_node_port);
		assert_int_equal(model_fields_ignored() - before, counted[i] ? 2 : 0);
		cJSON_Delete(obj);
	}
	model_objects_free(&objs);
}

/* endpoints.kubernetes.io/last-change-trigger-time, as the endpoints
 * controller writes it (RFC 3339, UTC, ns), with an offset, or anything
 * else: a time that does not parse leaves trigger_ns 0 and the slice decoded
 * all the same (it is served; only the SLI loses the change). */
static void test_slice_trigger_time(void **state)
{
	static const struct {
		const char *value;  /* JSON */
		long long want;     /* ns since the epoch; 0 = none */
	} cases[] = {
		{ "\"2026-12-06T07:04:49Z\"", 1796540689LL * 1000000000 },
		{ "\"2026-12-06T07:04:49.5Z\"", 1796540689LL * 1000000000 + 500000000 },
		{ "\"2026-12-06T07:04:49.123456789Z\"", 1796540689LL * 1000000000 + 123456789 },
		{ "\"2026-12-06T09:04:49.25+02:00\"", 1796540689LL * 1000000000 + 250000000 },
		{ "\"2026-12-06T01:34:49-05:30\"", 1796540689LL * 1000000000 },
		{ "\"1970-01-01T00:00:01Z\"", 1000000000LL },
		{ "null", 0 },
		{ "\"\"", 0 },
		{ "\"yesterday\"", 0 },
		{ "\"2026-12-06 07:04:49Z\"", 0 },
		{ "\"2026-12-06T07:04:49\"", 0 },
		{ "\"2026-12-06T07:04:49.Z\"", 0 },
		{ "\"2026-13-06T07:04:49Z\"", 0 },
		{ "\"2026-12-06T24:04:49Z\"", 0 },
		{ "\"2026-12-06T07:04:49Zjunk\"", 0 },
		{ "\"2026-12-06T07:04:49+2:00\"", 0 },
		{ "\"1969-12-31T23:59:59Z\"", 0 },
		{ "\"9999-12-31T23:59:59Z\"", 0 },
		{ "1796540689", 0 },
		{ "{}", 0 },
	};
	struct model_objects objs = { 0 };
	cJSON *obj;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *json;

		assert_true(asprintf(&json,
				     "{\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"s-1\","
				     "\"namespace\":\"n\",\"labels\":{\"kubernetes.io/service-name\":"
				     "\"s\"},\"annotations\":{\"endpoints.kubernetes.io/"
				     "last-change-trigger-time\":%s}},\"addressType\":\"IPv4\","
				     "\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}]}",
				     cases[i].value) > 0);
		obj = cJSON_Parse(json);
		if (!obj)
			fail_msg("not JSON: %s", json);
		decode_expect(obj, NULL, &objs);
		if (objs.slices[objs.n_slices - 1].trigger_ns != cases[i].want)
			fail_msg("%s: trigger_ns %lld, want %lld", cases[i].value,
				 (long long)objs.slices[objs.n_slices - 1].trigger_ns, cases[i].want);
		assert_int_equal(objs.slices[objs.n_slices - 1].n_endpoints, 1);
		cJSON_Delete(obj);
		free(json);
	}
	/* No annotations at all. */
	obj = parse_slice("80");
	decode_expect(obj, NULL, &objs);
	assert_int_equal(objs.slices[objs.n_slices - 1].trigger_ns, 0);
	cJSON_Delete(obj);
	model_objects_free(&objs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_int),
		cmocka_unit_test(test_port_numbers),
		cmocka_unit_test(test_affinity_timeout_numbers),
		cmocka_unit_test(test_source_range_prefixes),
		cmocka_unit_test(test_node_port_numbers),
		cmocka_unit_test(test_slice_trigger_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
