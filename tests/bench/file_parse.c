/* The file source's read of one file: parse and decode time (best of R
 * loads, each by a fresh source so that the file is decoded every time) and
 * the process's peak RSS over them.
 *
 *   build/bench/file_parse FILE [R]
 *
 * Prints one line: bytes= best_ms= mb_per_s= services= slices= peak_rss_kb=
 * rss_kb= (rss after the last load, the objects still held). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/log.h"
#include "source/file_source.h"

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A "Vm...:" line of /proc/self/status, in kB. */
static long status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			kb = atol(line + strlen(key));
	fclose(f);
	return kb;
}

int main(int argc, char **argv)
{
	int rounds = argc > 2 ? atoi(argv[2]) : 3;
	size_t services = 0, slices = 0, n_sets;
	double best = 1e30;
	struct stat st;

	if (argc < 2 || rounds < 1 || stat(argv[1], &st) < 0) {
		fprintf(stderr, "usage: file_parse FILE [ROUNDS]\n");
		return 2;
	}
	log_set_level(LOG_WARN);
	for (int r = 0; r < rounds; r++) {
		struct file_source *src = file_source_open(argv[1]);
		const struct model_objects *sets;
		double t0 = now_s(), t;

		if (!src || file_source_load(src) < 0)
			return 1;
		t = now_s() - t0;
		best = t < best ? t : best;
		sets = file_source_objects(src, &n_sets);
		services = n_sets ? sets[0].n_services : 0;
		slices = n_sets ? sets[0].n_slices : 0;
		if (r == rounds - 1)
			printf("bytes=%lld best_ms=%.1f mb_per_s=%.1f services=%zu slices=%zu "
			       "peak_rss_kb=%ld rss_kb=%ld\n",
			       (long long)st.st_size, best * 1e3, (double)st.st_size / best / 1e6,
			       services, slices, status_kb("VmHWM:"), status_kb("VmRSS:"));
		file_source_close(src);
	}
	return 0;
}
