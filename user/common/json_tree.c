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
	const char *p, *end;
	char *o;             /* where the next string goes in t->chars */
	bool prefix;
	bool partial;        /* the parse stopped at the end of the text */
	bool oom;
	int depth;
};

/* A zeroed node: the next of the current block, or of the next block
 * (kept from an earlier parse, or new). */
static inline cJSON *tree_node(struct tree_parse *ps)
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

/* The text ended where the value goes on. */
static bool tree_short(struct tree_parse *ps)
{
	ps->partial = true;
	return false;
}

/* cJSON's whitespace: every byte up to a space. */
static inline void tree_ws(struct tree_parse *ps)
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

/* The string s..q (q: its closing quote) unescaped at *o, NUL-terminated. */
static bool tree_unescape(const char *s, const char *q, char **o)
{
	const char *r = s;
	size_t n;

	while (r < q) {
		if (*r != '\\') {
			*(*o)++ = *r++;
			continue;
		}
		switch (r[1]) {
		case 'b': *(*o)++ = '\b'; break;
		case 'f': *(*o)++ = '\f'; break;
		case 'n': *(*o)++ = '\n'; break;
		case 'r': *(*o)++ = '\r'; break;
		case 't': *(*o)++ = '\t'; break;
		case '"':
		case '\\':
		case '/': *(*o)++ = r[1]; break;
		case 'u':
			n = tree_utf16(r, q, o);
			if (!n)
				return false;
			r += n;
			continue;
		default:
			return false;
		}
		r += 2;
	}
	*(*o)++ = '\0';
	return true;
}

/* The bytes that end a run of plain string bytes. */
static const unsigned char tree_stop[256] = { ['"'] = 1, ['\\'] = 1 };

/* A string with escapes, from its first byte s: cJSON's two passes, to its
 * closing quote (each backslash taking the byte after it), then the escapes
 * between. */
static bool tree_escaped(struct tree_parse *ps, const char *s, char **out)
{
	const char *q = s;

	while (q < ps->end && *q != '"') {
		if (*q == '\\') {
			if (q + 1 >= ps->end)
				return tree_short(ps);
			q++;
		}
		q++;
	}
	if (q >= ps->end)
		return tree_short(ps);
	*out = ps->o;
	if (!tree_unescape(s, q, &ps->o))
		return false;
	ps->p = q + 1;
	return true;
}

/* The string at p (its opening quote), into t->chars: copied as it is
 * scanned, until its closing quote or its first escape. */
static bool tree_string(struct tree_parse *ps, char **out)
{
	const char *s = ps->p + 1, *q = s;
	char *o = ps->o;

	while (q < ps->end && !tree_stop[(unsigned char)*q])
		*o++ = *q++;
	if (q == ps->end)
		return tree_short(ps);
	if (*q == '\\')
		return tree_escaped(ps, s, out);
	*o++ = '\0';
	*out = ps->o;
	ps->o = o;
	ps->p = q + 1;
	return true;
}

static bool tree_number_char(char c)
{
	return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'e' || c == 'E' || c == '.';
}

/* What cJSON reads: the run of [0-9+-.eE] through strtod (copied after
 * the strings for it, NUL-terminated), the parse going on after what strtod
 * took. Whole numbers of up to 15 digits (exact in a double) are computed
 * without it. A run that reaches the end of a prefix may go on after it. */
static bool tree_number(struct tree_parse *ps, cJSON *node)
{
	const char *p = ps->p, *d = p + (*p == '-'), *e = p;
	uint64_t v = 0;
	double num;
	char *after;
	size_t i;

	while (e < ps->end && tree_number_char(*e))
		e++;
	if (e == ps->end && ps->prefix)
		return tree_short(ps);
	for (i = 0; d + i < e && d[i] >= '0' && d[i] <= '9' && i < 16; i++)
		v = v * 10 + (uint64_t)(d[i] - '0');
	if (i && i <= 15 && d + i == e) {
		num = *p == '-' ? -(double)v : (double)v;
		ps->p = e;
	} else {
		/* room: the strings so far took less than the text before p */
		memcpy(ps->o, p, (size_t)(e - p));
		ps->o[e - p] = '\0';
		num = strtod(ps->o, &after);
		if (after == ps->o)
			return false;
		ps->p = p + (after - ps->o);
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

/* The next byte, -1 at the end of the text. */
static inline int tree_peek(const struct tree_parse *ps)
{
	return ps->p < ps->end ? (unsigned char)*ps->p : -1;
}

/* Past the byte c, which must come next. */
static bool tree_expect(struct tree_parse *ps, char c)
{
	int next = tree_peek(ps);

	if (next < 0)
		return tree_short(ps);
	if (next != (unsigned char)c)
		return false;
	ps->p++;
	return true;
}

/* A member's key and value, at its key's opening quote. */
static bool tree_member(struct tree_parse *ps, cJSON *m)
{
	int next = tree_peek(ps);

	if (next < 0)
		return tree_short(ps);
	if (next != '"' || !tree_string(ps, &m->string))
		return false;
	tree_ws(ps);
	if (!tree_expect(ps, ':'))
		return false;
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
	if (tree_peek(ps) != close) {
		for (;;) {
			child = tree_node(ps);
			if (!child)
				return false;
			tree_link(node, &last, child);
			if (!(object ? tree_member(ps, child) : tree_value(ps, child)))
				return false;
			tree_ws(ps);
			if (tree_peek(ps) != ',')
				break;
			ps->p++;
			tree_ws(ps);
		}
	}
	if (!tree_expect(ps, close))
		return false;
	ps->depth--;
	return true;
}

static bool tree_literal(struct tree_parse *ps, const char *word, size_t len, int type,
			 cJSON *node)
{
	size_t left = (size_t)(ps->end - ps->p);

	if (left < len)
		return memcmp(ps->p, word, left) == 0 ? tree_short(ps) : false;
	if (memcmp(ps->p, word, len) != 0)
		return false;
	node->type = type;
	node->valueint = type == cJSON_True;
	ps->p += len;
	return true;
}

static bool tree_value(struct tree_parse *ps, cJSON *node)
{
	int next = tree_peek(ps);

	switch (next) {
	case -1:
		return tree_short(ps);
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
		return tree_container(ps, node, next == '{');
	default:
		if (next == '-' || (next >= '0' && next <= '9'))
			return tree_number(ps, node);
		return false;
	}
}

/* Room for every string of a text of len bytes (they take fewer than the
 * text, quotes and escapes dropped). */
static bool tree_chars(struct json_tree *t, size_t len)
{
	char *c;

	if (len < t->chars_cap)
		return true;
	c = realloc(t->chars, len + 1);
	if (!c)
		return false;
	t->chars = c;
	t->chars_cap = len + 1;
	return true;
}

enum json_tree_result json_tree_parse(struct json_tree *t, const char *text, size_t len,
				      bool prefix, const cJSON **tree, size_t *at)
{
	struct tree_parse ps = { .t = t, .p = text, .end = text + len, .prefix = prefix };
	cJSON *root;

	if (!tree_chars(t, len))
		return JSON_TREE_NOMEM;
	ps.o = t->chars;
	t->cur = NULL;
	t->used = 0;
	if (len >= 4 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		ps.p += 3;
	tree_ws(&ps);
	root = tree_node(&ps);
	if (root && tree_value(&ps, root)) {
		*tree = root;
		*at = (size_t)(ps.p - text);
		if (prefix)
			return JSON_TREE_OK;
		tree_ws(&ps);
		if (ps.p == ps.end)
			return JSON_TREE_OK;
	}
	*at = (size_t)(ps.p - text);
	if (ps.oom)
		return JSON_TREE_NOMEM;
	return ps.partial && prefix ? JSON_TREE_PARTIAL : JSON_TREE_INVALID;
}

void json_tree_free(struct json_tree *t)
{
	struct json_tree_block *b = t->first, *next;

	for (; b; b = next) {
		next = b->next;
		free(b);
	}
	free(t->chars);
	memset(t, 0, sizeof(*t));
}
