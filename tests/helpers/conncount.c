/* conncount: open N TCP connections one after another to ADDR:PORT, send one
 * HTTP/1.0 request on each, and count the answers (podserver.py answers with
 * its pod name). Bounded in count and in time.
 *
 *   conncount [-n COUNT] [-t SECONDS] [-p PATH] [-s] [-B SRC-ADDR] [-b SRC-PORT]
 *             ADDR PORT
 *
 * -p asks for PATH instead of / (podserver.py answers /port with
 * "NAME:PORT", so each backend of a pod counts apart).
 *
 * ADDR is IPv4, IPv6 or v4-mapped IPv6 (::ffff:a.b.c.d, an AF_INET6 socket).
 * Prints one line per distinct answer, "COUNT NAME", sorted by name; failed
 * connections count as "COUNT error:ERRNO_NAME", and connections not tried
 * because the time ran out as "COUNT error:deadline". Exit 0 when every
 * connection got an answer, 1 otherwise, 2 on bad usage. -s prints every
 * answer instead, one per line in the order of the connections (a rotation
 * shows there).
 *
 * -b binds connection i to source port SRC-PORT + i (SO_REUSEADDR), so that
 * a run repeats the same flows (5-tuples) as an earlier one; -B binds the
 * source address (one of the client's own), port SRC-PORT + i with -b, else
 * any. Without them the kernel chooses both, as before.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "client_util.h"

#define MAX_NAMES 64
#define NAME_LEN 64

struct tally {
	char name[NAME_LEN];
	long count;
};

static struct tally tallies[MAX_NAMES];
static int n_tallies;

static void count(const char *name)
{
	for (int i = 0; i < n_tallies; i++) {
		if (!strcmp(tallies[i].name, name)) {
			tallies[i].count++;
			return;
		}
	}
	if (n_tallies == MAX_NAMES) {
		count("error:too-many-names");
		return;
	}
	snprintf(tallies[n_tallies].name, NAME_LEN, "%s", name);
	tallies[n_tallies++].count = 1;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct tally *)a)->name, ((const struct tally *)b)->name);
}

/* One connection; on success copies the trimmed body into name. Returns 0 or
 * an errno (-1 for a reply without a body). */
static int one(const struct sockaddr *sa, socklen_t salen, const struct sockaddr *src,
	       const char *req, char *name, size_t len)
{
	struct timeval tv = { .tv_sec = 2 };
	char buf[4096];
	size_t got = 0;
	int fd, err = 0, on = 1;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (src && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
		    bind(fd, src, salen) < 0)) {
		err = errno;
		goto out;
	}
	if (connect(fd, sa, salen) < 0 || send(fd, req, strlen(req), MSG_NOSIGNAL) < 0) {
		err = errno;
		goto out;
	}
	for (;;) {
		ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);

		if (n < 0) {
			err = errno;
			goto out;
		}
		if (n == 0 || (got += n) == sizeof(buf) - 1)
			break;
	}
	buf[got] = '\0';
	char *body = strstr(buf, "\r\n\r\n");
	if (!body) {
		err = -1;
		goto out;
	}
	body += 4;
	body[strcspn(body, "\r\n")] = '\0';
	snprintf(name, len, "%s", body[0] ? body : "(empty)");
out:
	close(fd);
	return err;
}

/* The source of connection i into src (the family of the target, set by
 * the caller): -B's address or any, port first_port + i or any. */
static void source_of(struct sockaddr_storage *src, long first_port, long i)
{
	uint16_t port = first_port ? htons((uint16_t)(first_port + i)) : 0;

	if (src->ss_family == AF_INET)
		((struct sockaddr_in *)src)->sin_port = port;
	else
		((struct sockaddr_in6 *)src)->sin6_port = port;
}

/* -B ADDR into src, of the target's family; false when it is not one. */
static bool source_addr(struct sockaddr_storage *src, int family, const char *addr)
{
	src->ss_family = family;
	if (!addr)
		return true;
	if (family == AF_INET)
		return inet_pton(AF_INET, addr, &((struct sockaddr_in *)src)->sin_addr) == 1;
	return inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)src)->sin6_addr) == 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss = {0}, src = {0};
	const char *src_addr = NULL;
	long first_port = 0;
	long n = 100, failed = 0;
	double seconds = 60, deadline;
	const char *path = "/";
	char req[256];
	socklen_t salen;
	bool sequence = false;
	int opt;

	while ((opt = getopt(argc, argv, "n:t:p:sB:b:")) != -1) {
		switch (opt) {
		case 's': sequence = true; break;
		case 'n': n = atol(optarg); break;
		case 't': seconds = atof(optarg); break;
		case 'p': path = optarg; break;
		case 'B': src_addr = optarg; break;
		case 'b': first_port = atol(optarg); break;
		default: goto usage;
		}
	}
	if (argc - optind != 2 || n <= 0 || first_port < 0 || (first_port && first_port + n > 65536) ||
	    n > 1000000 || seconds <= 0 || path[0] != '/' ||
	    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: conncount\r\n\r\n", path) >=
		    (int)sizeof(req))
		goto usage;

	int port = atoi(argv[optind + 1]);
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (port <= 0 || port > 65535)
		goto usage;
	if (inet_pton(AF_INET, argv[optind], &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		salen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, argv[optind], &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		salen = sizeof(*sin6);
	} else {
		goto usage;
	}
	if (!source_addr(&src, ss.ss_family, src_addr))
		goto usage;
	bool bound = src_addr || first_port;

	deadline = now() + seconds;
	for (long i = 0; i < n; i++) {
		char name[NAME_LEN], label[NAME_LEN + 8];
		int err;

		if (now() > deadline) {
			failed += n - i;
			for (; i < n; i++)
				count("error:deadline");
			break;
		}
		source_of(&src, first_port, i);
		err = one((struct sockaddr *)&ss, salen, bound ? (struct sockaddr *)&src : NULL, req,
			  name, sizeof(name));
		if (!err) {
			count(name);
			if (sequence)
				printf("%s\n", name);
			continue;
		}
		failed++;
		snprintf(label, sizeof(label), "error:%s", err < 0 ? "no-body" : err_name(err));
		count(label);
		if (sequence)
			printf("%s\n", label);
	}

	if (sequence)
		return failed ? 1 : 0;
	qsort(tallies, n_tallies, sizeof(tallies[0]), by_name);
	for (int i = 0; i < n_tallies; i++)
		printf("%ld %s\n", tallies[i].count, tallies[i].name);
	return failed ? 1 : 0;
usage:
	fprintf(stderr, "usage: %s [-n COUNT] [-t SECONDS] [-p PATH] [-s] [-B SRC-ADDR] [-b SRC-PORT] "
		"ADDR PORT\n", argv[0]);
	return 2;
}
