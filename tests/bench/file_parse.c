/* The file source's read of one file: parse and decode time (best of R
 * loads, each by a fresh source so that the file is decoded every time) and
 * the process's peak RSS over them; for JSON, also the split alone
 * (json_items over the file in 64 KiB chunks, best of R, before the loads).
 *
 *   build/bench/file_parse FILE [R]
 *
 * Prints one line: bytes= best_ms= mb_per_s= services= slices= peak_rss_kb=
 * rss_kb= (rss after the last load, the objects still held) split_mb_per_s=
 * (- for YAML) best_cpu_ms= (the least CPU time of a load: on a busy
 * machine, steadier than best_ms). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/json_items.h"
#include "common/log.h"
#include "source/file_source.h"

static double clock_s(clockid_t clock)
{
	struct timespec t;

	clock_gettime(clock, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double now_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
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

/* Resets VmHWM to the RSS now. */
static void peak_reset(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");

	if (f) {
		fputs("5", f);
		fclose(f);
	}
}

static int count_item(char *item, size_t len, void *ctx)
{
	(void)item;
	*(size_t *)ctx += len;
	return 0;
}

/* json_items alone over the file (read whole first): its best MB/s of
 * rounds, or 0 when the file is not a JSON list. */
static double split_speed(const char *path, size_t size, int rounds)
{
	FILE *f = fopen(path, "r");
	char *buf = malloc(size ? size : 1);
	struct json_items ji;
	double best = 1e30;
	size_t sum = 0;

	if (!f || !buf || fread(buf, 1, size, f) != size || !size || (buf[0] != '{' && buf[0] != '[')) {
		if (f)
			fclose(f);
		free(buf);
		return 0;
	}
	fclose(f);
	json_items_init(&ji, size, size);
	for (int r = 0; r < rounds; r++) {
		double t0 = now_s(), t;

		json_items_reset(&ji);
		for (size_t off = 0; off < size; off += 65536)
			json_items_feed(&ji, buf + off, size - off < 65536 ? size - off : 65536,
					count_item, &sum);
		t = now_s() - t0;
		best = t < best ? t : best;
	}
	json_items_free(&ji);
	free(buf);
	return (double)size / best / 1e6;
}

int main(int argc, char **argv)
{
	int rounds = argc > 2 ? atoi(argv[2]) : 3;
	size_t services = 0, slices = 0, n_sets;
	double best = 1e30, best_cpu = 1e30, split;
	char split_text[32] = "-";
	struct stat st;

	if (argc < 2 || rounds < 1 || stat(argv[1], &st) < 0) {
		fprintf(stderr, "usage: file_parse FILE [ROUNDS]\n");
		return 2;
	}
	log_set_level(LOG_WARN);
	split = split_speed(argv[1], (size_t)st.st_size, rounds);
	peak_reset(); /* the peak is the loads' */
	if (split > 0)
		snprintf(split_text, sizeof(split_text), "%.0f", split);
	for (int r = 0; r < rounds; r++) {
		struct file_source *src = file_source_open(argv[1]);
		const struct model_objects *sets;
		double t0 = now_s(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), t, c;

		if (!src || file_source_load(src) < 0)
			return 1;
		t = now_s() - t0;
		c = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
		best = t < best ? t : best;
		best_cpu = c < best_cpu ? c : best_cpu;
		sets = file_source_objects(src, &n_sets);
		services = n_sets ? sets[0].n_services : 0;
		slices = n_sets ? sets[0].n_slices : 0;
		if (r == rounds - 1)
			printf("bytes=%lld best_ms=%.1f mb_per_s=%.1f services=%zu slices=%zu "
			       "peak_rss_kb=%ld rss_kb=%ld split_mb_per_s=%s best_cpu_ms=%.1f\n",
			       (long long)st.st_size, best * 1e3, (double)st.st_size / best / 1e6,
			       services, slices, status_kb("VmHWM:"), status_kb("VmRSS:"), split_text,
			       best_cpu * 1e3);
		file_source_close(src);
	}
	return 0;
}
