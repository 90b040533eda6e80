#include "common/json_tree.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* 32 KiB: a Service or an EndpointSlice of 100 endpoints fits in one. */
#define TREE_BLOCK_NODES 512

struct json_tree_block {
	struct json_tree_block *next;
	cJSON nodes[TREE_BLOCK_NODES];
};

struct tree_parse {
	struct json_tree *t;
	char *p, *end;
	bool oom;
	int depth;
};

/* A zeroed node: the next of the current block, or of the next block
 * (kept from an earlier parse, or new). */
static cJSON *tree_node(struct tree_parse *ps)
{
	struct json_tree *t = ps->t;
	cJSON *n;

	if (!t->cur || t->used == TREE_BLOCK_NODES) {
		struct json_tree_block **next = t->cur ? &t->cur->next : &t->first;

		if (!*next) {
			*next = malloc(sizeof(**next));
			if (!*next) {
				ps->oom = true;
				return NULL;
			}
			(*next)->next = NULL;
		}
		t->cur = *next;
		t->used = 0;
	}
	n = &t->cur->nodes[t->used++];
	memset(n, 0, sizeof(*n));
	return n;
}

/* cJSON's whitespace: every byte up to a space. */
static void tree_ws(struct tree_parse *ps)
{
	while (ps->p < ps->end && (unsigned char)*ps->p <= ' ')
		ps->p++;
}

/* Four hex digits; 0 when one is not (as cJSON takes them). */
static unsigned tree_hex4(const char *s)
{
	unsigned h = 0;

	for (int i = 0; i < 4; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= '0' && c <= '9')
			h = h << 4 | (c - '0');
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			h = h << 4 | ((c | 0x20) - 'a' + 10);
		else
			return 0;
	}
	return h;
}

/* \uXXXX (or a surrogate pair of them) at r, before q, as UTF-8 at *o:
 * the bytes read, 0 when invalid. */
static size_t tree_utf16(const char *r, const char *q, char **o)
{
	static const unsigned char lead[] = { 0, 0, 0xc0, 0xe0, 0xf0 };
	unsigned long cp = tree_hex4(r + 2), lo;
	size_t used = 6;
	int n;

	if (q - r < 6 || (cp >= 0xdc00 && cp <= 0xdfff))
		return 0;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (q - r < 12 || r[6] != '\\' || r[7] != 'u')
			return 0;
		lo = tree_hex4(r + 8);
		if (lo < 0xdc00 || lo > 0xdfff)
			return 0;
		cp = 0x10000 + (((cp & 0x3ff) << 10) | (lo & 0x3ff));
		used = 12;
	}
	n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
	for (int i = n - 1; i > 0; i--, cp >>= 6)
		(*o)[i] = (char)(0x80 | (cp & 0x3f));
	(*o)[0] = (char)(lead[n] | cp);
	*o += n;
	return used;
}

/* The escapes between s and the closing quote q, unescaped in place. */
static bool tree_unescape(char *s, char *q)
{
	char *r = s, *o = s;
	size_t n;

	while (r < q) {
		if (*r != '\\') {
			*o++ = *r++;
			continue;
		}
		switch (r[1]) {
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case '"':
		case '\\':
		case '/': *o++ = r[1]; break;
		case 'u':
			n = tree_utf16(r, q, &o);
			if (!n)
				return false;
			r += n;
			continue;
		default:
			return false;
		}
		r += 2;
	}
	*o = '\0';
	return true;
}

/* The string at p (its opening quote), NUL-terminated in place. */
static bool tree_string(struct tree_parse *ps, char **out)
{
	char *s = ps->p + 1, *q = s;
	bool escaped = false;

	while (q < ps->end && *q != '"') {
		if (*q == '\\') {
			if (q + 1 >= ps->end)
				return false;
			escaped = true;
			q++;
		}
		q++;
	}
	if (q >= ps->end)
		return false;
	if (escaped) {
		if (!tree_unescape(s, q))
			return false;
	} else {
		*q = '\0';
	}
	*out = s;
	ps->p = q + 1;
	return true;
}

static bool tree_number_char(char c)
{
	return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'e' || c == 'E' || c == '.';
}

/* What cJSON reads: the run of [0-9+-.eE] through strtod (NUL-terminated
 * for it in place, the byte after it put back), the parse going on after
 * what strtod took. Whole numbers of up to 15 digits (exact in a double)
 * are computed without it. */
static bool tree_number(struct tree_parse *ps, cJSON *node)
{
	char *p = ps->p, *d = p + (*p == '-'), *e, *after, saved;
	uint64_t v = 0;
	double num;
	size_t i;

	for (i = 0; d + i < ps->end && d[i] >= '0' && d[i] <= '9' && i < 16; i++)
		v = v * 10 + (uint64_t)(d[i] - '0');
	if (i && i <= 15 && (d + i == ps->end || !tree_number_char(d[i]))) {
		num = *p == '-' ? -(double)v : (double)v;
		ps->p = d + i;
	} else {
		for (e = p; e < ps->end && tree_number_char(*e); e++)
			;
		saved = *e; /* text[len] is a NUL: e is always in the text */
		*e = '\0';
		num = strtod(p, &after);
		*e = saved;
		if (after == p)
			return false;
		ps->p = after;
	}
	node->type = cJSON_Number;
	node->valuedouble = num;
	node->valueint = num >= INT_MAX ? INT_MAX : num <= (double)INT_MIN ? INT_MIN : (int)num;
	return true;
}

static bool tree_value(struct tree_parse *ps, cJSON *node);

/* Appends child to node's children (cJSON's links: the first child's prev
 * is the last one). */
static void tree_link(cJSON *node, cJSON **last, cJSON *child)
{
	if (*last) {
		(*last)->next = child;
		child->prev = *last;
	} else {
		node->child = child;
	}
	*last = child;
	node->child->prev = child;
}

/* A member's key and value, at its key's opening quote. */
static bool tree_member(struct tree_parse *ps, cJSON *m)
{
	if (ps->p >= ps->end || *ps->p != '"' || !tree_string(ps, &m->string))
		return false;
	tree_ws(ps);
	if (ps->p >= ps->end || *ps->p != ':')
		return false;
	ps->p++;
	tree_ws(ps);
	return tree_value(ps, m);
}

/* An array or an object, at its opening bracket. */
static bool tree_container(struct tree_parse *ps, cJSON *node, bool object)
{
	char close = object ? '}' : ']';
	cJSON *last = NULL, *child;

	if (ps->depth >= CJSON_NESTING_LIMIT)
		return false;
	ps->depth++;
	node->type = object ? cJSON_Object : cJSON_Array;
	ps->p++;
	tree_ws(ps);
	if (ps->p < ps->end && *ps->p == close)
		goto done;
	for (;;) {
		child = tree_node(ps);
		if (!child)
			return false;
		tree_link(node, &last, child);
		if (!(object ? tree_member(ps, child) : tree_value(ps, child)))
			return false;
		tree_ws(ps);
		if (ps->p >= ps->end || *ps->p != ',')
			break;
		ps->p++;
		tree_ws(ps);
	}
	if (ps->p >= ps->end || *ps->p != close)
		return false;
done:
	ps->p++;
	ps->depth--;
	return true;
}

static bool tree_literal(struct tree_parse *ps, const char *word, size_t len, int type,
			 cJSON *node)
{
	if ((size_t)(ps->end - ps->p) < len || memcmp(ps->p, word, len) != 0)
		return false;
	node->type = type;
	node->valueint = type == cJSON_True;
	ps->p += len;
	return true;
}

static bool tree_value(struct tree_parse *ps, cJSON *node)
{
	if (ps->p >= ps->end)
		return false;
	switch (*ps->p) {
	case 'n':
		return tree_literal(ps, "null", 4, cJSON_NULL, node);
	case 'f':
		return tree_literal(ps, "false", 5, cJSON_False, node);
	case 't':
		return tree_literal(ps, "true", 4, cJSON_True, node);
	case '"':
		node->type = cJSON_String;
		return tree_string(ps, &node->valuestring);
	case '[':
	case '{':
		return tree_container(ps, node, *ps->p == '{');
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			return tree_number(ps, node);
		return false;
	}
}

const cJSON *json_tree_parse(struct json_tree *t, char *text, size_t len, size_t *error_at)
{
	struct tree_parse ps = { .t = t, .p = text, .end = text + len };
	cJSON *root;

	t->cur = NULL;
	t->used = 0;
	if (len >= 4 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		ps.p += 3;
	tree_ws(&ps);
	root = tree_node(&ps);
	if (root && tree_value(&ps, root)) {
		tree_ws(&ps);
		if (ps.p == ps.end)
			return root;
	}
	*error_at = ps.oom ? len : (size_t)(ps.p - text);
	return NULL;
}

void json_tree_free(struct json_tree *t)
{
	struct json_tree_block *b = t->first, *next;

	for (; b; b = next) {
		next = b->next;
		free(b);
	}
	memset(t, 0, sizeof(*t));
}
