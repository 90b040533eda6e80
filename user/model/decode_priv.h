/* Internals shared by the model's decode files: the object list's owners and
 * the field readers every kind uses. */
#ifndef FERRY_MODEL_DECODE_PRIV_H
#define FERRY_MODEL_DECODE_PRIV_H

#include <cjson/cJSON.h>

#include "common/log.h"
#include "model/model.h"

/* What every object's metadata says, borrowed from the cJSON object. */
struct decode_meta {
	const char *kind;
	const char *ns;
	const char *name;
	const cJSON *labels;
	bool proxied;         /* B2 */
};

/* objects.c: add takes ownership of the object's contents (even on -1). */
int objects_add_service(struct model_objects *objs, struct model_service *svc);
int objects_add_slice(struct model_objects *objs, struct model_slice *slice);
int objects_add_node(struct model_objects *objs, struct model_node *node);
void objects_free_service(struct model_service *svc);
void objects_free_slice(struct model_slice *slice);
void objects_free_endpoint(struct model_endpoint *ep);
void objects_free_node(struct model_node *node);

/* ignored.c: logs one field left out of an object that is still served
 * (the message names the object and the field) and counts it in
 * model_fields_ignored. */
void model_field_ignored(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* cJSON's type tests (cJSON_IsArray ...), inline: a call each would cost
 * more than the test, for the values of hundreds of thousands of
 * endpoints. */
static inline bool decode_is(const cJSON *item, int type)
{
	return item && (item->type & 0xff) == type;
}

/* decode.c */
const cJSON *decode_field(const cJSON *obj, const char *key);
/* The members keys[0..n) of obj into out[0..n), NULL when absent (the
 * first of a name, as decode_field's), in one walk of its members: for the
 * objects a state has hundreds of thousands of (endpoints). */
void decode_fields(const cJSON *obj, const char *const *keys, size_t n, const cJSON **out);
/* The string at key, def when absent or null, NULL when not a string;
 * decode_text: the same of a member already found (NULL: absent). */
const char *decode_string(const cJSON *obj, const char *key, const char *def);
const char *decode_text(const cJSON *item, const char *def);
/* Writes "<kind> <ns>/<name>: <message>" into why; returns DECODE_INVALID. */
enum decode_result decode_why(const struct decode_meta *meta, char *why, size_t why_len,
			      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A JSON number that is a whole number from lo to hi: true with *out set,
 * false otherwise (not a number, a fraction, NaN, out of range). Every number
 * taken from an object goes through it: converting a double outside an
 * integer type's range (1e300, inf) is undefined behaviour, so the range is
 * checked before the conversion. */
bool decode_int(const cJSON *item, int lo, int hi, int *out);
/* Entry i of a ports list (list: its field, "spec.ports"). Returns 1 when
 * decoded, 0 when port is absent, null or 0, DECODE_INVALID (reason in why,
 * naming "<list>[i]") otherwise. */
int decode_port(const struct decode_meta *meta, const cJSON *item, const char *list, size_t i,
		struct model_port *out, char *why, size_t why_len);

/* decode_slice.c: RFC 3339 text ("2006-01-02T15:04:05.999Z07:00") to ns
 * since the epoch; 0 when it does not parse or lies outside 1970-2261. */
int64_t decode_rfc3339(const char *s);

/* decode_svc.c, decode_slice.c, decode_node.c */
enum decode_result decode_service(const cJSON *obj, const struct decode_meta *meta,
				  struct model_objects *into, char *why, size_t why_len);
enum decode_result decode_slice(const cJSON *obj, const struct decode_meta *meta,
				struct model_objects *into, char *why, size_t why_len);
enum decode_result decode_node(const cJSON *obj, const struct decode_meta *meta,
			       struct model_objects *into, char *why, size_t why_len);

/* decode_ext.c: a Service's NodePort, LoadBalancer and externalIPs fields
 * (B22-B28), read after its type and ports. A field that does not parse is
 * left out (model_field_ignored), never the Service. decode_node_ports:
 * whether its ports have NodePorts (B27); decode_node_port: ports[i]'s
 * nodePort into port. decode_ext: svc->ext, left NULL when the Service has
 * no external frontend; DECODE_INVALID only when out of memory. */
bool decode_node_ports(const struct decode_meta *meta, const cJSON *spec, uint8_t type);
void decode_node_port(const struct decode_meta *meta, const cJSON *item, size_t i,
		      struct model_port *port);
enum decode_result decode_ext(const cJSON *obj, const struct decode_meta *meta,
			      struct model_service *svc, char *why, size_t why_len);
/* "10.0.0.0/8" (spaces around it allowed) -> v4-mapped prefix, host bits
 * cleared; false when it is not a CIDR. */
bool decode_prefix(const char *text, struct ferry_prefix *out);

#endif
