// SPDX-License-Identifier: GPL-2.0
/* httpd: the benchmark's backend, a small and fast HTTP/1.0 server, and a
 * 1-byte request/response server on the same port.
 *
 *   httpd -p PORT[-LAST] [-p PORT[-LAST]...] -n NAME
 *
 * Listens on [::]:PORT (each port of each -p, at most 64), dual-stack (IPv4
 * clients arrive as v4-mapped), with SO_REUSEADDR and a backlog of 4096. Every connection gets, as soon as any
 * request bytes arrive (a benchmark request fits in one segment):
 *
 *   HTTP/1.0 200 OK\r\nContent-Length: <len>\r\n\r\n<NAME>
 *
 * or, when the request is exactly one byte (loadgen -1), that byte back; and
 * is closed by the server. Closing first puts TIME_WAIT on the server's
 * side, so the clients (loadgen) do not run out of ephemeral ports.
 *
 * One thread, one epoll loop, non-blocking sockets; runs until SIGTERM or
 * SIGINT, then exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BACKLOG 4096
#define MAX_EVENTS 256
#define MAX_LISTENERS 64
/* In an epoll event's data: a listening socket, not a connection. */
#define LISTENER_TAG (1ull << 32)

static volatile sig_atomic_t stop;
static char resp[512];
static size_t resp_len;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s -p PORT[-LAST] [-p PORT[-LAST]...] -n NAME\n", prog);
	exit(2);
}

/* Read what the client sent; answer and close once anything arrived (or the
 * client gave up). Returns 1 when fd is done (closed), 0 to wait for more. */
static int serve(int fd)
{
	char buf[4096];
	size_t got = 0;
	ssize_t n;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n > 0) {
			got += (size_t)n;
			if ((size_t)n < sizeof(buf))
				break; /* drained: a short read */
			continue;
		}
		if (n == 0) {
			/* EOF: answer if a request came with it, then close. */
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (!got)
				return 0;
			break;
		}
		close(fd); /* ECONNRESET and the like */
		return 1;
	}
	if (got) {
		/* The answer is small and the send buffer empty: one write. */
		ssize_t w;
		do
			w = got == 1 ? write(fd, buf, 1) : write(fd, resp, resp_len);
		while (w < 0 && errno == EINTR);
	}
	close(fd);
	return 1;
}

/* PORT or FIRST-LAST into *first, *last; -1 when malformed. */
static int parse_ports(const char *s, int *first, int *last)
{
	char *end;
	long a = strtol(s, &end, 10), b = a;

	if (*end == '-')
		b = strtol(end + 1, &end, 10);
	if (*end || a <= 0 || b > 65535 || b < a)
		return -1;
	*first = (int)a;
	*last = (int)b;
	return 0;
}

/* A non-blocking dual-stack listener on [::]:port, in the epoll set; its
 * fd, or -1 (the error printed). */
static int open_listener(int ep, int port)
{
	struct sockaddr_in6 sa6;
	struct epoll_event ev;
	int lfd, one = 1, zero = 0;

	lfd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0) {
		perror("httpd: socket");
		return -1;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa6, 0, sizeof(sa6));
	sa6.sin6_family = AF_INET6;
	sa6.sin6_port = htons((unsigned short)port);
	sa6.sin6_addr = in6addr_any;
	ev.events = EPOLLIN;
	ev.data.u64 = LISTENER_TAG | (uint32_t)lfd;
	if (setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa6, sizeof(sa6)) < 0 || listen(lfd, BACKLOG) < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
		fprintf(stderr, "httpd: port %d: %s\n", port, strerror(errno));
		close(lfd);
		return -1;
	}
	return lfd;
}

/* Accept everything queued; the request is often there already, so try to
 * answer before involving epoll. */
static void accept_all(int ep, int lfd)
{
	struct epoll_event ev;

	for (int k = 0; k < BACKLOG; k++) {
		int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE)
				fprintf(stderr, "httpd: accept: %s\n", strerror(errno));
			return;
		}
		if (serve(cfd))
			continue;
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.u64 = (uint32_t)cfd;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev) < 0)
			close(cfd);
	}
}

int main(int argc, char **argv)
{
	struct epoll_event events[MAX_EVENTS];
	int first[MAX_LISTENERS], last[MAX_LISTENERS], lfds[MAX_LISTENERS];
	struct rlimit rl;
	struct sigaction sa;
	const char *name = NULL;
	int nranges = 0, nl = 0, ep, opt;

	while ((opt = getopt(argc, argv, "p:n:h")) != -1) {
		switch (opt) {
		case 'p':
			if (nranges == MAX_LISTENERS ||
			    parse_ports(optarg, &first[nranges], &last[nranges]) < 0)
				usage(argv[0]);
			nranges++;
			break;
		case 'n':
			name = optarg;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (!nranges || !name || optind != argc)
		usage(argv[0]);
	if (strlen(name) > 256) {
		fprintf(stderr, "httpd: NAME longer than 256 bytes\n");
		return 2;
	}
	resp_len = (size_t)snprintf(resp, sizeof(resp),
				    "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\n\r\n%s",
				    strlen(name), name);

	/* As many descriptors as we may have. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		perror("httpd: epoll_create1");
		return 1;
	}
	for (int r = 0; r < nranges; r++) {
		for (int port = first[r]; port <= last[r]; port++) {
			if (nl == MAX_LISTENERS) {
				fprintf(stderr, "httpd: more than %d ports\n", MAX_LISTENERS);
				return 2;
			}
			lfds[nl] = open_listener(ep, port);
			if (lfds[nl++] < 0)
				return 1;
		}
	}

	while (!stop) {
		int n = epoll_wait(ep, events, MAX_EVENTS, 1000);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("httpd: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			uint64_t d = events[i].data.u64;

			if (d & LISTENER_TAG)
				accept_all(ep, (int)(uint32_t)d);
			else
				serve((int)d); /* closing removes it from epoll */
		}
	}
	close(ep);
	for (int i = 0; i < nl; i++)
		close(lfds[i]);
	return 0;
}
