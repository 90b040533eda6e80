/* Unit tests of the API server retry backoff (kube/backoff.h), against
 * ../shared/spec/apiserver-protocol.md: "429 and 5xx, with or without
 * Retry-After (seconds, or an HTTP-date; never trust it beyond a cap):
 * wait (that long, or backoff: 0.8 s doubling to 30 s, with jitter, reset
 * after 2 minutes of health) and retry." */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "kube/backoff.h"

#define EPS 1e-9
#define TRIALS 2000

/* The wait of step k (0-based) without jitter: 0.8 s doubling, capped. */
static double step(int k)
{
	double d = 0.8;

	while (k-- > 0)
		d *= 2;
	return d > 30.0 ? 30.0 : d;
}

/* Up to 20% is taken off: the wait is in [0.8 * d, d]. */
static void assert_jittered(double wait, double d)
{
	if (wait < 0.8 * d - EPS || wait > d + EPS)
		fail_msg("wait %.6f s not in [%.6f, %.6f]", wait, 0.8 * d, d);
}

/* The first wait is 0.8 s with up to 20% off: in [0.64, 0.8], and the
 * jitter does spread the waits. */
static void test_first_wait(void **state)
{
	double lo = 1e9, hi = 0;
	struct backoff bo;

	(void)state;
	srandom(1);
	for (int i = 0; i < TRIALS; i++) {
		double w;

		backoff_init(&bo);
		w = backoff_next(&bo, 100.0, -1);
		assert_jittered(w, 0.8);
		lo = w < lo ? w : lo;
		hi = w > hi ? w : hi;
	}
	assert_true(lo >= 0.64 - EPS && hi <= 0.8 + EPS);
	assert_true(hi - lo > 0.1); /* spread over most of the range */
}

/* Each failure doubles the wait: 0.8, 1.6, 3.2, ... */
static void test_doubling(void **state)
{
	struct backoff bo;

	(void)state;
	srandom(2);
	for (int t = 0; t < TRIALS / 10; t++) {
		backoff_init(&bo);
		for (int k = 0; k < 6; k++) {
			assert_jittered(backoff_next(&bo, 1000.0 + k, -1), step(k));
			assert_true(bo.delay > step(k) - EPS && bo.delay < step(k) + EPS);
		}
	}
	assert_true(step(5) > 25.0 && step(5) < 26.0); /* 25.6 s: the last doubling */
}

/* Capped at 30 s: never above, however many failures. */
static void test_capped_at_30s(void **state)
{
	struct backoff bo;
	double lo = 1e9, hi = 0;

	(void)state;
	srandom(3);
	backoff_init(&bo);
	for (int k = 0; k < 200; k++) {
		double w = backoff_next(&bo, 10.0 + k, -1);

		assert_true(w <= 30.0 + EPS);
		assert_jittered(w, step(k));
		if (k >= 6) {
			lo = w < lo ? w : lo;
			hi = w > hi ? w : hi;
		}
	}
	assert_true(lo >= 24.0 - EPS && hi <= 30.0 + EPS);
	assert_true(bo.delay <= 30.0 + EPS);
}

/* Retry-After is used as given (no jitter) up to 60 s, and does not
 * advance the doubling. */
static void test_retry_after_as_given(void **state)
{
	struct backoff bo;

	(void)state;
	srandom(4);
	backoff_init(&bo);
	assert_true(backoff_next(&bo, 0.0, 7.0) == 7.0);
	/* Still the first step. */
	assert_jittered(backoff_next(&bo, 7.0, -1), step(0));
	assert_jittered(backoff_next(&bo, 8.0, -1), step(1));
	assert_jittered(backoff_next(&bo, 10.0, -1), step(2));
	for (int i = 0; i < 5; i++)
		assert_true(backoff_next(&bo, 20.0 + i, 3.0) == 3.0);
	assert_true(backoff_next(&bo, 30.0, 0.0) == 0.0);  /* "Retry-After: 0" */
	assert_true(backoff_next(&bo, 31.0, 60.0) == 60.0);
	assert_true(backoff_next(&bo, 32.0, 120.0) == 60.0);   /* capped */
	assert_true(backoff_next(&bo, 33.0, 86400.0) == 60.0); /* not a day */
	/* The doubling goes on where it was. */
	assert_jittered(backoff_next(&bo, 200.0, -1), step(3));
}

/* After 120 s of success, the next failure starts over at the first step:
 * backoff_ok at t, failure at t + 120. */
static void test_reset_after_120s_of_success(void **state)
{
	struct backoff bo;

	(void)state;
	srandom(5);
	backoff_init(&bo);
	for (int k = 0; k < 5; k++)
		backoff_next(&bo, k, -1);
	backoff_ok(&bo, 50.0);
	assert_jittered(backoff_next(&bo, 170.0, -1), step(0));
	assert_jittered(backoff_next(&bo, 171.0, -1), step(1));

	/* Successes that go on do not move the start of the run. */
	backoff_ok(&bo, 200.0);
	backoff_ok(&bo, 250.0);
	backoff_ok(&bo, 319.0);
	assert_jittered(backoff_next(&bo, 320.0, -1), step(0));

	/* A failure with Retry-After after 2 minutes of health also ends the
	 * old doubling: the next failure without it is the first step. */
	for (int k = 0; k < 4; k++)
		backoff_next(&bo, 330.0 + k, -1);
	backoff_ok(&bo, 400.0);
	assert_true(backoff_next(&bo, 600.0, 5.0) == 5.0);
	assert_jittered(backoff_next(&bo, 605.0, -1), step(0));
}

/* Success that lasted less than 120 s: the doubling goes on. */
static void test_no_reset_when_success_was_short(void **state)
{
	struct backoff bo;

	(void)state;
	srandom(6);
	backoff_init(&bo);
	for (int k = 0; k < 3; k++)
		backoff_next(&bo, k, -1);
	backoff_ok(&bo, 10.0);
	assert_jittered(backoff_next(&bo, 129.9, -1), step(3));

	/* The run of success is counted from its start: a failure in between
	 * starts a new run. */
	backoff_ok(&bo, 130.0);
	backoff_next(&bo, 200.0, -1);   /* step 4 */
	backoff_ok(&bo, 210.0);
	assert_jittered(backoff_next(&bo, 300.0, -1), step(5)); /* 90 s only */
	/* No success at all between failures: no reset however long. */
	assert_jittered(backoff_next(&bo, 10000.0, -1), step(6));
}

static double seconds(const struct timespec *ts)
{
	return (double)ts->tv_sec + (double)ts->tv_nsec / 1e9;
}

/* Retry-After: delta-seconds, whitespace around them allowed; a number too
 * large for any integer still reads as a long wait (capped later). */
static void test_retry_after_seconds(void **state)
{
	(void)state;
	assert_true(backoff_retry_after("0", 1000) == 0.0);
	assert_true(backoff_retry_after("1", 1000) == 1.0);
	assert_true(backoff_retry_after(" 86400 ", 1000) == 86400.0);
	assert_true(backoff_retry_after("99999999999999999999999999", 1000) > 1e20);
	assert_true(backoff_next(&(struct backoff){ 0, -1 }, 0,
				 backoff_retry_after("86400", 1000)) == 60.0);
}

/* Retry-After: an HTTP-date, in the three forms RFC 9110 asks recipients
 * to read, is the delay from the wall clock to it. */
static void test_retry_after_http_date(void **state)
{
	/* Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example. */
	const time_t date = 784111777;

	(void)state;
	assert_true(backoff_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date - 30) == 30.0);
	assert_true(backoff_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", date - 5) == 5.0);
	assert_true(backoff_retry_after("Sun Nov  6 08:49:37 1994", date - 86400) == 86400.0);
}

/* A date already past (or now: the clocks may disagree) and text that is
 * neither seconds nor a date are not usable (-1: the backoff decides), not
 * 0, which would retry at once against a 503, again and again. */
static void test_retry_after_unusable(void **state)
{
	const time_t date = 784111777;

	(void)state;
	assert_true(backoff_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date + 1) == -1);
	assert_true(backoff_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date) == -1);
	assert_true(backoff_retry_after("soon", date) == -1);
	assert_true(backoff_retry_after("", date) == -1);
	assert_true(backoff_retry_after("-5", date) == -1);
	assert_true(backoff_retry_after("1.5", date) == -1);
	assert_true(backoff_retry_after("5 s", date) == -1);
}

/* kube_now is CLOCK_MONOTONIC in seconds: it falls between two readings of
 * that clock, however long the machine stalls between them. */
static void test_kube_now(void **state)
{
	struct timespec t0, t1;
	double a;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	a = kube_now();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(a > 0);
	assert_true(a >= seconds(&t0));
	assert_true(a <= seconds(&t1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_wait),
		cmocka_unit_test(test_doubling),
		cmocka_unit_test(test_capped_at_30s),
		cmocka_unit_test(test_retry_after_as_given),
		cmocka_unit_test(test_reset_after_120s_of_success),
		cmocka_unit_test(test_no_reset_when_success_was_short),
		cmocka_unit_test(test_retry_after_seconds),
		cmocka_unit_test(test_retry_after_http_date),
		cmocka_unit_test(test_retry_after_unusable),
		cmocka_unit_test(test_kube_now),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
