/* model_decode: what is common to every kind (metadata, labels, ports) and
 * the dispatch to the kind's decoder (Service, EndpointSlice, Node). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/intern.h"
#include "model/decode_priv.h"

#define LABEL_PROXY_NAME "service.kubernetes.io/service-proxy-name"
#define LABEL_HEADLESS "service.kubernetes.io/headless"

/* Whether s is key: inline, as the keys are short and most members differ
 * from the key looked up at the first byte. */
static bool decode_key_is(const char *s, const char *key)
{
	while (*s && *s == *key) {
		s++;
		key++;
	}
	return *s == *key;
}

/* cJSON_GetObjectItemCaseSensitive's answer (the first member of that name)
 * without its calls: a decode looks up some twenty fields an object. */
const cJSON *decode_field(const cJSON *obj, const char *key)
{
	const cJSON *c;

	if (!decode_is(obj, cJSON_Object))
		return NULL;
	for (c = obj->child; c && c->string; c = c->next)
		if (decode_key_is(c->string, key))
			return c;
	return NULL;
}

void decode_fields(const cJSON *obj, const char *const *keys, size_t n, const cJSON **out)
{
	const cJSON *c;

	memset(out, 0, n * sizeof(*out));
	if (!decode_is(obj, cJSON_Object))
		return;
	for (c = obj->child; c && c->string; c = c->next)
		for (size_t k = 0; k < n; k++)
			if (!out[k] && decode_key_is(c->string, keys[k]))
				out[k] = c;
}

const char *decode_text(const cJSON *item, const char *def)
{
	if (!item || decode_is(item, cJSON_NULL))
		return def;
	return decode_is(item, cJSON_String) ? item->valuestring : NULL;
}

const char *decode_string(const cJSON *obj, const char *key, const char *def)
{
	return decode_text(decode_field(obj, key), def);
}

enum decode_result decode_why(const struct decode_meta *meta, char *why, size_t why_len,
			      const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!why || !why_len)
		return DECODE_INVALID;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(why, why_len, "%s %s/%s: %s", meta->kind, meta->ns ? meta->ns : "?",
		 meta->name ? meta->name : "?", msg);
	return DECODE_INVALID;
}

bool decode_int(const cJSON *item, int lo, int hi, int *out)
{
	double d;

	if (!cJSON_IsNumber(item))
		return false;
	d = item->valuedouble;
	if (!(d >= lo && d <= hi)) /* also false for NaN */
		return false;
	if (d != (double)(int)d)
		return false;
	*out = (int)d;
	return true;
}

int decode_port(const struct decode_meta *meta, const cJSON *item, const char *list, size_t i,
		struct model_port *out, char *why, size_t why_len)
{
	const cJSON *port = decode_field(item, "port");
	const char *name = decode_string(item, "name", "");
	const char *proto = decode_string(item, "protocol", "TCP");
	int number;

	if (!cJSON_IsObject(item))
		return decode_why(meta, why, why_len, "%s[%zu]: not an object", list, i);
	if (!port || cJSON_IsNull(port))
		return 0;
	if (!decode_int(port, 0, 65535, &number))
		return decode_why(meta, why, why_len, "%s[%zu].port: not a port number", list,
				  i);
	if (number == 0)
		return 0;
	if (!name)
		return decode_why(meta, why, why_len, "%s[%zu].name: not a string", list, i);
	if (!proto || !proto_parse(proto))
		return decode_why(meta, why, why_len, "%s[%zu].protocol: unknown protocol \"%s\"",
				  list, i, proto ? proto : "?");
	out->name = intern_get(name);
	if (!out->name)
		return decode_why(meta, why, why_len, "out of memory");
	out->proto = proto_parse(proto);
	out->port = (uint16_t)number;
	return 1;
}

bool model_object_ref(const struct cJSON *obj, struct model_ref *ref)
{
	const cJSON *md = decode_field(obj, "metadata");

	ref->kind = decode_string(obj, "kind", NULL);
	ref->name = decode_string(md, "name", NULL);
	ref->ns = decode_string(md, "namespace", "default");
	if (ref->ns && !*ref->ns)
		ref->ns = "default";
	return ref->kind && ref->ns && ref->name && *ref->name;
}

static enum decode_result decode_meta(const cJSON *obj, struct decode_meta *meta, char *why,
				      size_t why_len)
{
	struct model_ref ref;

	model_object_ref(obj, &ref);
	meta->kind = ref.kind;
	meta->name = ref.name;
	meta->ns = ref.ns;
	meta->labels = decode_field(decode_field(obj, "metadata"), "labels");
	if (!meta->name || !*meta->name)
		return decode_why(meta, why, why_len, "metadata.name: missing or not a string");
	if (!meta->ns)
		return decode_why(meta, why, why_len, "metadata.namespace: not a string");
	/* They separate namespace, name and port in a service port's identity
	 * ("ns/name:port/TCP/v4"), and no Kubernetes name has them. */
	if (strpbrk(meta->ns, "/:") || strpbrk(meta->name, "/:"))
		return decode_why(meta, why, why_len, "metadata: a namespace or name with '/' or ':'");
	if (meta->labels && !cJSON_IsObject(meta->labels) && !cJSON_IsNull(meta->labels))
		return decode_why(meta, why, why_len, "metadata.labels: not a map");
	meta->proxied = !decode_field(meta->labels, LABEL_PROXY_NAME) &&
			!decode_field(meta->labels, LABEL_HEADLESS);
	return DECODE_OK;
}

enum decode_result model_decode(const struct cJSON *obj, struct model_objects *into,
				char *why, size_t why_len)
{
	const char *kind = decode_string(obj, "kind", "");
	struct decode_meta meta;

	if (!kind || (strcmp(kind, "Service") != 0 && strcmp(kind, "EndpointSlice") != 0 &&
		      strcmp(kind, "Node") != 0))
		return DECODE_IGNORED;
	if (decode_meta(obj, &meta, why, why_len) != DECODE_OK)
		return DECODE_INVALID;
	if (kind[0] == 'S')
		return decode_service(obj, &meta, into, why, why_len);
	if (kind[0] == 'N')
		return decode_node(obj, &meta, into, why, why_len);
	return decode_slice(obj, &meta, into, why, why_len);
}
