#include "ferryd/options.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "datapath/mounts.h"
#include "ferry/maps.h"

static const char usage[] =
	"usage: ferryd --source file:PATH [options]\n"
	"       ferryd --cleanup [--bpffs DIR]\n"
	"\n"
	"  --source file:PATH         Services and EndpointSlices from a YAML/JSON file or folder\n"
	"  --cgroup DIR               cgroup v2 to attach to (default: the cgroup2 mount root)\n"
	"  --bpffs DIR                where maps and links are pinned (default /sys/fs/bpf/ferry)\n"
	"  --node-name NAME           this node (default: $NODE_NAME, then the hostname)\n"
	"  --max-services N           service ports (default %u)\n"
	"  --max-backends N           backends over all service ports (default %u)\n"
	"  --max-backends-per-service N  (default %u)\n"
	"  --log-level LEVEL          debug, info, warn, error (default info)\n"
	"  --cleanup                  detach and remove everything pinned under --bpffs\n";

static void print_usage(FILE *to)
{
	fprintf(to, usage, FERRY_DEFAULT_MAX_SERVICES, FERRY_DEFAULT_MAX_BACKENDS,
		FERRY_DEFAULT_MAX_PER_SERVICE);
}

static int parse_count(const char *flag, const char *text, uint32_t *out)
{
	char *end;
	unsigned long v = strtoul(text, &end, 10);

	if (*text == '\0' || *end != '\0' || v == 0 || v > (1UL << 26)) {
		fprintf(stderr, "ferryd: %s wants a number from 1 to %lu, not '%s'\n", flag,
			1UL << 26, text);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static void default_node_name(struct ferryd_options *opts)
{
	const char *env = getenv("NODE_NAME");

	if (env && *env)
		snprintf(opts->node_name, sizeof(opts->node_name), "%s", env);
	else if (gethostname(opts->node_name, sizeof(opts->node_name)))
		snprintf(opts->node_name, sizeof(opts->node_name), "unknown");
}

static int options_check(struct ferryd_options *opts)
{
	if (opts->cleanup)
		return 0;
	if (!opts->source_path) {
		fprintf(stderr, "ferryd: --source file:PATH is required\n");
		return -1;
	}
	if (!opts->cgroup[0] && mounts_cgroup2_root(opts->cgroup, sizeof(opts->cgroup))) {
		fprintf(stderr, "ferryd: no cgroup2 mount found in /proc/mounts\n");
		return -1;
	}
	if (!opts->node_name[0])
		default_node_name(opts);
	return 0;
}

int options_parse(int argc, char **argv, struct ferryd_options *opts)
{
	static const struct option longopts[] = {
		{ "source", required_argument, NULL, 's' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "node-name", required_argument, NULL, 'n' },
		{ "max-services", required_argument, NULL, 'S' },
		{ "max-backends", required_argument, NULL, 'B' },
		{ "max-backends-per-service", required_argument, NULL, 'P' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "cleanup", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum log_level level;
	int c;

	memset(opts, 0, sizeof(*opts));
	opts->bpffs = "/sys/fs/bpf/ferry";
	opts->limits.max_services = FERRY_DEFAULT_MAX_SERVICES;
	opts->limits.max_backends = FERRY_DEFAULT_MAX_BACKENDS;
	opts->limits.max_per_service = FERRY_DEFAULT_MAX_PER_SERVICE;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (strncmp(optarg, "file:", 5) != 0) {
				fprintf(stderr, "ferryd: --source takes file:PATH\n");
				return -1;
			}
			opts->source_path = optarg + 5;
			break;
		case 'c':
			snprintf(opts->cgroup, sizeof(opts->cgroup), "%s", optarg);
			break;
		case 'b':
			opts->bpffs = optarg;
			break;
		case 'n':
			snprintf(opts->node_name, sizeof(opts->node_name), "%s", optarg);
			break;
		case 'S':
			if (parse_count("--max-services", optarg, &opts->limits.max_services))
				return -1;
			break;
		case 'B':
			if (parse_count("--max-backends", optarg, &opts->limits.max_backends))
				return -1;
			break;
		case 'P':
			if (parse_count("--max-backends-per-service", optarg,
					&opts->limits.max_per_service))
				return -1;
			break;
		case 'l':
			if (log_parse_level(optarg, &level)) {
				fprintf(stderr, "ferryd: unknown log level '%s'\n", optarg);
				return -1;
			}
			log_set_level(level);
			break;
		case 'C':
			opts->cleanup = true;
			break;
		case 'h':
			print_usage(stdout);
			return 1;
		default:
			print_usage(stderr);
			return -1;
		}
	}
	return options_check(opts);
}
