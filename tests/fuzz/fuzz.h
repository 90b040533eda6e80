/* What the fuzz targets share: libFuzzer's entry points and a folder of
 * this process for targets that read a file. */
#ifndef FERRY_FUZZ_H
#define FERRY_FUZZ_H

#define _GNU_SOURCE /* asprintf */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes data to the file name of a folder made once per process (in
 * $TMPDIR: tests/fuzz/fuzz.sh points it at its own work folder) and returns
 * the file's path, or aborts: a target that cannot write its input tests
 * nothing. */
static inline char *fuzz_file(const char *name, const uint8_t *data, size_t size)
{
	static char *dir;
	char *path;
	FILE *f;

	if (!dir) {
		const char *tmp = getenv("TMPDIR");

		if (asprintf(&dir, "%s/ferry-fuzz.XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0 ||
		    !mkdtemp(dir))
			abort();
	}
	if (asprintf(&path, "%s/%s", dir, name) < 0)
		abort();
	f = fopen(path, "we");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	return path;
}

#endif
