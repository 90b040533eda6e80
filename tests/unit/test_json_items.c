/* Unit tests of the incremental list splitter (common/json_items.h): the
 * items and the envelope it hands over are what a whole-buffer cJSON parse
 * of the same text holds, however the bytes arrive, and whether object
 * items are taken straight from the bytes (json_items_feed_take, as the
 * file source does with common/json_tree.h) or collected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <cmocka.h>

#include "common/json_items.h"
#include "common/json_tree.h"

#define BIG (1 << 20)

/* Each item as cJSON prints it, joined with '\n'; stop_rc at item stop_at
 * (1-based, 0 = never). */
struct seen {
	char *items;
	size_t len, n;
	size_t stop_at;
	int stop_rc;
	/* take_item's */
	const char *doc;
	const struct json_items *ji;
	struct json_tree tree;
	size_t taken;
};

static void seen_add(struct seen *s, const char *text)
{
	size_t n = strlen(text);

	s->items = realloc(s->items, s->len + n + 2);
	assert_non_null(s->items);
	memcpy(s->items + s->len, text, n);
	s->len += n;
	s->items[s->len++] = '\n';
	s->items[s->len] = '\0';
}

static char *print(const cJSON *j)
{
	char *out = cJSON_PrintUnformatted(j);

	assert_non_null(out);
	return out;
}

/* Keeps the raw bytes of each item. */
static int collect(char *item, size_t len, void *ctx)
{
	struct seen *s = ctx;

	assert_int_equal(item[len], '\0');
	assert_int_equal(strlen(item), len);
	seen_add(s, item);
	s->n++;
	return 0;
}

/* The real collector: parses the item (which must parse on its own). */
static int collect_parse(char *item, size_t len, void *ctx)
{
	struct seen *s = ctx;
	cJSON *j = cJSON_ParseWithLength(item, len);
	char *out;

	assert_int_equal(item[len], '\0');
	assert_int_equal(strlen(item), len);
	assert_non_null(j);
	out = print(j);
	seen_add(s, out);
	free(out);
	cJSON_Delete(j);
	item[0] = '#'; /* fn may modify the item in place */
	s->n++;
	return s->n == s->stop_at ? s->stop_rc : 0;
}

/* A json_items_take_fn: an object item parsed as a prefix of the bytes
 * fed, when it ends within them; it must be where json_items_offset says,
 * and counted. */
static int take_item(const char *data, size_t avail, size_t *len, void *ctx)
{
	struct seen *s = ctx;
	const cJSON *tree;
	char *out;

	assert_int_equal(data[0], '{');
	switch (json_tree_parse(&s->tree, data, avail, true, &tree, len)) {
	case JSON_TREE_PARTIAL:
		*len = 0;
		return 0;
	case JSON_TREE_OK:
		break;
	default:
		fail();
	}
	assert_memory_equal(s->doc + json_items_offset(s->ji), data, *len);
	out = print(tree);
	seen_add(s, out);
	free(out);
	s->n++;
	s->taken++;
	assert_int_equal(json_items_count(s->ji), s->n);
	return 0;
}

/* What a whole-buffer parse says: the items and the envelope with items
 * emptied, printed the same way; *objects: how many items are objects. */
static void reference(const char *text, char **items, char **envelope, size_t *objects)
{
	cJSON *doc = cJSON_Parse(text), *arr, *el;
	struct seen s = { 0 };

	assert_non_null(doc);
	arr = cJSON_IsArray(doc) ? doc : cJSON_GetObjectItemCaseSensitive(doc, "items");
	if (cJSON_IsArray(arr)) {
		cJSON_ArrayForEach(el, arr) {
			char *out = print(el);

			seen_add(&s, out);
			free(out);
			*objects += cJSON_IsObject(el);
		}
		if (arr == doc) {
			*envelope = strdup("[]");
		} else {
			cJSON_ReplaceItemInObjectCaseSensitive(doc, "items", cJSON_CreateArray());
			*envelope = print(doc);
		}
	} else {
		*envelope = print(doc);
	}
	*items = s.items ? s.items : strdup("");
	cJSON_Delete(doc);
}

static size_t chunk_whole(size_t off, void *arg)
{
	(void)off;
	(void)arg;
	return (size_t)-1;
}

/* Feeds text in the chunk sizes next_chunk gives, with take_item or not,
 * and checks the result against the reference. Fed whole, every object
 * item is taken. */
static void check_split(const char *text, bool take,
			size_t (*next_chunk)(size_t off, void *arg), void *arg)
{
	struct json_items ji;
	struct seen s = { .doc = text, .ji = &ji };
	char *want_items, *want_env, *got_env;
	size_t len = strlen(text), off = 0, env_len, objects = 0;
	const char *env;
	cJSON *j;

	reference(text, &want_items, &want_env, &objects);
	json_items_init(&ji, BIG, BIG);
	while (off < len) {
		size_t n = next_chunk(off, arg);

		if (n > len - off)
			n = len - off;
		assert_int_equal(json_items_feed_take(&ji, text + off, n, take ? take_item : NULL,
						      collect_parse, &s), 0);
		off += n;
	}
	if (take && next_chunk == chunk_whole)
		assert_int_equal(s.taken, objects);
	env = json_items_envelope(&ji, &env_len);
	assert_non_null(env);
	assert_int_equal(strlen(env), env_len);
	j = cJSON_Parse(env);
	assert_non_null(j);
	got_env = print(j);
	assert_string_equal(s.items ? s.items : "", want_items);
	assert_string_equal(got_env, want_env);
	assert_int_equal(json_items_count(&ji), s.n);
	cJSON_Delete(j);
	free(got_env);
	free(want_items);
	free(want_env);
	free(s.items);
	json_tree_free(&s.tree);
	json_items_free(&ji);
}

static size_t chunk_one(size_t off, void *arg)
{
	(void)off;
	(void)arg;
	return 1;
}

/* Two chunks cut at *arg. */
static size_t chunk_cut(size_t off, void *arg)
{
	size_t cut = *(size_t *)arg;

	return off < cut ? cut - off : (size_t)-1;
}

static size_t chunk_random(size_t off, void *arg)
{
	(void)off;
	return 1 + (size_t)rand_r(arg) % 17;
}

/* Whole, one byte at a time, cut in two at every byte, random chunks; with
 * object items taken from the bytes and without. */
static void check_all_ways(const char *text)
{
	unsigned seed = 11;

	for (int take = 0; take < 2; take++) {
		check_split(text, take, chunk_whole, NULL);
		check_split(text, take, chunk_one, NULL);
		for (size_t cut = 0; cut <= strlen(text); cut++)
			check_split(text, take, chunk_cut, &cut);
		for (int i = 0; i < 20; i++)
			check_split(text, take, chunk_random, &seed);
	}
}

static const char *const lists[] = {
	/* a v1 List as the API server sends it */
	"{\"kind\":\"ServiceList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"42\","
	"\"continue\":\"abc\"},\"items\":[{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},"
	"\"spec\":{\"ports\":[{\"port\":80}]}},{\"metadata\":{\"name\":\"b\"}}]}",
	/* strings holding brackets, quotes, escaped quotes, backslashes, unicode */
	"{\"items\":[{\"a\":\"}]{[\",\"b\":\"\\\"]}\\\"\",\"c\":\"\\\\\",\"d\":\"\\\\\\\"x\"},"
	"{\"e\":\"\\u00e9\\u005d\\ud83d\\ude00\",\"f\":\"\\\\\\\\\",\"g\":\"\\/\\b\\f\\n\\r\\t\"}]}",
	/* "items" as a key inside items and inside metadata: only the top level counts */
	"{\"metadata\":{\"items\":[1,2],\"x\":{\"items\":[]}},\"items\":[{\"items\":[{\"a\":1}]},"
	"{\"spec\":{\"items\":[[1],[2]]}}],\"after\":{\"items\":[3]}}",
	/* "items" before "metadata", and a value "items" that is not a key */
	"{\"items\":[{\"a\":\"items\"}],\"metadata\":{\"resourceVersion\":\"7\"},\"k\":\"items\"}",
	/* empty items */
	"{\"kind\":\"List\",\"items\":[],\"metadata\":{}}",
	"{\"items\":[ ]}",
	/* no items at all, items not an array */
	"{\"kind\":\"List\",\"metadata\":{\"resourceVersion\":\"1\"}}",
	"{\"items\":null,\"n\":1}",
	"{\"items\":{\"a\":[1]}}",
	/* a top-level array of documents */
	"[{\"kind\":\"Service\"},{\"kind\":\"EndpointSlice\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}]}]",
	"[]",
	"[[1,[2,[3]]],[],{}]",
	/* nested arrays inside items, scalar items */
	"{\"items\":[[[[]]],{\"a\":[[{\"b\":[1,2,[3]]}]]}]}",
	"{\"items\":[1,-2.5e3,true,false,null,\"s,]\",\"\\\"\",{}]}",
	"[1]",
	"[\"only\"]",
	/* whitespace everywhere */
	" \n\t{ \"items\" \r\n :\n [ \n { \"a\" : [ 1 , 2 ] } ,\t\"x\" , 3 ,[ ] ] , \"m\" : { } } \n ",
	"\r\n[ {\"a\":1} ,\n 2 ]\n",
	/* keys that start like items */
	"{\"item\":[1],\"itemsx\":[2],\"items2\":[3],\"items\":[5],\"\":[6]}",
	/* a long key and a long item */
	"{\"a-very-long-top-level-key-name\":{\"items\":[\"no\"]},\"items\":[\"0123456789012345678901234"
	"5678901234567890123456789012345678901234567890123456789\"]}",
};

static void test_lists(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		check_all_ways(lists[i]);
}

/* A list of n services, built the way the API server prints them. */
static char *gen_list(int n)
{
	size_t cap = 512 + (size_t)n * 400, len = 0;
	char *buf = malloc(cap);

	assert_non_null(buf);
	len += (size_t)sprintf(buf, "{\"kind\":\"ServiceList\",\"apiVersion\":\"v1\","
				    "\"metadata\":{\"resourceVersion\":\"99\"},\"items\":[");
	for (int i = 0; i < n; i++)
		len += (size_t)sprintf(buf + len,
				       "%s{\"metadata\":{\"name\":\"svc-%d\",\"namespace\":\"ns-%d\","
				       "\"labels\":{\"app\":\"a\\\"%d\"}},\"spec\":{\"clusterIP\":\"10.96.%d.%d\","
				       "\"ports\":[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\"}]}}",
				       i ? "," : "", i, i % 7, i, i / 256, i % 256);
	sprintf(buf + len, "]}");
	return buf;
}

static void test_many_items_random_chunks(void **state)
{
	char *text = gen_list(300);
	unsigned seed = 5;

	(void)state;
	check_split(text, false, chunk_one, NULL);
	check_split(text, true, chunk_whole, NULL);
	for (int i = 0; i < 5; i++) {
		check_split(text, false, chunk_random, &seed);
		check_split(text, true, chunk_random, &seed);
	}
	free(text);
}

/* Feeds text whole; returns the feed's result. */
static int feed_all(struct json_items *ji, const char *text, struct seen *s)
{
	return json_items_feed(ji, text, strlen(text), collect_parse, s);
}

static void test_limits(void **state)
{
	struct json_items ji;
	struct seen s = { 0 };

	(void)state;
	/* an item of exactly max_item bytes passes, one more fails */
	json_items_init(&ji, 9, 64);
	assert_int_equal(feed_all(&ji, "{\"items\":[{\"a\":123},{\"a\":1234}]}", &s), -2);
	assert_int_equal(s.n, 1);
	assert_null(json_items_envelope(&ji, NULL));
	/* after an error the document is over until reset */
	assert_int_equal(feed_all(&ji, "]", &s), -3);
	json_items_reset(&ji);
	assert_int_equal(feed_all(&ji, "[\"1234567\",\"12345678\"]", &s), -2);
	assert_int_equal(json_items_count(&ji), 1);
	/* the envelope has its own limit, items are not in it */
	json_items_reset(&ji);
	ji.max_envelope = 20;
	assert_int_equal(feed_all(&ji, "{\"items\":[1,2,3,4,5,6,7,8,9,10,11]}", &s), 0);
	assert_string_equal(json_items_envelope(&ji, NULL), "{\"items\":[]}");
	json_items_reset(&ji);
	assert_int_equal(feed_all(&ji, "{\"metadata\":{\"name\":\"123456\"}}", &s), -2);
	/* byte by byte, the limit is found the same */
	json_items_reset(&ji);
	ji.max_envelope = 64;
	{
		const char *t = "[{\"a\":1},{\"a\":\"12345\"}]";
		int rc = 0;

		for (size_t i = 0; t[i] && !rc; i++)
			rc = json_items_feed(&ji, t + i, 1, collect_parse, &s);
		assert_int_equal(rc, -2);
	}
	json_items_free(&ji);
	free(s.items);
}

static void test_nesting_limit(void **state)
{
	struct json_items ji;
	struct seen s = { 0 };
	char deep[3000];

	(void)state;
	json_items_init(&ji, BIG, BIG);
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	assert_int_equal(feed_all(&ji, deep, &s), -2);
	json_items_free(&ji);
}

/* Bytes that cannot be a JSON object or array. */
static void test_garbage(void **state)
{
	static const char *const bad[] = {
		"hello", "\"items\"", "42", "null", "}", "]", "{]", "[}", "{\"items\":[}]}",
		"{\"items\":[1}", "{\"a\":[1}}", "{} x", "[] []", "{}}", "[1,]", "[,1]", "[1 2]",
		"[1:2]", "{\"items\":[1,,2]}", "{\"items\":[{\"a\":1]]}", "[{\"a\":[}]]",
	};
	struct json_items ji;
	struct seen s = { 0 };

	(void)state;
	json_items_init(&ji, BIG, BIG);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = 0;

		json_items_reset(&ji);
		rc = feed_all(&ji, bad[i], &s);
		if (rc != -3)
			fail_msg("\"%s\": %d, not -3", bad[i], rc);
		assert_null(json_items_envelope(&ji, NULL));
	}
	json_items_free(&ji);
	free(s.items);
}

/* A value that does not close, or nothing at all: no envelope. */
static void test_truncated(void **state)
{
	static const char *const cut[] = {
		"", "  \n", "{", "[", "{\"items\":[{\"a\":1}", "{\"items\":[{\"a\":1}]",
		"[{\"a\":\"}]\"", "[\"abc\\", "{\"metadata\":{}", "[1",
	};
	struct json_items ji;
	struct seen s = { 0 };

	(void)state;
	json_items_init(&ji, BIG, BIG);
	for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		json_items_reset(&ji);
		assert_int_equal(feed_all(&ji, cut[i], &s), 0);
		assert_null(json_items_envelope(&ji, NULL));
	}
	/* the first item of the truncated list was handed over, the open one not */
	json_items_reset(&ji);
	s.n = 0;
	assert_int_equal(feed_all(&ji, "[{\"a\":1},{\"b\":", &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(json_items_count(&ji), 1);
	json_items_free(&ji);
	free(s.items);
}

/* fn's non-zero return stops the feed there and ends the document. */
static void test_fn_stops(void **state)
{
	struct json_items ji;
	struct seen s = { .stop_at = 2, .stop_rc = 7 };

	(void)state;
	json_items_init(&ji, BIG, BIG);
	assert_int_equal(feed_all(&ji, "{\"items\":[1,2,3,4]}", &s), 7);
	assert_int_equal(s.n, 2);
	assert_int_equal(json_items_count(&ji), 2);
	assert_int_equal(feed_all(&ji, "]}", &s), -3);
	assert_null(json_items_envelope(&ji, NULL));
	/* reset: a new document from the start, counts from zero */
	json_items_reset(&ji);
	s.stop_at = 0;
	s.n = 0;
	assert_int_equal(feed_all(&ji, "[5,6]", &s), 0);
	assert_int_equal(json_items_count(&ji), 2);
	assert_string_equal(json_items_envelope(&ji, NULL), "[]");
	json_items_free(&ji);
	free(s.items);
}

/* The item handed over is the element's own bytes, trimmed, NUL-terminated
 * and writable; the envelope keeps the rest byte for byte. */
static void test_exact_bytes(void **state)
{
	struct json_items ji;
	struct seen s = { 0 };
	size_t len;
	const char *text = "{\"k\": 1, \"items\": [ {\"a\" : 1} ,\n 2 ], \"m\":{}}";

	(void)state;
	json_items_init(&ji, BIG, BIG);
	assert_int_equal(json_items_feed(&ji, text, strlen(text), collect, &s), 0);
	assert_string_equal(s.items, "{\"a\" : 1}\n2\n");
	assert_string_equal(json_items_envelope(&ji, &len), "{\"k\": 1, \"items\": [], \"m\":{}}");
	assert_int_equal(len, strlen("{\"k\": 1, \"items\": [], \"m\":{}}"));
	/* a key spelt with an escape is not taken for "items" (no API server
	 * writes one): its array stays in the envelope */
	json_items_reset(&ji);
	text = "{\"i\\u0074ems\":[4],\"items\":[5]}";
	assert_int_equal(json_items_feed(&ji, text, strlen(text), collect, &s), 0);
	assert_string_equal(json_items_envelope(&ji, NULL), "{\"i\\u0074ems\":[4],\"items\":[]}");
	json_items_free(&ji);
	free(s.items);
}

/* Each item's offset is where its text starts in the document. */
struct offsets {
	const char *doc;
	const struct json_items *ji;
	size_t n;
};

static int check_offset(char *item, size_t len, void *ctx)
{
	struct offsets *o = ctx;

	assert_memory_equal(o->doc + json_items_offset(o->ji), item, len);
	o->n++;
	return 0;
}

static void test_offsets(void **state)
{
	static const struct {
		const char *doc;
		size_t at;
	} bad[] = {
		{ "[1 2]", 3 }, { " {\"items\":[{\"a\":1]]}", 17 }, { "{\"a\":{]}", 6 },
		{ "{}\n x", 4 }, { "\n\n[1,,2]", 5 },
	};
	const char *doc = " \n{\"k\":[1],\"items\": [ {\"a\":\"]\"} ,\n\"s\",[2], 3 ]}";
	struct json_items ji;
	struct offsets o = { .doc = doc, .ji = &ji };
	struct seen s = { 0 };

	(void)state;
	json_items_init(&ji, BIG, BIG);
	for (size_t i = 0; doc[i]; i++)
		assert_int_equal(json_items_feed(&ji, doc + i, 1, check_offset, &o), 0);
	assert_int_equal(o.n, 4);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = strlen(bad[i].doc), half = len / 2;
		int rc;

		json_items_reset(&ji);
		rc = json_items_feed(&ji, bad[i].doc, half, collect, &s);
		if (!rc)
			rc = json_items_feed(&ji, bad[i].doc + half, len - half, collect, &s);
		assert_int_equal(rc, -3);
		assert_int_equal(json_items_offset(&ji), bad[i].at);
	}
	json_items_free(&ji);
	free(s.items);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_many_items_random_chunks),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_nesting_limit),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_fn_stops),
		cmocka_unit_test(test_exact_bytes),
		cmocka_unit_test(test_offsets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
