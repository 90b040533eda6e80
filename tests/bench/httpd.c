// SPDX-License-Identifier: GPL-2.0
/* httpd: the benchmark's backend, a small and fast HTTP/1.0 server, and a
 * 1-byte request/response server on the same port.
 *
 *   httpd -p PORT -n NAME
 *
 * Listens on [::]:PORT, dual-stack (IPv4 clients arrive as v4-mapped), with
 * SO_REUSEADDR and a backlog of 4096. Every connection gets, as soon as any
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BACKLOG 4096
#define MAX_EVENTS 256

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
	fprintf(stderr, "usage: %s -p PORT -n NAME\n", prog);
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

int main(int argc, char **argv)
{
	struct epoll_event ev, events[MAX_EVENTS];
	struct sockaddr_in6 sa6;
	struct rlimit rl;
	struct sigaction sa;
	const char *name = NULL;
	int port = -1, lfd, ep, one = 1, zero = 0, opt;

	while ((opt = getopt(argc, argv, "p:n:h")) != -1) {
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'n':
			name = optarg;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (port <= 0 || port > 65535 || !name || optind != argc)
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

	lfd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0) {
		perror("httpd: socket");
		return 1;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0) {
		perror("httpd: IPV6_V6ONLY 0");
		return 1;
	}
	memset(&sa6, 0, sizeof(sa6));
	sa6.sin6_family = AF_INET6;
	sa6.sin6_port = htons((unsigned short)port);
	sa6.sin6_addr = in6addr_any;
	if (bind(lfd, (struct sockaddr *)&sa6, sizeof(sa6)) < 0) {
		perror("httpd: bind");
		return 1;
	}
	if (listen(lfd, BACKLOG) < 0) {
		perror("httpd: listen");
		return 1;
	}

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		perror("httpd: epoll_create1");
		return 1;
	}
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
		perror("httpd: epoll_ctl");
		return 1;
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
			int fd = events[i].data.fd;

			if (fd != lfd) {
				serve(fd); /* closing removes it from epoll */
				continue;
			}
			/* Accept everything queued; the request is often there
			 * already, so try to answer before involving epoll. */
			for (int k = 0; k < BACKLOG; k++) {
				int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

				if (cfd < 0) {
					if (errno == EINTR || errno == ECONNABORTED)
						continue;
					if (errno == EMFILE || errno == ENFILE)
						fprintf(stderr, "httpd: accept: %s\n", strerror(errno));
					break;
				}
				if (serve(cfd))
					continue;
				ev.events = EPOLLIN | EPOLLRDHUP;
				ev.data.fd = cfd;
				if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev) < 0)
					close(cfd);
			}
		}
	}
	close(ep);
	close(lfd);
	return 0;
}
