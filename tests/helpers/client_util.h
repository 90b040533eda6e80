/* Shared by the test clients (conncount, churn): a monotonic clock in
 * seconds and the errno names the kernel tests match on. Header-only,
 * since each client is built from its single .c file. */
#ifndef FERRY_TEST_CLIENT_UTIL_H
#define FERRY_TEST_CLIENT_UTIL_H

#include <errno.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *err_name(int e)
{
	switch (e) {
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNRESET: return "ECONNRESET";
	case ENETUNREACH: return "ENETUNREACH";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EAGAIN: return "timeout";
	case EINPROGRESS: return "timeout";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
	case EADDRINUSE: return "EADDRINUSE";
	case EINVAL: return "EINVAL";
	case EPIPE: return "EPIPE";
	case EMFILE: return "EMFILE";
	default: return "other";
	}
}

#endif
