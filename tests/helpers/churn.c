/* churn: the client side of the make-before-break test (tests/kernel/churn.sh).
 *
 * In a loop bounded by count and time: read the published generation from
 * the pinned ferry_state map, connect() to ADDR:PORT, check getpeername(),
 * send one HTTP/1.0 request, read the answer (podserver.py answers with its
 * pod name), close, read the generation again. One line per connection:
 *
 *   GEN_BEFORE GEN_AFTER NAME              the answer came from pod NAME
 *   GEN_BEFORE GEN_AFTER error:ERRNO@STAGE  connect, send or recv failed
 *   GEN_BEFORE GEN_AFTER badpeer:NAME      answered, but getpeername() did not
 *                                          return ADDR:PORT (B20)
 *
 * The datapath reflects at least GEN_BEFORE when connect() starts, and at
 * most GEN_AFTER + 1 when it returns (ferryd switches a backend set, then
 * publishes the generation that holds it).
 *
 *   churn -m PINNED_STATE_MAP [-s STOPFILE] [-n COUNT] [-t SECONDS] ADDR PORT
 *
 * Stops at COUNT connections, after SECONDS, or when STOPFILE exists. The
 * map is read with the raw bpf(2) syscall (no libbpf: the Makefile links
 * helpers without libraries). Exit 0 after a run (failures are the
 * checker's business), 1 when the map cannot be read, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "client_util.h"

#include "ferry/maps.h"

#define NAME_LEN 64

static int bpf_obj_get(const char *path)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.pathname = (__u64)(unsigned long)path;
	return (int)syscall(__NR_bpf, BPF_OBJ_GET, &attr, sizeof(attr));
}

/* The published generation, or -1. */
static long long generation(int map_fd)
{
	struct agent_state st;
	union bpf_attr attr;
	__u32 zero = 0;

	memset(&st, 0, sizeof(st));
	memset(&attr, 0, sizeof(attr));
	attr.map_fd = (__u32)map_fd;
	attr.key = (__u64)(unsigned long)&zero;
	attr.value = (__u64)(unsigned long)&st;
	if (syscall(__NR_bpf, BPF_MAP_LOOKUP_ELEM, &attr, sizeof(attr)) < 0)
		return -1;
	return (long long)st.generation;
}

/* One connection; writes the result word into out. */
static void one(const struct sockaddr_in *sa, char *out, size_t len)
{
	static const char req[] = "GET / HTTP/1.0\r\nHost: churn\r\n\r\n";
	struct timeval tv = { .tv_sec = 2 };
	struct sockaddr_in peer;
	socklen_t peer_len = sizeof(peer);
	const char *stage = "socket";
	char buf[1024], *body;
	size_t got = 0;
	bool peer_ok;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	stage = "connect";
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
		goto fail;
	stage = "getpeername";
	if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) < 0)
		goto fail;
	peer_ok = peer.sin_addr.s_addr == sa->sin_addr.s_addr && peer.sin_port == sa->sin_port;
	stage = "send";
	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0)
		goto fail;
	stage = "recv";
	for (;;) {
		ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);

		if (n < 0)
			goto fail;
		if (n == 0 || (got += (size_t)n) == sizeof(buf) - 1)
			break;
	}
	close(fd);
	buf[got] = '\0';
	body = strstr(buf, "\r\n\r\n");
	if (!body || !body[4]) {
		snprintf(out, len, "error:no-body@recv");
		return;
	}
	body += 4;
	body[strcspn(body, "\r\n \t")] = '\0';
	snprintf(out, len, "%s%s", peer_ok ? "" : "badpeer:", body);
	return;
fail:
	snprintf(out, len, "error:%s@%s", err_name(errno), stage);
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	const char *map_path = NULL, *stop = NULL;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	long n = 100000, done = 0;
	double seconds = 60, deadline;
	int opt, map_fd, port;

	while ((opt = getopt(argc, argv, "m:s:n:t:")) != -1) {
		switch (opt) {
		case 'm': map_path = optarg; break;
		case 's': stop = optarg; break;
		case 'n': n = atol(optarg); break;
		case 't': seconds = atof(optarg); break;
		default: goto usage;
		}
	}
	if (!map_path || argc - optind != 2 || n <= 0 || n > 10000000 || seconds <= 0 ||
	    seconds > 3600)
		goto usage;
	port = atoi(argv[optind + 1]);
	if (port <= 0 || port > 65535 || inet_pton(AF_INET, argv[optind], &sa.sin_addr) != 1)
		goto usage;
	sa.sin_port = htons((unsigned short)port);

	map_fd = bpf_obj_get(map_path);
	if (map_fd < 0 || generation(map_fd) < 0) {
		fprintf(stderr, "churn: cannot read %s: %s\n", map_path, strerror(errno));
		return 1;
	}
	deadline = now() + seconds;
	for (; done < n && now() < deadline; done++) {
		char result[NAME_LEN + 32];
		long long before, after;

		if (stop && (done & 7) == 0 && access(stop, F_OK) == 0)
			break;
		before = generation(map_fd);
		one(&sa, result, sizeof(result));
		after = generation(map_fd);
		printf("%lld %lld %s\n", before, after, result);
	}
	fprintf(stderr, "churn: %ld connections\n", done);
	return fflush(stdout) == 0 ? 0 : 1;
usage:
	fprintf(stderr, "usage: %s -m PINNED_STATE_MAP [-s STOPFILE] [-n COUNT] [-t SECONDS] "
		"ADDR PORT\n", argv[0]);
	return 2;
}
