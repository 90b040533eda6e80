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
 * Interleaved mode, to compare load balancers on a noisy machine:
 *
 *   loadgen [-v] [-1] -c CONC -t SECONDS -s SLICE_MS -r ROUNDS \
 *           @NAME NETNS CGROUP ADDR:PORT... [@NAME NETNS CGROUP ADDR:PORT...]...
 *
 * Each @NAME is a method: a network namespace (a path such as
 * /run/netns/x), a cgroup v2 directory and its targets. A round gives every
 * method SECONDS of load in slices of SLICE_MS, the methods taking turns in
 * a new random order each turn (seeded: the same every run; never the same
 * method twice in a row), so that a slow spell of the machine falls on all
 * of them alike instead of on whichever ran then, and none always follows
 * the same other.
 * Before a slice loadgen moves itself into the method's cgroup and
 * namespace (new sockets take both from their creator); at the slice's end
 * it starts nothing more and waits for what is in flight (up to 2 s), so
 * every connection of a slice is its method's, and the wait counts in the
 * slice's time. One line per method and round:
 *
 *   round=R method=NAME conns=N errors=E seconds=S rate=R p50_us=X p99_us=Y busy_ticks=B all_ticks=A
 *
 * busy_ticks/all_ticks: the machine's /proc/stat ticks over the method's
 * slices (busy: user, nice, system, irq, softirq; all adds idle, iowait and
 * steal).
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
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <sched.h>
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
#define MAX_METHODS 16
#define DRAIN_NS 2000000000ull

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

/* What a method did over a run or a round. */
struct tally {
	uint64_t completed, errors;
	uint64_t *lat;		/* ns, one per completed connection */
	uint64_t lat_cap;	/* grows by doubling: TOTAL may be huge */
	uint64_t ns;		/* wall time of its load */
	uint64_t busy_ticks, all_ticks;
};

struct method {
	const char *name;
	int netns_fd;		/* -1: stay where started */
	char procs[4096];	/* its cgroup's cgroup.procs ("": stay) */
	struct sockaddr_in *targets;
	int ntargets, next_target;
	struct tally t;
};

static struct method methods[MAX_METHODS];
static int nmethods;
static struct method *cur;	/* the method new connections are for */
static uint64_t total, inflight;
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
	fprintf(stderr, "usage: %s [-v] [-1] -c CONC -n TOTAL -t SECONDS ADDR:PORT...\n"
		"       %s [-v] [-1] -c CONC -t SECONDS -s SLICE_MS -r ROUNDS"
		" @NAME NETNS CGROUP ADDR:PORT... [@NAME ...]\n", prog, prog);
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

/* The machine's busy and all ticks so far (see the header). */
static void cpu_ticks(uint64_t *busy, uint64_t *all)
{
	unsigned long long v[8] = {0};
	FILE *f = fopen("/proc/stat", "r");

	*busy = *all = 0;
	if (!f)
		return;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
		   &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
		*busy = v[0] + v[1] + v[2] + v[5] + v[6];
		*all = *busy + v[3] + v[4] + v[7];
	}
	fclose(f);
}

static void count_error(int err)
{
	cur->t.errors++;
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

static void record_latency(struct tally *t, uint64_t ns)
{
	if (t->completed == t->lat_cap && t->lat_cap < total) {
		uint64_t cap = t->lat_cap * 2 < total ? t->lat_cap * 2 : total;
		uint64_t *p = realloc(t->lat, cap * sizeof(*t->lat));

		if (p) {
			t->lat = p;
			t->lat_cap = cap;
		}
	}
	if (t->completed < t->lat_cap)
		t->lat[t->completed] = ns;
	t->completed++;
}

/* Start a connection on slot s. 0: started (or failed and counted);
 * -1: EADDRNOTAVAIL, counted, slot stays idle until the next turn. */
static int start(struct slot *s)
{
	struct sockaddr_in *t = &cur->targets[cur->next_target];
	struct epoll_event ev;
	int fd, r;

	cur->next_target = (cur->next_target + 1) % cur->ntargets;
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
			if (!s->got || (one_byte && s->got != 1)) {
				finish(s, EPROTO); /* not the server's answer */
				return;
			}
			record_latency(&cur->t, now_ns() - s->start);
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

/* Keep CONC connections of the current method in flight until deadline
 * (or TOTAL done); then, when drain is set, start nothing more and wait
 * for those in flight (up to DRAIN_NS). What is still in flight at the end
 * is closed: neither done nor failed. -1: epoll failed. */
static int run_until(struct slot *slots, long conc, uint64_t deadline, int drain)
{
	struct epoll_event events[MAX_EVENTS];
	struct tally *t = &cur->t;
	uint64_t stop = deadline + (drain ? DRAIN_NS : 0);
	int idle_wait, rc = 0;

	for (;;) {
		uint64_t now = now_ns();
		int filling = now < deadline && t->completed < total && t->errors < total;
		int nev;

		if (!filling && (!drain || !inflight || now >= stop))
			break;
		/* Fill idle slots, never starting more than TOTAL needs. */
		idle_wait = 0;
		for (long i = 0; filling && i < conc; i++) {
			if (slots[i].st != IDLE)
				continue;
			if (t->completed + inflight >= total || t->errors >= total)
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
			rc = -1;
			break;
		}
		for (int i = 0; i < nev; i++)
			on_event(events[i].data.ptr, events[i].events);
	}
	for (long i = 0; i < conc; i++) {
		if (slots[i].fd >= 0) {
			close(slots[i].fd);
			slots[i].fd = -1;
			slots[i].st = IDLE;
			inflight--;
		}
	}
	return rc;
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

/* The line's common part: conns= ... p99_us=; sorts the latencies. */
static void print_tally(struct tally *t)
{
	uint64_t n = t->completed < t->lat_cap ? t->completed : t->lat_cap;
	double secs = (double)t->ns / 1e9;

	qsort(t->lat, n, sizeof(*t->lat), cmp_u64);
	printf("conns=%llu errors=%llu seconds=%.3f rate=%.0f p50_us=%.0f p99_us=%.0f",
	       (unsigned long long)t->completed, (unsigned long long)t->errors, secs,
	       secs > 0 ? (double)t->completed / secs : 0.0,
	       pct_us(t->lat, n, 50), pct_us(t->lat, n, 99));
}

static int tally_init(struct tally *t)
{
	memset(t, 0, sizeof(*t));
	t->lat_cap = total < (1u << 20) ? total : (1u << 20);
	t->lat = malloc(t->lat_cap * sizeof(*t->lat));
	return t->lat ? 0 : -1;
}

static void tally_reset(struct tally *t)
{
	uint64_t *lat = t->lat, cap = t->lat_cap;

	memset(t, 0, sizeof(*t));
	t->lat = lat;
	t->lat_cap = cap;
}

/* Parse ADDR:PORT arguments into m's targets. */
static int method_targets(struct method *m, char **args, int n)
{
	m->ntargets = n;
	m->targets = calloc((size_t)n, sizeof(*m->targets));
	if (!m->targets || n < 1)
		return -1;
	for (int i = 0; i < n; i++) {
		if (parse_target(args[i], &m->targets[i]) < 0) {
			fprintf(stderr, "loadgen: bad target '%s' (want IPv4ADDR:PORT)\n", args[i]);
			return -1;
		}
	}
	return 0;
}

/* @NAME NETNS CGROUP ADDR:PORT... groups, one method each. */
static int parse_methods(char **argv, int argc)
{
	int i = 0;

	while (i < argc) {
		struct method *m = &methods[nmethods];
		int j;

		if (argv[i][0] != '@' || i + 3 >= argc || nmethods == MAX_METHODS)
			return -1;
		m->name = argv[i] + 1;
		m->netns_fd = open(argv[i + 1], O_RDONLY | O_CLOEXEC);
		if (m->netns_fd < 0) {
			fprintf(stderr, "loadgen: %s: %s\n", argv[i + 1], strerror(errno));
			return -1;
		}
		snprintf(m->procs, sizeof(m->procs), "%s/cgroup.procs", argv[i + 2]);
		for (j = i + 3; j < argc && argv[j][0] != '@'; j++)
			;
		if (method_targets(m, argv + i + 3, j - i - 3) < 0 || tally_init(&m->t) < 0)
			return -1;
		nmethods++;
		i = j;
	}
	return nmethods ? 0 : -1;
}

/* Move this process into m's cgroup and network namespace: the sockets it
 * creates from now on are m's. */
static int switch_to(struct method *m)
{
	char pid[32];
	int fd, len, ok;

	fd = open(m->procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "loadgen: %s: %s\n", m->procs, strerror(errno));
		return -1;
	}
	len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	ok = write(fd, pid, (size_t)len) == len;
	close(fd);
	if (!ok || setns(m->netns_fd, CLONE_NEWNET) < 0) {
		fprintf(stderr, "loadgen: into %s: %s\n", m->name, strerror(errno));
		return -1;
	}
	cur = m;
	return 0;
}

/* One slice of m's load, its time and the machine's ticks added to m. */
static int run_slice(struct method *m, struct slot *slots, long conc, uint64_t slice_ns)
{
	uint64_t b0, a0, b1, a1, t0;
	int rc;

	if (switch_to(m) < 0)
		return -1;
	cpu_ticks(&b0, &a0);
	t0 = now_ns();
	rc = run_until(slots, conc, t0 + slice_ns, 1);
	m->t.ns += now_ns() - t0;
	cpu_ticks(&b1, &a1);
	m->t.busy_ticks += b1 - b0;
	m->t.all_ticks += a1 - a0;
	return rc;
}

/* xorshift64: the turns' order, the same every run. */
static uint64_t order_rand(void)
{
	static uint64_t x = 0x9e3779b97f4a7c15ull;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

/* A new random order of the methods in order[] whose first is not last
 * (the method that ran just before; -1: none). */
static void shuffle_turn(int *order, int last)
{
	for (int i = nmethods - 1; i > 0; i--) {
		int j = (int)(order_rand() % (uint64_t)(i + 1)), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	if (nmethods > 1 && order[0] == last) {
		int j = 1 + (int)(order_rand() % (uint64_t)(nmethods - 1)), t = order[0];

		order[0] = order[j];
		order[j] = t;
	}
}

static int run_interleaved(struct slot *slots, long conc, double seconds, long slice_ms,
			   long rounds)
{
	uint64_t slice_ns = (uint64_t)slice_ms * 1000000ull;
	long slices = (long)ceil(seconds * 1000.0 / (double)slice_ms);
	int order[MAX_METHODS], last = -1;

	for (int i = 0; i < nmethods; i++)
		order[i] = i;
	for (long r = 1; r <= rounds; r++) {
		for (long s = 0; s < slices; s++) {
			shuffle_turn(order, last);
			for (int i = 0; i < nmethods; i++) {
				if (run_slice(&methods[order[i]], slots, conc, slice_ns) < 0)
					return -1;
			}
			last = order[nmethods - 1];
		}
		for (int i = 0; i < nmethods; i++) {
			struct tally *t = &methods[i].t;

			printf("round=%ld method=%s ", r, methods[i].name);
			print_tally(t);
			printf(" busy_ticks=%llu all_ticks=%llu\n", (unsigned long long)t->busy_ticks,
			       (unsigned long long)t->all_ticks);
			fflush(stdout);
			tally_reset(t);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct slot *slots;
	struct rlimit rl;
	long conc = 64, ltotal = 10000, slice_ms = 0, rounds = 1;
	double seconds = 10;
	uint64_t t0;
	int opt, verbose = 0, rc;

	while ((opt = getopt(argc, argv, "+c:n:t:s:r:v1h")) != -1) {
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
		case 's':
			slice_ms = atol(optarg);
			ltotal = 1000000000L;
			break;
		case 'r':
			rounds = atol(optarg);
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (conc < 1 || conc > 1000000 || ltotal < 1 || !(seconds > 0) || optind >= argc ||
	    slice_ms < 0 || rounds < 1)
		usage(argv[0]);
	total = (uint64_t)ltotal;
	if ((uint64_t)conc > total)
		conc = (long)total;

	if (slice_ms) {
		if (parse_methods(argv + optind, argc - optind) < 0)
			usage(argv[0]);
	} else {
		methods[0].name = "";
		methods[0].netns_fd = -1;
		if (method_targets(&methods[0], argv + optind, argc - optind) < 0 ||
		    tally_init(&methods[0].t) < 0)
			return 2;
		nmethods = 1;
		cur = &methods[0];
	}
	slots = calloc((size_t)conc, sizeof(*slots));
	if (!slots) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 1;
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

	if (slice_ms) {
		rc = run_interleaved(slots, conc, seconds, slice_ms, rounds);
	} else {
		t0 = now_ns();
		rc = run_until(slots, conc, t0 + (uint64_t)(seconds * 1e9), 0);
		cur->t.ns = now_ns() - t0;
		print_tally(&cur->t);
		printf("\n");
	}
	if (verbose) {
		for (int e = 0; e < MAX_ERRNO; e++)
			if (errno_count[e])
				fprintf(stderr, "loadgen: %llu x %s\n",
					(unsigned long long)errno_count[e],
					e ? strerror(e) : "other");
	}
	return slice_ms && rc < 0 ? 1 : 0;
}
