/* Unit tests of the Prometheus text writer (user/metrics/prom.c): what a
 * scraper parses must be exactly the exposition format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "metrics/prom.h"

static void test_family_and_samples(void **state)
{
	struct prom_buf b = { 0 };

	(void)state;
	prom_family(&b, "ferry_x_total", "counter", "Things.");
	prom_sample(&b, "ferry_x_total", NULL, 3);
	prom_sample(&b, "ferry_x_total", "a=\"b\"", 0.25);
	prom_sample(&b, "ferry_t", NULL, 1795335093.952519);
	assert_false(b.failed);
	assert_string_equal(b.text, "# HELP ferry_x_total Things.\n"
				    "# TYPE ferry_x_total counter\n"
				    "ferry_x_total 3\n"
				    "ferry_x_total{a=\"b\"} 0.25\n"
				    "ferry_t 1795335093.952519\n");
	prom_free(&b);
}

/* Buckets are cumulative; a value on a bound counts in that bucket (le). */
static void test_histogram(void **state)
{
	static const double bounds[] = { 0.001, 0.01 };
	struct prom_buf b = { 0 };
	struct histogram h;

	(void)state;
	histogram_init(&h, bounds, 2);
	histogram_observe(&h, 0.0005);
	histogram_observe(&h, 0.001);
	histogram_observe(&h, 0.005);
	histogram_observe(&h, 3);
	prom_histogram(&b, "ferry_h_seconds", "c=\"s\"", &h);
	assert_string_equal(b.text, "ferry_h_seconds_bucket{c=\"s\",le=\"0.001\"} 2\n"
				    "ferry_h_seconds_bucket{c=\"s\",le=\"0.01\"} 3\n"
				    "ferry_h_seconds_bucket{c=\"s\",le=\"+Inf\"} 4\n"
				    "ferry_h_seconds_sum{c=\"s\"} 3.0065\n"
				    "ferry_h_seconds_count{c=\"s\"} 4\n");
	prom_free(&b);
}

static void test_label_escaping(void **state)
{
	char out[32];

	(void)state;
	prom_label_value(out, sizeof(out), "a\"b\\c\nd");
	assert_string_equal(out, "a\\\"b\\\\c\\nd");
	prom_label_value(out, 6, "abcdefgh");
	assert_int_equal(strlen(out), 3); /* truncated, never an escape cut in half */
}

/* A text far larger than the first allocation grows without loss. */
static void test_growth(void **state)
{
	struct prom_buf b = { 0 };
	char name[32];

	(void)state;
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "ferry_m%d", i);
		prom_sample(&b, name, NULL, i);
	}
	assert_false(b.failed);
	assert_non_null(strstr(b.text, "ferry_m0 0\n"));
	assert_non_null(strstr(b.text, "ferry_m4999 4999\n"));
	assert_int_equal(strlen(b.text), b.len);
	prom_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_family_and_samples),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
