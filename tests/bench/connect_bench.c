// SPDX-License-Identifier: GPL-2.0
/* connect_bench: the cost of one connect() on a UDP socket, which is where a
 * socket load balancer's cgroup connect4 hook runs.
 *
 *   connect_bench [-u|-s] -n ITER ADDR PORT
 *
 * One AF_INET UDP socket, connect() to ADDR:PORT ITER times in a tight loop
 * (ITER rounded up to a multiple of 64). Each batch of 64 connects is timed
 * with CLOCK_MONOTONIC; a batch's time / 64 is one sample. Prints
 *
 *   median_ns=X p99_ns=Y iters=N
 *
 * median and p99 over the batches' per-connect times; N connects timed.
 * 64 untimed batches run first (warm-up).
 *
 * The hook runs on every connect() of a UDP socket, also when it is connected
 * already: inet_dgram_connect() calls the protocol's pre_connect
 * (udp_pre_connect -> BPF_CGROUP_RUN_PROG_INET4_CONNECT_LOCK) each time
 * before ip4_datagram_connect() re-does the route lookup. -u disconnects
 * (connect() with AF_UNSPEC) before every connect anyway; the disconnect is
 * then part of the timed batch. -s opens a new socket for every connect
 * (and closes it after), as a client that sends one query per socket does:
 * the hook then meets a socket that never held state, and socket() and
 * close() are part of the timed batch.
 *
 * Exit 0; 1 when a connect() fails (with the errno on stderr).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define WARMUP_BATCHES 64
#define MAX_ITER 1000000000L

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-u|-s] -n ITER ADDR PORT\n", prog);
	exit(2);
}

/* A new UDP socket; -1 (said) on error. */
static int udp_socket(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		perror("connect_bench: socket");
	return fd;
}

/* One connect() of fd (a new socket when fresh, closed after); 0 or -1. */
static int connect_once(int fd, const struct sockaddr_in *sa, int unspec, int fresh)
{
	static const struct sockaddr un = { .sa_family = AF_UNSPEC };
	int err;

	if (fresh && (fd = udp_socket()) < 0)
		return -1;
	if (unspec)
		connect(fd, &un, sizeof(un));
	err = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	if (err < 0)
		fprintf(stderr, "connect_bench: connect: %s\n", strerror(errno));
	if (fresh)
		close(fd);
	return err;
}

/* One batch of BATCH connects; its duration in ns, 0 on error. */
static uint64_t batch(int fd, const struct sockaddr_in *sa, int unspec, int fresh)
{
	uint64_t t0 = now_ns();

	for (int i = 0; i < BATCH; i++)
		if (connect_once(fd, sa, unspec, fresh) < 0)
			return 0;
	return now_ns() - t0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	uint64_t *samples;
	long iter = 0, nb;
	int opt, unspec = 0, fresh = 0, fd = -1, port;
	char *end;

	while ((opt = getopt(argc, argv, "n:ush")) != -1) {
		switch (opt) {
		case 'n':
			iter = strtol(optarg, &end, 10);
			if (*end)
				usage(argv[0]);
			break;
		case 'u':
			unspec = 1;
			break;
		case 's':
			fresh = 1;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (iter < 1 || iter > MAX_ITER || argc - optind != 2)
		usage(argv[0]);
	port = atoi(argv[optind + 1]);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (port <= 0 || port > 65535 || inet_pton(AF_INET, argv[optind], &sa.sin_addr) != 1) {
		fprintf(stderr, "connect_bench: bad address or port\n");
		return 2;
	}

	nb = (iter + BATCH - 1) / BATCH;
	samples = malloc((size_t)nb * sizeof(*samples));
	if (!samples) {
		fprintf(stderr, "connect_bench: out of memory\n");
		return 1;
	}
	if (unspec && fresh)
		usage(argv[0]);
	if (!fresh && (fd = udp_socket()) < 0)
		return 1;
	for (int i = 0; i < WARMUP_BATCHES; i++)
		if (!batch(fd, &sa, unspec, fresh))
			return 1;
	for (long b = 0; b < nb; b++) {
		uint64_t t = batch(fd, &sa, unspec, fresh);

		if (!t)
			return 1;
		samples[b] = t;
	}
	if (!fresh)
		close(fd);

	qsort(samples, (size_t)nb, sizeof(*samples), cmp_u64);
	{
		long p50 = (nb + 1) / 2, p99 = (long)((nb * 99 + 99) / 100);

		if (p99 > nb)
			p99 = nb;
		printf("median_ns=%.0f p99_ns=%.0f iters=%ld\n",
		       (double)samples[p50 - 1] / BATCH, (double)samples[p99 - 1] / BATCH,
		       nb * BATCH);
	}
	free(samples);
	return 0;
}
