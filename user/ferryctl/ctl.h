/* ferryctl's commands. Each reads the pinned maps only, so it works while
 * ferryd is down. json selects `-o json` output. */
#ifndef FERRY_CTL_H
#define FERRY_CTL_H

#include <stdbool.h>

#include "datapath/pinned.h"

int ctl_service_list(const struct dp_maps *maps, bool json);
int ctl_backend_list(const struct dp_maps *maps, bool json);
int ctl_ct_list(const struct dp_maps *maps, bool json);
/* count: also each hash map's entries (reads every entry: slow at scale). */
int ctl_status(const struct dp_maps *maps, const char *bpffs, bool json, bool count);

/* ferryctl explain FRONTEND: a client on the node (netns: a netns file;
 * pid: a process, its netns and cgroup; cgroup: a cgroup path; none: ferryctl
 * itself) or outside it (source: ADDRESS[:PORT]). */
struct ctl_explain_args {
	const char *frontend, *netns, *pid, *cgroup, *source;
};
int ctl_explain(const struct dp_maps *maps, const char *bpffs, const struct ctl_explain_args *a,
		bool json);

/* Print a cJSON tree and free it. */
struct cJSON;
void ctl_print_json(struct cJSON *root);

#endif
