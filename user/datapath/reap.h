/* Destroying connected UDP sockets whose backend left its service (B21),
 * in every network namespace ferryd can find and enter. */
#ifndef FERRY_DATAPATH_REAP_H
#define FERRY_DATAPATH_REAP_H

#include "datapath/loader.h"

struct reap_result {
	unsigned namespaces;  /* walked */
	unsigned failed;      /* could not be entered or walked (EPERM without
			       * CAP_SYS_ADMIN) */
	int last_error;       /* -errno of the last failure */
	unsigned dirs_failed; /* folders of netns_dirs that could not be read */
	int dir_error;        /* -errno of the last of them */
	char dir[256];        /* its path */
	unsigned not_netns;   /* files in those folders that pin no network
			       * namespace: skipped */
};

/* Walks ferryd's own network namespace, those pinned as files in the
 * folders of netns_dirs (comma-separated; NULL or "" for none) and those of
 * the processes /proc shows, each once. A folder that cannot be read is
 * counted in res and skipped. Returns 0, or -errno when /proc or ferryd's
 * own namespace cannot be opened. The sockets destroyed count in
 * udp_sockets_reaped. */
int dp_reap_udp(const struct datapath *dp, const char *netns_dirs, struct reap_result *res);

#endif
