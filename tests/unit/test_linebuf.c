/* Unit tests of the watch stream's line framing (kube/linebuf.h): one JSON
 * event per line, however the bytes arrive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kube/linebuf.h"

#define MAX_LINES 64

/* What the callback saw; it returns stop_rc at line number stop_at (1-based,
 * 0 = never). */
struct seen {
	size_t n;
	char *lines[MAX_LINES];
	size_t stop_at;
	int stop_rc;
};

static int collect(char *line, size_t len, void *ctx)
{
	struct seen *s = ctx;

	/* Each line comes without its newline, NUL-terminated, len its length. */
	assert_int_equal(line[len], '\0');
	assert_int_equal(strlen(line), len);
	assert_true(len > 0);
	assert_true(s->n < MAX_LINES);
	s->lines[s->n] = strdup(line);
	assert_non_null(s->lines[s->n]);
	s->n++;
	return s->n == s->stop_at ? s->stop_rc : 0;
}

/* The lines seen, joined with '|'. */
static void assert_seen(const struct seen *s, const char *expect)
{
	char buf[4096] = "";

	for (size_t i = 0; i < s->n; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? "|" : "",
			 s->lines[i]);
	assert_string_equal(buf, expect);
}

static void seen_free(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->lines[i]);
	memset(s, 0, sizeof(*s));
}

static int feed(struct linebuf *lb, const char *text, struct seen *s)
{
	return linebuf_feed(lb, text, strlen(text), collect, s);
}

static void test_several_lines_in_one_feed(void **state)
{
	struct linebuf lb;
	struct seen s = { 0 };

	(void)state;
	linebuf_init(&lb, 1024);
	assert_int_equal(feed(&lb, "{\"type\":\"ADDED\"}\n{\"b\":2}\nccc\n", &s), 0);
	assert_seen(&s, "{\"type\":\"ADDED\"}|{\"b\":2}|ccc");
	assert_int_equal(lb.len, 0);
	linebuf_free(&lb);
	seen_free(&s);
}

/* An incomplete last line waits for the rest. */
static void test_partial_line_kept_for_next_feed(void **state)
{
	struct linebuf lb;
	struct seen s = { 0 };

	(void)state;
	linebuf_init(&lb, 1024);
	assert_int_equal(feed(&lb, "one\ntw", &s), 0);
	assert_seen(&s, "one");
	assert_int_equal(feed(&lb, "o", &s), 0);
	assert_seen(&s, "one");
	assert_int_equal(feed(&lb, "\nthree\nfo", &s), 0);
	assert_seen(&s, "one|two|three");
	assert_int_equal(feed(&lb, "", &s), 0); /* nothing new */
	assert_int_equal(feed(&lb, "ur\n", &s), 0);
	assert_seen(&s, "one|two|three|four");
	linebuf_free(&lb);
	seen_free(&s);
}

/* One event over many reads: byte by byte. */
static void test_one_byte_feeds(void **state)
{
	static const char text[] = "{\"type\":\"MODIFIED\",\"object\":{}}\n\nx\r\n{\"a\":1}\n";
	struct linebuf lb;
	struct seen s = { 0 };

	(void)state;
	linebuf_init(&lb, 64);
	for (size_t i = 0; i < sizeof(text) - 1; i++) {
		assert_int_equal(linebuf_feed(&lb, text + i, 1, collect, &s), 0);
		if (i == 31) /* the first newline */
			assert_seen(&s, "{\"type\":\"MODIFIED\",\"object\":{}}");
	}
	assert_seen(&s, "{\"type\":\"MODIFIED\",\"object\":{}}|x|{\"a\":1}");
	assert_int_equal(lb.len, 0);
	linebuf_free(&lb);
	seen_free(&s);
}

/* CRLF endings lose the CR, also when CR and LF come in different feeds; a
 * CR inside a line stays. */
static void test_crlf(void **state)
{
	struct linebuf lb;
	struct seen s = { 0 };

	(void)state;
	linebuf_init(&lb, 1024);
	assert_int_equal(feed(&lb, "a\r\nbb\r\n", &s), 0);
	assert_seen(&s, "a|bb");
	assert_int_equal(feed(&lb, "ccc\r", &s), 0);
	assert_seen(&s, "a|bb");
	assert_int_equal(feed(&lb, "\nd\re\n", &s), 0);
	assert_seen(&s, "a|bb|ccc|d\re");
	linebuf_free(&lb);
	seen_free(&s);
}

/* Empty lines (keep-alive newlines) are skipped, also "\r\n" alone. */
static void test_empty_lines_skipped(void **state)
{
	struct linebuf lb;
	struct seen s = { 0 };

	(void)state;
	linebuf_init(&lb, 1024);
	assert_int_equal(feed(&lb, "\n\n\r\na\n\n\r\n", &s), 0);
	assert_seen(&s, "a");
	assert_int_equal(feed(&lb, "\n", &s), 0);
	assert_int_equal(feed(&lb, "\r", &s), 0);
	assert_int_equal(feed(&lb, "\n", &s), 0);
	assert_int_equal(feed(&lb, "b\n", &s), 0);
	assert_seen(&s, "a|b");
	linebuf_free(&lb);
	seen_free(&s);
}

/* A line exactly max_line long is accepted, however it arrives. */
static void test_max_line_exact_accepted(void **state)
{
	struct linebuf lb;
	struct seen s = { 0 };

	(void)state;
	linebuf_init(&lb, 8);
	assert_int_equal(feed(&lb, "12345678\n", &s), 0);
	assert_int_equal(feed(&lb, "1234", &s), 0);
	assert_int_equal(feed(&lb, "5678", &s), 0);
	assert_int_equal(feed(&lb, "\nabcdefgh", &s), 0);
	assert_int_equal(feed(&lb, "\n", &s), 0);
	assert_seen(&s, "12345678|12345678|abcdefgh");
	linebuf_free(&lb);
	seen_free(&s);
}

/* One byte longer is rejected with -2 and the buffer dropped (linebuf.h:
 * "the stream cannot be trusted past that point"). A good line fed after
 * that (the watch resets and reconnects) is delivered. */
static void test_max_line_plus_one_rejected(void **state)
{
	struct linebuf lb;
	struct seen s = { 0 };

	(void)state;
	linebuf_init(&lb, 8);
	/* Unfinished, a line may hold one byte more: the \r of a CRLF. */
	assert_int_equal(feed(&lb, "ok\n1234567890", &s), -2);
	assert_seen(&s, "ok");
	assert_int_equal(lb.len, 0); /* dropped */
	linebuf_reset(&lb);
	assert_int_equal(feed(&lb, "good\n", &s), 0);
	assert_seen(&s, "ok|good");

	/* Over several feeds: the feed that makes it too long fails. */
	assert_int_equal(feed(&lb, "12345", &s), 0);
	assert_int_equal(feed(&lb, "678", &s), 0);
	assert_int_equal(feed(&lb, "90", &s), -2);
	assert_int_equal(lb.len, 0);
	/* What the code does without a reset: the buffer was emptied, so the
	 * next feed starts afresh (here the tail of the long line, then a good
	 * line). The watch never relies on this: it drops the stream. */
	assert_int_equal(feed(&lb, "0\nnext\n", &s), 0);
	assert_seen(&s, "ok|good|0|next");
	linebuf_free(&lb);
	seen_free(&s);
}

/* linebuf.h: "-2 when a line exceeds max_line". A line one byte too long
 * that arrives whole, newline included, in one feed must be rejected too:
 * whether an event is refused must not depend on how the reads split. */
static void test_max_line_plus_one_in_one_feed_rejected(void **state)
{
	struct linebuf lb;
	struct seen s = { 0 };

	(void)state;
	linebuf_init(&lb, 8);
	assert_int_equal(feed(&lb, "123456789\n", &s), -2);
	assert_seen(&s, "");
	linebuf_free(&lb);
	seen_free(&s);
}

/* A line exactly max_line long with a CRLF ending, the read ending between
 * CR and LF, is still max_line long: accepted. */
static void test_max_line_exact_crlf_split_accepted(void **state)
{
	struct linebuf lb;
	struct seen s = { 0 };

	(void)state;
	linebuf_init(&lb, 8);
	assert_int_equal(feed(&lb, "12345678\r", &s), 0);
	assert_int_equal(feed(&lb, "\n", &s), 0);
	assert_seen(&s, "12345678");
	linebuf_free(&lb);
	seen_free(&s);
}

/* A non-zero return from the callback stops the feed: that value is
 * returned and the following lines are not delivered in that call. */
static void test_callback_stops_feed(void **state)
{
	struct linebuf lb;
	struct seen s = { .stop_at = 2, .stop_rc = 7 };

	(void)state;
	linebuf_init(&lb, 1024);
	assert_int_equal(feed(&lb, "a\nb\nc\n", &s), 7);
	assert_seen(&s, "a|b");
	/* A negative value is returned as is too (after a reset, as the watch
	 * does when it drops the stream). */
	s.stop_at = 3;
	s.stop_rc = -5;
	linebuf_reset(&lb);
	assert_int_equal(feed(&lb, "x\ny\n", &s), -5);
	assert_seen(&s, "a|b|x");
	linebuf_free(&lb);
	seen_free(&s);
}

/* After a stop, the feed goes on with the next call (the header does not
 * say the rest is dropped): whatever is delivered then must still be lines,
 * never two lines glued with their newline inside. */
static void test_feed_after_stop_keeps_lines_apart(void **state)
{
	struct linebuf lb;
	struct seen s = { .stop_at = 2, .stop_rc = 1 };

	(void)state;
	linebuf_init(&lb, 1024);
	assert_int_equal(feed(&lb, "a\nb\nc\n", &s), 1);
	s.stop_at = 0;
	assert_int_equal(feed(&lb, "d\n", &s), 0);
	for (size_t i = 0; i < s.n; i++)
		if (strchr(s.lines[i], '\n'))
			fail_msg("line %zu holds a newline: \"%s\"", i, s.lines[i]);
	assert_string_equal(s.lines[s.n - 1], "d");
	linebuf_free(&lb);
	seen_free(&s);
}

/* A reset drops a partial line. */
static void test_reset_drops_partial_line(void **state)
{
	struct linebuf lb;
	struct seen s = { 0 };

	(void)state;
	linebuf_init(&lb, 1024);
	assert_int_equal(feed(&lb, "{\"half", &s), 0);
	linebuf_reset(&lb);
	assert_int_equal(lb.len, 0);
	assert_int_equal(feed(&lb, "whole\n", &s), 0);
	assert_seen(&s, "whole");
	linebuf_free(&lb);
	assert_null(lb.buf);
	seen_free(&s);
}

static int check_big(char *line, size_t len, void *ctx)
{
	size_t *calls = ctx;

	assert_int_equal(len, 5u << 20);
	assert_int_equal(line[0], '{');
	assert_int_equal(line[len - 1], '}');
	for (size_t i = 1; i < len - 1; i++)
		if (line[i] != 'x')
			fail_msg("byte %zu is %d", i, line[i]);
	assert_int_equal(line[len], '\0');
	(*calls)++;
	return 0;
}

/* A 5 MiB event with a large max_line, in 16 KiB reads (curl's size); a
 * reset then lets the big buffer go. */
static void test_multi_megabyte_line(void **state)
{
	size_t big = 5u << 20, chunk = 16384, calls = 0;
	char *text = malloc(big + 1);
	struct linebuf lb;

	(void)state;
	assert_non_null(text);
	memset(text, 'x', big);
	text[0] = '{';
	text[big - 1] = '}';
	text[big] = '\n';
	linebuf_init(&lb, 64u << 20);
	for (size_t off = 0; off < big + 1; off += chunk) {
		size_t n = big + 1 - off < chunk ? big + 1 - off : chunk;

		assert_int_equal(linebuf_feed(&lb, text + off, n, check_big, &calls), 0);
	}
	assert_int_equal(calls, 1);
	assert_int_equal(lb.len, 0);
	assert_true(lb.cap > 1 << 20);
	/* "A megabyte object once must not pin a megabyte for good." */
	linebuf_reset(&lb);
	assert_null(lb.buf);
	assert_int_equal(lb.cap, 0);
	/* In one feed, too. */
	assert_int_equal(linebuf_feed(&lb, text, big + 1, check_big, &calls), 0);
	assert_int_equal(calls, 2);
	/* Just over the limit: rejected. */
	linebuf_free(&lb);
	linebuf_init(&lb, big - 1);
	for (size_t off = 0; off < big; off += chunk) {
		size_t n = big - off < chunk ? big - off : chunk;
		int rc = linebuf_feed(&lb, text + off, n, check_big, &calls);

		if (rc) {
			assert_int_equal(rc, -2);
			assert_int_equal(off + n, big);
		}
	}
	assert_int_equal(calls, 2);
	linebuf_free(&lb);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_several_lines_in_one_feed),
		cmocka_unit_test(test_partial_line_kept_for_next_feed),
		cmocka_unit_test(test_one_byte_feeds),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_empty_lines_skipped),
		cmocka_unit_test(test_max_line_exact_accepted),
		cmocka_unit_test(test_max_line_plus_one_rejected),
		cmocka_unit_test(test_max_line_plus_one_in_one_feed_rejected),
		cmocka_unit_test(test_max_line_exact_crlf_split_accepted),
		cmocka_unit_test(test_callback_stops_feed),
		cmocka_unit_test(test_feed_after_stop_keeps_lines_apart),
		cmocka_unit_test(test_reset_drops_partial_line),
		cmocka_unit_test(test_multi_megabyte_line),
	};

	if (getenv("FERRY_TEST_SKIP"))
		cmocka_set_skip_filter(getenv("FERRY_TEST_SKIP"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
