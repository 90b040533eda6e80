/* ferryctl explain in two halves: explain.c finds the service entry that
 * decides for a client (the socket path's steps or the per-packet path's),
 * explain_set.c describes its backend set and the pick. Both write the
 * answer as JSON and as "label  text" lines side by side. */
#ifndef FERRY_CTL_EXPLAIN_H
#define FERRY_CTL_EXPLAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "common/addr.h"
#include "datapath/pinned.h"
#include "ferry/maps.h"

struct cJSON;

/* The question: a frontend, and a client on the node (its network
 * namespace and cgroup, each when known) or outside it (its address). */
struct explain_req {
	struct svc_key key;     /* as given: address, port, protocol; scope 0 */
	bool external;          /* --source */
	struct ferry_ip source;
	__u16 sport;            /* network order; 0 = not given */
	bool has_cookie;
	__u64 cookie;
	char cgroup[512];       /* "" = not given */
};

/* The answer, built as JSON and as "label  text" lines side by side. */
struct explain {
	const struct dp_maps *maps;
	struct cJSON *json;
	char text[8192];
	struct svc_key key;     /* the entry that decides */
	struct svc_entry e;
	bool found;
	struct agent_state node; /* ferry_state: this node's name and zone */
};

void explain_say(struct explain *ex, const char *label, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The verdict: translated, refused, rejected, dropped, untouched, unknown. */
void explain_verdict(struct explain *ex, const char *what, const char *why);
/* "addr:port" (IPv6 in brackets) of a map address and network-order port. */
const char *explain_hostport(const __u32 addr[4], __u16 port_be, char *buf, size_t len);
/* The decisive entry's set (ex->e, found): service, policy, zone, fallback,
 * backends, affinity, algorithm and pick; or why it refuses. */
void explain_set(struct explain *ex, const struct explain_req *req);

#endif
