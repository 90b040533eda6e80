/* EndpointSlices: family (B6), ports (B7), endpoints (B8) and their
 * conditions (B10). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/intern.h"
#include "common/log.h"
#include "model/decode_priv.h"

#define LABEL_SERVICE_NAME "kubernetes.io/service-name"
#define ANNOTATION_TRIGGER "endpoints.kubernetes.io/last-change-trigger-time"

static int slice_family(const char *address_type)
{
	if (address_type && strcmp(address_type, "IPv4") == 0)
		return 4;
	if (address_type && strcmp(address_type, "IPv6") == 0)
		return 6;
	return 0;
}

/* Exactly n digits at *p, which moves past them. */
static bool rfc_digits(const char **p, int n, int lo, int hi, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return false;
		v = v * 10 + (**p - '0');
	}
	*out = v;
	return v >= lo && v <= hi;
}

static bool rfc_char(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

/* "2006-01-02T15:04:05[.999999999](Z|+07:00)", RFC 3339 as the endpoints
 * controller writes the annotation: ns since the epoch, or 0 when it is not
 * one or lies outside 1970-2262 (int64 ns). */
int64_t decode_rfc3339(const char *s)
{
	struct tm tm = { 0 };
	int year, frac_ns = 0, scale = 100000000, sign, oh, om;
	int64_t secs;

	if (!rfc_digits(&s, 4, 1970, 2261, &year) || !rfc_char(&s, '-') ||
	    !rfc_digits(&s, 2, 1, 12, &tm.tm_mon) || !rfc_char(&s, '-') ||
	    !rfc_digits(&s, 2, 1, 31, &tm.tm_mday) || !rfc_char(&s, 'T') ||
	    !rfc_digits(&s, 2, 0, 23, &tm.tm_hour) || !rfc_char(&s, ':') ||
	    !rfc_digits(&s, 2, 0, 59, &tm.tm_min) || !rfc_char(&s, ':') ||
	    !rfc_digits(&s, 2, 0, 60, &tm.tm_sec))
		return 0;
	if (rfc_char(&s, '.')) {
		if (*s < '0' || *s > '9')
			return 0;
		for (; *s >= '0' && *s <= '9'; s++, scale /= 10)
			frac_ns += (*s - '0') * scale;
	}
	if (rfc_char(&s, 'Z')) {
		sign = oh = om = 0;
	} else {
		sign = *s == '+' ? -1 : *s == '-' ? 1 : 0;
		s++;
		if (!sign || !rfc_digits(&s, 2, 0, 23, &oh) || !rfc_char(&s, ':') ||
		    !rfc_digits(&s, 2, 0, 59, &om))
			return 0;
	}
	if (*s)
		return 0;
	tm.tm_year = year - 1900;
	tm.tm_mon--;
	secs = (int64_t)timegm(&tm) + sign * (oh * 3600 + om * 60);
	return secs > 0 ? secs * 1000000000 + frac_ns : 0;
}

/* The annotation's time, 0 when absent; one that does not parse is not
 * measured (debug: the slice is served all the same). */
static int64_t slice_trigger(const struct decode_meta *meta, const cJSON *obj)
{
	const cJSON *anns = decode_field(decode_field(obj, "metadata"), "annotations");
	const cJSON *item = decode_field(anns, ANNOTATION_TRIGGER);
	int64_t ns;

	if (!item || cJSON_IsNull(item))
		return 0;
	ns = cJSON_IsString(item) ? decode_rfc3339(item->valuestring) : 0;
	if (!ns)
		log_debug("model", "EndpointSlice %s/%s: annotation " ANNOTATION_TRIGGER
			  " is not an RFC 3339 time: not measured", meta->ns, meta->name);
	return ns;
}

/* Ports without a number or with port 0 are skipped (B7). */
static enum decode_result slice_ports(const struct decode_meta *meta, const cJSON *obj,
				      struct model_slice *slice, char *why, size_t why_len)
{
	const cJSON *ports = decode_field(obj, "ports"), *item;
	size_t i = 0;
	int rc;

	if (!ports || cJSON_IsNull(ports))
		return DECODE_OK;
	if (!cJSON_IsArray(ports))
		return decode_why(meta, why, why_len, "ports: not a list");
	slice->ports = calloc((size_t)cJSON_GetArraySize(ports) ?: 1, sizeof(*slice->ports));
	if (!slice->ports)
		return decode_why(meta, why, why_len, "out of memory");
	cJSON_ArrayForEach(item, ports) {
		rc = decode_port(meta, item, "ports", i++, &slice->ports[slice->n_ports], why,
				 why_len);
		if (rc < 0)
			return DECODE_INVALID;
		slice->n_ports += (size_t)rc;
	}
	return DECODE_OK;
}

/* B10: ready absent = true, serving absent = ready, terminating absent = false. */
static bool slice_condition(const cJSON *item, bool def)
{
	if (decode_is(item, cJSON_True))
		return true;
	return decode_is(item, cJSON_False) ? false : def;
}

/* hints.forZones[].name (B31); absent or empty = no hints. Sets
 * n_hint_zones; 0 when valid, else DECODE_INVALID. */
static int slice_hints(const struct decode_meta *meta, const cJSON *zones, size_t i,
		       struct model_endpoint *ep, size_t *len, char *why, size_t why_len)
{
	const cJSON *z;
	const char *name;

	if (!zones || cJSON_IsNull(zones))
		return 0;
	if (!cJSON_IsArray(zones))
		return decode_why(meta, why, why_len, "endpoints[%zu].hints.forZones: not a "
				  "list", i);
	if (cJSON_GetArraySize(zones) > MODEL_MAX_HINT_ZONES)
		return decode_why(meta, why, why_len, "endpoints[%zu].hints.forZones: more than "
				  "%d zones", i, MODEL_MAX_HINT_ZONES);
	cJSON_ArrayForEach(z, zones) {
		name = decode_string(z, "name", NULL);
		if (!name)
			return decode_why(meta, why, why_len,
					  "endpoints[%zu].hints.forZones[%d].name: missing or "
					  "not a string", i, ep->n_hint_zones);
		*len += strlen(name) + 1;
		ep->n_hint_zones++;
	}
	return 0;
}

/* ep->place: the node, then the hint zones (model.h), shared; prev, the
 * endpoint before (NULL for the first), most often has the same. */
static int slice_place(const struct decode_meta *meta, const cJSON *hints, const char *node,
		       size_t i, const struct model_endpoint *prev, struct model_endpoint *ep,
		       char *why, size_t why_len)
{
	const cJSON *zones = decode_field(hints, "forZones"), *z;
	size_t len = strlen(node), at;
	const char *shared;
	char *place;

	if (slice_hints(meta, zones, i, ep, &len, why, why_len) < 0)
		return DECODE_INVALID;
	if (!ep->n_hint_zones && prev && !prev->n_hint_zones &&
	    strcmp(model_endpoint_node(prev), node) == 0) {
		intern_ref(model_endpoint_node(prev));
		ep->place = prev->place;
		return 0;
	}
	if (!ep->n_hint_zones) {
		shared = intern_get(node);
		ep->place = shared ? intern_index(shared) : 0;
		return shared ? 0 : decode_why(meta, why, why_len, "out of memory");
	}
	place = malloc(len + 1);
	if (!place)
		return decode_why(meta, why, why_len, "out of memory");
	at = strlen(node) + 1;
	memcpy(place, node, at);
	cJSON_ArrayForEach(z, zones) {
		const char *name = decode_string(z, "name", "");
		size_t n = strlen(name) + 1;

		memcpy(place + at, name, n);
		at += n;
	}
	shared = intern_get_len(place, len);
	free(place);
	ep->place = shared ? intern_index(shared) : 0;
	return shared ? 0 : decode_why(meta, why, why_len, "out of memory");
}

enum { EP_ADDRESSES, EP_CONDITIONS, EP_NODE_NAME, EP_HINTS, EP__COUNT };
static const char *const ep_keys[EP__COUNT] = { "addresses", "conditions", "nodeName", "hints" };
enum { COND_READY, COND_SERVING, COND_TERMINATING, COND__COUNT };
static const char *const cond_keys[COND__COUNT] = { "ready", "serving", "terminating" };

/* Returns 1 when added, 0 when it has no address (B8), or DECODE_INVALID
 * (then the endpoint's own allocations are freed). */
static int slice_endpoint(const struct decode_meta *meta, const cJSON *item, size_t i,
			  struct model_slice *slice, char *why, size_t why_len)
{
	const cJSON *f[EP__COUNT], *cond[COND__COUNT], *addrs, *first;
	struct model_endpoint *ep = &slice->endpoints[slice->n_endpoints];
	const char *node, *text;

	decode_fields(item, ep_keys, EP__COUNT, f);
	addrs = f[EP_ADDRESSES];
	node = decode_text(f[EP_NODE_NAME], "");
	first = decode_is(addrs, cJSON_Array) ? addrs->child : NULL;
	text = decode_is(first, cJSON_String) ? first->valuestring : NULL;
	if (!first)
		return 0;
	if (addr_parse(text, &ep->addr) != slice->family)
		return decode_why(meta, why, why_len,
				  "endpoints[%zu].addresses[0]: \"%s\" is not an IPv%d address", i,
				  text ? text : "?", slice->family);
	if (!node)
		return decode_why(meta, why, why_len, "endpoints[%zu].nodeName: not a string",
				  i);
	decode_fields(f[EP_CONDITIONS], cond_keys, COND__COUNT, cond);
	ep->ready = slice_condition(cond[COND_READY], true);
	ep->serving = slice_condition(cond[COND_SERVING], ep->ready);
	ep->terminating = slice_condition(cond[COND_TERMINATING], false);
	if (slice_place(meta, f[EP_HINTS], node, i, slice->n_endpoints ? ep - 1 : NULL, ep, why,
			why_len) == 0)
		return 1;
	objects_free_endpoint(ep);
	return DECODE_INVALID;
}

/* FQDN slices are never used (B6): their endpoints are not read. */
static enum decode_result slice_endpoints(const struct decode_meta *meta, const cJSON *obj,
					  struct model_slice *slice, char *why, size_t why_len)
{
	const cJSON *eps = decode_field(obj, "endpoints"), *item;
	size_t i = 0;
	int rc;

	if (!eps || cJSON_IsNull(eps) || slice->family == 0)
		return DECODE_OK;
	if (!cJSON_IsArray(eps))
		return decode_why(meta, why, why_len, "endpoints: not a list");
	/* Sized exactly: a large state holds one per slice. */
	slice->endpoints = calloc((size_t)cJSON_GetArraySize(eps) ?: 1, sizeof(*slice->endpoints));
	if (!slice->endpoints)
		return decode_why(meta, why, why_len, "out of memory");
	cJSON_ArrayForEach(item, eps) {
		rc = slice_endpoint(meta, item, i++, slice, why, why_len);
		if (rc < 0)
			return DECODE_INVALID;
		slice->n_endpoints += (size_t)rc;
	}
	return DECODE_OK;
}

/* The slice's name and its Service's in one block (a large state holds
 * one per slice): name, then service_name (model.h). NULL when out of
 * memory. */
static char *slice_names(const char *name, const char *service_name, char **svc_name)
{
	size_t len = strlen(name) + 1, svc_len = strlen(service_name) + 1;
	char *p = malloc(len + svc_len);

	if (!p)
		return NULL;
	memcpy(p, name, len);
	memcpy(p + len, service_name, svc_len);
	*svc_name = p + len;
	return p;
}

enum decode_result decode_slice(const cJSON *obj, const struct decode_meta *meta,
				struct model_objects *into, char *why, size_t why_len)
{
	const char *service_name = decode_string(meta->labels, LABEL_SERVICE_NAME, "");
	struct model_slice slice = {
		.family = slice_family(decode_string(obj, "addressType", "")),
		.proxied = meta->proxied,
		.trigger_ns = slice_trigger(meta, obj),
	};

	if (!service_name)
		return decode_why(meta, why, why_len, "label " LABEL_SERVICE_NAME ": not a string");
	if (slice_ports(meta, obj, &slice, why, why_len) != DECODE_OK ||
	    slice_endpoints(meta, obj, &slice, why, why_len) != DECODE_OK) {
		objects_free_slice(&slice);
		return DECODE_INVALID;
	}
	slice.ns = intern_get(meta->ns);
	slice.name = slice_names(meta->name, service_name, &slice.service_name);
	if (!slice.ns || !slice.name) {
		objects_free_slice(&slice);
		return decode_why(meta, why, why_len, "out of memory");
	}
	if (objects_add_slice(into, &slice) < 0)
		return decode_why(meta, why, why_len, "out of memory");
	return DECODE_OK;
}
