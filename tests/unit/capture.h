/* Capturing what the code under test logs on stderr, for the unit tests
 * that check log lines. The text is echoed afterwards so it still shows. */
#ifndef FERRY_TEST_CAPTURE_H
#define FERRY_TEST_CAPTURE_H

#include <stdio.h>
#include <unistd.h>

struct capture {
	FILE *tmp;
	int saved;
};

static void capture_begin(struct capture *c)
{
	c->tmp = tmpfile();
	c->saved = dup(2);
	assert_non_null(c->tmp);
	assert_true(c->saved >= 0 && dup2(fileno(c->tmp), 2) == 2);
}

static void capture_end(struct capture *c, char *log, size_t len)
{
	size_t n;

	assert_int_equal(dup2(c->saved, 2), 2);
	close(c->saved);
	rewind(c->tmp);
	n = fread(log, 1, len - 1, c->tmp);
	log[n] = '\0';
	fclose(c->tmp);
	fputs(log, stderr);
}

#endif
