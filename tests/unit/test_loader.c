/* Unit tests of the load failure's explanation (user/datapath/loader.c):
 * from libbpf's warning lines (as libbpf 1.1 prints them), a map the kernel
 * would not create and a program it refused are told apart, each with its
 * own advice; the first of each is kept. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "datapath/loader.h"

static const char map_line[] = "libbpf: map 'ferry_ct': failed to create: "
			       "Cannot allocate memory(-12)\n";
static const char prog_line[] = "libbpf: prog 'ferry_connect4': BPF program load failed: "
				"Permission denied\n";

static void explain(const char *const *lines, int err, char *out, size_t len)
{
	struct dp_load_failure f = { 0 };

	for (; *lines; lines++)
		dp_load_failure_note(&f, *lines);
	dp_load_failure_explain(&f, err, out, len);
}

static void test_map_not_created(void **state)
{
	const char *lines[] = { "libbpf: Error in bpf_create_map_xattr(ferry_ct):ERROR\n", map_line,
				"libbpf: map 'ferry_affinity': failed to create: x(-12)\n", NULL };
	char out[512];

	(void)state;
	explain(lines, -ENOMEM, out, sizeof(out));
	assert_string_equal(out, "cannot create BPF map ferry_ct (Cannot allocate memory): the "
			    "kernel would not give it the memory its capacity takes; lower --max-ct");
}

static void test_map_not_permitted(void **state)
{
	const char *lines[] = { "libbpf: map 'ferry_services4': failed to create: "
				"Operation not permitted(-1)\n", NULL };
	char out[512];

	(void)state;
	explain(lines, -EPERM, out, sizeof(out));
	assert_string_equal(out, "not permitted to create BPF map ferry_services4 (Operation not "
			    "permitted): ferryd needs CAP_BPF");
}

static void test_prog_refused(void **state)
{
	const char *lines[] = { prog_line, "libbpf: prog 'ferry_connect4': -- BEGIN PROG LOAD LOG --\n",
				"0: R1=ctx() R10=fp0\n",
				"libbpf: prog 'ferry_connect4': failed to load: -13\n", NULL };
	char out[512];

	(void)state;
	explain(lines, -EACCES, out, sizeof(out));
	assert_non_null(strstr(out, "the kernel's verifier refused BPF program ferry_connect4 "
				    "(Permission denied; its log is above"));
	assert_null(strstr(out, "map"));
}

static void test_prog_not_permitted(void **state)
{
	const char *lines[] = { prog_line, NULL };
	char out[512];

	(void)state;
	explain(lines, -EPERM, out, sizeof(out));
	assert_string_equal(out, "not permitted to load BPF program ferry_connect4 (Operation not "
			    "permitted): ferryd needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON");
}

static void test_neither(void **state)
{
	const char *lines[] = { "libbpf: failed to find valid kernel BTF\n",
				"libbpf: map 'ferry_ct': something else\n", NULL };
	char out[512];

	(void)state;
	explain(lines, -ESRCH, out, sizeof(out));
	assert_string_equal(out, "cannot load the BPF object: No such process");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_not_created),
		cmocka_unit_test(test_map_not_permitted),
		cmocka_unit_test(test_prog_refused),
		cmocka_unit_test(test_prog_not_permitted),
		cmocka_unit_test(test_neither),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
