/* A fresh temporary folder per test: TMP_TEST(f) runs f with tmpdir made
 * empty before and removed after; tmp_path names a file in it. Include
 * after cmocka.h, in one test file. */
#ifndef FERRY_TEST_TMPDIR_H
#define FERRY_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TMPDIR_TEMPLATE "/tmp/ferry-test-XXXXXX"

static char tmpdir[] = TMPDIR_TEMPLATE;

static char *tmp_path(const char *name)
{
	char *path;

	assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
	return path;
}

static int tmpdir_remove_entry(const char *path, const struct stat *st, int flag,
			       struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup_tmpdir(void **state)
{
	(void)state;
	strcpy(tmpdir, TMPDIR_TEMPLATE);
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmpdir(void **state)
{
	(void)state;
	return nftw(tmpdir, tmpdir_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

#define TMP_TEST(f) cmocka_unit_test_setup_teardown(f, setup_tmpdir, teardown_tmpdir)

#endif
