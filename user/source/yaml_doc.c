/* YAML -> cJSON with libyaml's event API: one recursive reader per node kind. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <yaml.h>

#include "source/yaml_doc.h"

#define YAML_DOC_MAX_DEPTH 256

struct yaml_doc {
	yaml_parser_t parser;
	yaml_event_t event;   /* the current event */
	int doc;              /* 1-based number of the current document */
	size_t first_line;    /* the line the stream starts at */
	struct yaml_doc_error *err;
	const struct yaml_doc_sink *sink; /* yaml_doc_read's; NULL: collect */
};

/* Sets the error at libyaml's 0-based line of the stream; returns NULL so
 * that node readers can return it. */
static __attribute__((format(printf, 3, 4)))
void *yaml_doc_error(struct yaml_doc *p, size_t line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
	va_end(ap);
	p->err->doc = p->doc ? p->doc : 1;
	p->err->line = p->first_line + line;
	return NULL;
}

/* Replaces the current event by the next one. */
static int yaml_doc_next(struct yaml_doc *p)
{
	yaml_event_delete(&p->event);
	if (yaml_parser_parse(&p->parser, &p->event))
		return 0;
	yaml_doc_error(p, p->parser.problem_mark.line, "%s%s%s",
		       p->parser.problem ? p->parser.problem : "syntax error",
		       p->parser.context ? " " : "", p->parser.context ? p->parser.context : "");
	return -1;
}

static int yaml_doc_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

/* [-+]?[0-9]+, 0x[0-9a-fA-F]+ or 0o[0-7]+ */
static int yaml_doc_integer(const char *v, double *out)
{
	const char *p = v + (*v == '-' || *v == '+');
	int base = 10, d;
	double n = 0;

	if (p == v && p[0] == '0' && (p[1] == 'x' || p[1] == 'o')) {
		base = p[1] == 'x' ? 16 : 8;
		p += 2;
	}
	if (!*p)
		return 0;
	for (; *p; p++) {
		d = yaml_doc_digit(*p);
		if (d < 0 || d >= base)
			return 0;
		n = n * base + d;
	}
	*out = *v == '-' ? -n : n;
	return 1;
}

static int yaml_doc_is(const char *v, const char *lower, const char *title, const char *upper)
{
	return strcmp(v, lower) == 0 || strcmp(v, title) == 0 || strcmp(v, upper) == 0;
}

static cJSON *yaml_doc_scalar(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	const char *tag = (const char *)ev->data.scalar.tag;
	double n;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || (tag && !strcmp(tag, YAML_STR_TAG)))
		return cJSON_CreateString(v);
	/* The first letter decides which words to compare with (most scalars
	 * are none of them). */
	switch (*v) {
	case '\0':
		return cJSON_CreateNull();
	case '~':
		if (!v[1])
			return cJSON_CreateNull();
		break;
	case 'n':
	case 'N':
		if (yaml_doc_is(v, "null", "Null", "NULL"))
			return cJSON_CreateNull();
		break;
	case 't':
	case 'T':
		if (yaml_doc_is(v, "true", "True", "TRUE"))
			return cJSON_CreateTrue();
		break;
	case 'f':
	case 'F':
		if (yaml_doc_is(v, "false", "False", "FALSE"))
			return cJSON_CreateFalse();
		break;
	}
	if (yaml_doc_integer(v, &n))
		return cJSON_CreateNumber(n);
	return cJSON_CreateString(v);
}

static cJSON *yaml_doc_node(struct yaml_doc *p, int depth);

static cJSON *yaml_doc_sequence(struct yaml_doc *p, int depth)
{
	cJSON *arr = cJSON_CreateArray(), *item;

	if (!arr)
		return yaml_doc_error(p, p->event.start_mark.line, "out of memory");
	while (yaml_doc_next(p) == 0) {
		if (p->event.type == YAML_SEQUENCE_END_EVENT)
			return arr;
		item = yaml_doc_node(p, depth + 1);
		if (!item)
			break;
		cJSON_AddItemToArray(arr, item);
	}
	cJSON_Delete(arr);
	return NULL;
}

/* Reads one key and its value into obj; returns 1 at the end of the map, 0
 * after a pair, -1 on error. */
static int yaml_doc_pair(struct yaml_doc *p, cJSON *obj, int depth)
{
	size_t line = p->event.start_mark.line;
	cJSON *value;
	char *key;

	if (p->event.type == YAML_MAPPING_END_EVENT)
		return 1;
	if (p->event.type != YAML_SCALAR_EVENT) {
		yaml_doc_error(p, line, "only scalar mapping keys are supported");
		return -1;
	}
	key = strdup((const char *)p->event.data.scalar.value);
	if (!key) {
		yaml_doc_error(p, line, "out of memory");
		return -1;
	}
	if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
		yaml_doc_error(p, line, "duplicate key \"%s\"", key);
		free(key);
		return -1;
	}
	value = yaml_doc_next(p) == 0 ? yaml_doc_node(p, depth + 1) : NULL;
	if (value && !cJSON_AddItemToObject(obj, key, value)) {
		cJSON_Delete(value);
		value = yaml_doc_error(p, line, "out of memory");
	}
	free(key);
	return value ? 0 : -1;
}

static cJSON *yaml_doc_mapping(struct yaml_doc *p, int depth)
{
	cJSON *obj = cJSON_CreateObject();
	int rc = 0;

	if (!obj)
		return yaml_doc_error(p, p->event.start_mark.line, "out of memory");
	while (rc == 0 && yaml_doc_next(p) == 0)
		rc = yaml_doc_pair(p, obj, depth);
	if (rc == 1)
		return obj;
	cJSON_Delete(obj);
	return NULL;
}

/* The node that starts at the current event; leaves its last event current. */
static cJSON *yaml_doc_node(struct yaml_doc *p, int depth)
{
	size_t line = p->event.start_mark.line;
	cJSON *node;

	if (depth > YAML_DOC_MAX_DEPTH)
		return yaml_doc_error(p, line, "nested deeper than %d levels", YAML_DOC_MAX_DEPTH);
	switch (p->event.type) {
	case YAML_SCALAR_EVENT:
		node = yaml_doc_scalar(&p->event);
		return node ? node : yaml_doc_error(p, line, "out of memory");
	case YAML_SEQUENCE_START_EVENT:
		return yaml_doc_sequence(p, depth);
	case YAML_MAPPING_START_EVENT:
		return yaml_doc_mapping(p, depth);
	case YAML_ALIAS_EVENT:
		return yaml_doc_error(p, line, "aliases (*%s) are not supported",
				      p->event.data.alias.anchor);
	default:
		return yaml_doc_error(p, line, "unexpected YAML event %d", p->event.type);
	}
}

/* The "items" of the root mapping (its key the current event): a sequence
 * goes to the sink element by element and stays in obj empty. */
static int yaml_doc_items(struct yaml_doc *p, cJSON *obj)
{
	size_t line = p->event.start_mark.line, n = 0;
	cJSON *item;

	if (yaml_doc_next(p) < 0)
		return -1;
	if (p->event.type != YAML_SEQUENCE_START_EVENT) {
		item = yaml_doc_node(p, 1);
		if (item && !cJSON_AddItemToObject(obj, "items", item)) {
			cJSON_Delete(item);
			item = yaml_doc_error(p, line, "out of memory");
		}
		return item ? 0 : -1;
	}
	while (yaml_doc_next(p) == 0) {
		if (p->event.type == YAML_SEQUENCE_END_EVENT) {
			if (cJSON_AddArrayToObject(obj, "items"))
				return 0;
			yaml_doc_error(p, line, "out of memory");
			return -1;
		}
		item = yaml_doc_node(p, 2);
		if (!item)
			return -1;
		p->sink->item(item, p->doc, ++n, p->sink->ctx);
		cJSON_Delete(item);
	}
	return -1;
}

/* yaml_doc_mapping for the root of a document read by yaml_doc_read. */
static cJSON *yaml_doc_root(struct yaml_doc *p)
{
	cJSON *obj = cJSON_CreateObject();
	int rc = 0;

	if (!obj)
		return yaml_doc_error(p, p->event.start_mark.line, "out of memory");
	while (rc == 0 && yaml_doc_next(p) == 0) {
		if (p->event.type == YAML_SCALAR_EVENT &&
		    !strcmp((const char *)p->event.data.scalar.value, "items") &&
		    !cJSON_GetObjectItemCaseSensitive(obj, "items"))
			rc = yaml_doc_items(p, obj);
		else
			rc = yaml_doc_pair(p, obj, 0);
	}
	if (rc == 1)
		return obj;
	cJSON_Delete(obj);
	return NULL;
}

/* Every document of the stream into docs, or to the sink. */
static int yaml_doc_stream(struct yaml_doc *p, cJSON *docs)
{
	cJSON *doc;

	while (yaml_doc_next(p) == 0) {
		if (p->event.type == YAML_STREAM_END_EVENT)
			return 0;
		if (p->event.type != YAML_DOCUMENT_START_EVENT)
			continue;
		p->doc++;
		if (yaml_doc_next(p) < 0)
			return -1;
		if (p->sink && p->event.type == YAML_MAPPING_START_EVENT)
			doc = yaml_doc_root(p);
		else
			doc = yaml_doc_node(p, 0);
		if (!doc)
			return -1;
		if (p->sink) {
			p->sink->doc(doc, p->doc, p->sink->ctx);
			cJSON_Delete(doc);
		} else {
			cJSON_AddItemToArray(docs, doc);
		}
	}
	return -1;
}

cJSON *yaml_doc_parse(const char *buf, size_t len, size_t first_line,
		       struct yaml_doc_error *err)
{
	struct yaml_doc p = { .first_line = first_line, .err = err };
	cJSON *docs = cJSON_CreateArray();

	if (!docs || !yaml_parser_initialize(&p.parser)) {
		cJSON_Delete(docs);
		return yaml_doc_error(&p, 0, "out of memory");
	}
	yaml_parser_set_input_string(&p.parser, (const unsigned char *)buf, len);
	if (yaml_doc_stream(&p, docs) < 0) {
		cJSON_Delete(docs);
		docs = NULL;
	}
	yaml_event_delete(&p.event);
	yaml_parser_delete(&p.parser);
	return docs;
}

int yaml_doc_read(yaml_doc_read_fn *read, void *data, size_t first_line,
		  const struct yaml_doc_sink *sink, struct yaml_doc_error *err)
{
	struct yaml_doc p = { .first_line = first_line, .err = err, .sink = sink };
	int rc;

	if (!yaml_parser_initialize(&p.parser)) {
		yaml_doc_error(&p, 0, "out of memory");
		return -1;
	}
	yaml_parser_set_input(&p.parser, read, data);
	rc = yaml_doc_stream(&p, NULL) < 0 ? -1 : p.doc;
	yaml_event_delete(&p.event);
	yaml_parser_delete(&p.parser);
	return rc;
}
