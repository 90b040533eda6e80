// SPDX-License-Identifier: GPL-2.0
/* loadgen: short connections, as fast as they go, with latencies.
 *
 *   loadgen [-v] [-1] -c CONC -n TOTAL -t SECONDS ADDR:PORT...
 *
 * Keeps CONC connections in flight (non-blocking connect, one epoll loop).
 * Each connection is a new socket: connect(), write "GET / HTTP/1.0\r\n\r\n"
 * (-1: one byte), read until EOF, close. An answer of no bytes (-1: other
 * than one byte) counts as an error. Targets (IPv4) are used round-robin. Stops after TOTAL
 * completed connections or SECONDS, whichever comes first (also after TOTAL
 * errors, so that a dead target cannot spin for long), then prints exactly
 * one line on stdout:
 *
 *   conns=N errors=E seconds=S rate=R p50_us=X p99_us=Y
 *
 * conns: completed connections (EOF seen); errors: failed connects, writes
 * and reads, one per connection; seconds: wall time of the run; rate:
 * conns/seconds; p50_us/p99_us: latency from the connect() call to EOF over
 * the completed connections (CLOCK_MONOTONIC). Exit status 0 even with
 * errors (the caller decides); 2 on bad usage, 1 when nothing could start.
 * -v: the errors by errno on stderr.
 *
 * Ephemeral ports: the server (httpd) closes first, so TIME_WAIT lands on
 * the server's side; loadgen closes after reading EOF, its socket goes
 * through LAST_ACK straight to CLOSED and its port is free again at once.
 * No SO_LINGER 0 (that would send a RST instead of a FIN). Should ports run
 * out anyway (connect() failing with EADDRNOTAVAIL), it counts as an error
 * and the slot waits for the next turn of the loop (up to 1 ms) before it
 * tries again, instead of spinning.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 512
#define MAX_ERRNO 256

static const char http_request[] = "GET / HTTP/1.0\r\n\r\n";
static const char *request = http_request;
static size_t request_len = sizeof(http_request) - 1;
static int one_byte;	/* -1: a 1-byte request, a 1-byte answer */

enum state { IDLE, CONNECTING, READING };

struct slot {
	int fd;
	enum state st;
	uint64_t start;
	uint64_t got;	/* bytes of the answer so far */
};

static struct sockaddr_in *targets;
static int ntargets, next_target;
static uint64_t *lat;		/* ns, one per completed connection */
static uint64_t lat_cap;	/* grows by doubling: TOTAL may be huge */
static uint64_t completed, errors, total, inflight;
static uint64_t errno_count[MAX_ERRNO];
static int ep;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-v] [-1] -c CONC -n TOTAL -t SECONDS ADDR:PORT...\n", prog);
	exit(2);
}

static int parse_target(const char *s, struct sockaddr_in *sa)
{
	char buf[64];
	char *colon, *end;
	long port;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	colon = strrchr(buf, ':');
	if (!colon)
		return -1;
	*colon = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end || port <= 0 || port > 65535)
		return -1;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, buf, &sa->sin_addr) == 1 ? 0 : -1;
}

static void count_error(int err)
{
	errors++;
	errno_count[err > 0 && err < MAX_ERRNO ? err : 0]++;
}

static void finish(struct slot *s, int err)
{
	if (s->fd >= 0)
		close(s->fd); /* also leaves the epoll set */
	s->fd = -1;
	s->st = IDLE;
	inflight--;
	if (err)
		count_error(err);
}

/* Start a connection on slot s. 0: started (or failed and counted);
 * -1: EADDRNOTAVAIL, counted, slot stays idle until the next turn. */
static int start(struct slot *s)
{
	struct sockaddr_in *t = &targets[next_target];
	struct epoll_event ev;
	int fd, r;

	next_target = (next_target + 1) % ntargets;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		count_error(errno);
		return -1;
	}
	s->fd = fd;
	s->st = CONNECTING;
	s->start = now_ns();
	s->got = 0;
	inflight++;
	r = connect(fd, (struct sockaddr *)t, sizeof(*t));
	if (r < 0 && errno != EINPROGRESS) {
		int err = errno;

		finish(s, err);
		return err == EADDRNOTAVAIL ? -1 : 0;
	}
	/* Edge-triggered, registered once: writable when connected (or
	 * failed), readable when the answer or the EOF arrives. */
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = s;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		finish(s, errno);
		return -1;
	}
	return 0;
}

/* Drain the socket; EOF completes the connection. */
static void do_read(struct slot *s)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read(s->fd, buf, sizeof(buf));

		if (n > 0) {
			s->got += (uint64_t)n;
			continue;
		}
		if (n == 0) {
			uint64_t t = now_ns() - s->start;

			if (!s->got || (one_byte && s->got != 1)) {
				finish(s, EPROTO); /* not the server's answer */
				return;
			}

			if (completed == lat_cap && lat_cap < total) {
				uint64_t cap = lat_cap * 2 < total ? lat_cap * 2 : total;
				uint64_t *p = realloc(lat, cap * sizeof(*lat));

				if (p) {
					lat = p;
					lat_cap = cap;
				}
			}
			if (completed < lat_cap)
				lat[completed] = t;
			completed++;
			finish(s, 0);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			finish(s, errno);
		return;
	}
}

static void on_event(struct slot *s, uint32_t events)
{
	if (s->st == CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		ssize_t w;

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			finish(s, err);
			return;
		}
		do
			w = write(s->fd, request, request_len);
		while (w < 0 && errno == EINTR);
		if (w != (ssize_t)request_len) {
			finish(s, w < 0 ? errno : EIO);
			return;
		}
		s->st = READING;
		/* The answer may be in already: no further edge would come. */
		do_read(s);
		return;
	}
	if (s->st == READING)
		do_read(s);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile over a sorted array, in microseconds. */
static double pct_us(const uint64_t *v, uint64_t n, double p)
{
	uint64_t rank;

	if (!n)
		return 0;
	rank = (uint64_t)ceil(p / 100.0 * (double)n);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)v[rank - 1] / 1000.0;
}

int main(int argc, char **argv)
{
	struct epoll_event events[MAX_EVENTS];
	struct slot *slots;
	struct rlimit rl;
	long conc = 64, ltotal = 10000;
	double seconds = 10;
	uint64_t t0, deadline, t1, n;
	int opt, verbose = 0, idle_wait = 0;

	while ((opt = getopt(argc, argv, "c:n:t:v1h")) != -1) {
		switch (opt) {
		case '1':
			one_byte = 1;
			request = "x";
			request_len = 1;
			break;
		case 'c':
			conc = atol(optarg);
			break;
		case 'n':
			ltotal = atol(optarg);
			break;
		case 't':
			seconds = atof(optarg);
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (conc < 1 || conc > 1000000 || ltotal < 1 || !(seconds > 0) || optind >= argc)
		usage(argv[0]);
	total = (uint64_t)ltotal;
	if ((uint64_t)conc > total)
		conc = (long)total;

	ntargets = argc - optind;
	targets = calloc((size_t)ntargets, sizeof(*targets));
	slots = calloc((size_t)conc, sizeof(*slots));
	lat_cap = total < (1u << 20) ? total : (1u << 20);
	lat = malloc(lat_cap * sizeof(*lat));
	if (!targets || !slots || !lat) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 1;
	}
	for (int i = 0; i < ntargets; i++) {
		if (parse_target(argv[optind + i], &targets[i]) < 0) {
			fprintf(stderr, "loadgen: bad target '%s' (want IPv4ADDR:PORT)\n",
				argv[optind + i]);
			return 2;
		}
	}

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		perror("loadgen: epoll_create1");
		return 1;
	}
	for (long i = 0; i < conc; i++) {
		slots[i].fd = -1;
		slots[i].st = IDLE;
	}

	t0 = now_ns();
	deadline = t0 + (uint64_t)(seconds * 1e9);
	for (;;) {
		uint64_t now = now_ns();
		int nev;

		if (completed >= total || errors >= total || now >= deadline)
			break;
		/* Fill idle slots, never starting more than TOTAL needs. */
		idle_wait = 0;
		for (long i = 0; i < conc; i++) {
			if (slots[i].st != IDLE)
				continue;
			if (completed + inflight >= total || errors >= total)
				break;
			if (start(&slots[i]) < 0) {
				idle_wait = 1; /* no port (or fd): retry next turn */
				break;
			}
		}
		if (!inflight && !idle_wait)
			continue;
		nev = epoll_wait(ep, events, MAX_EVENTS, idle_wait || !inflight ? 1 : 100);
		if (nev < 0) {
			if (errno == EINTR)
				continue;
			perror("loadgen: epoll_wait");
			break;
		}
		for (int i = 0; i < nev; i++)
			on_event(events[i].data.ptr, events[i].events);
	}
	t1 = now_ns();
	/* What is still in flight at the deadline is neither done nor failed. */
	for (long i = 0; i < conc; i++)
		if (slots[i].fd >= 0)
			close(slots[i].fd);

	n = completed < lat_cap ? completed : lat_cap;
	qsort(lat, n, sizeof(*lat), cmp_u64);
	{
		double secs = (double)(t1 - t0) / 1e9;

		printf("conns=%llu errors=%llu seconds=%.3f rate=%.0f p50_us=%.0f p99_us=%.0f\n",
		       (unsigned long long)completed, (unsigned long long)errors, secs,
		       secs > 0 ? (double)completed / secs : 0.0,
		       pct_us(lat, n, 50), pct_us(lat, n, 99));
	}
	if (verbose && errors) {
		for (int e = 0; e < MAX_ERRNO; e++)
			if (errno_count[e])
				fprintf(stderr, "loadgen: %llu x %s\n",
					(unsigned long long)errno_count[e],
					e ? strerror(e) : "other");
	}
	return 0;
}
