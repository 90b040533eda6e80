/* ferryd's command line. */
#ifndef FERRY_FERRYD_OPTIONS_H
#define FERRY_FERRYD_OPTIONS_H

#include <stdbool.h>

#include "datapath/loader.h"

struct ferryd_options {
	const char *source_path;  /* from --source file:PATH */
	char cgroup[512];         /* default: the cgroup2 mount root */
	const char *bpffs;
	char node_name[256];
	bool cleanup;
	struct dp_limits limits;
};

/* Returns 0, 1 when --help was printed, -1 on a usage error (printed). */
int options_parse(int argc, char **argv, struct ferryd_options *opts);

#endif
