/* Destroying connected UDP sockets whose backend left its service (B21),
 * in every network namespace ferryd can enter. */
#ifndef FERRY_DATAPATH_REAP_H
#define FERRY_DATAPATH_REAP_H

#include "datapath/loader.h"

struct reap_result {
	unsigned namespaces;  /* walked */
	unsigned failed;      /* could not be entered or walked (EPERM without
			       * CAP_SYS_ADMIN) */
	int last_error;       /* -errno of the last failure */
};

/* Returns 0, or -errno when /proc or ferryd's own namespace cannot be
 * opened. The sockets destroyed count in udp_sockets_reaped. */
int dp_reap_udp(const struct datapath *dp, struct reap_result *res);

#endif
