#include "ferryd/options.h"

#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "datapath/mounts.h"
#include "ferry/maps.h"
#include "kube/watch.h"
#include "metrics/httpd.h"
#include "model/model.h"

static const char usage[] =
	"usage: ferryd [--source k8s|file:PATH] [options]\n"
	"       ferryd --cleanup [--bpffs DIR]\n"
	"\n"
	"  --source k8s               list and watch the API server (the default when one of\n"
	"                             --kubeconfig, $KUBECONFIG, --apiserver or the in-cluster\n"
	"                             environment is there)\n"
	"  --source file:PATH         Services and EndpointSlices from a YAML/JSON file or folder\n"
	"  --kubeconfig PATH          (default $KUBECONFIG, else in-cluster)\n"
	"  --apiserver URL            the API server, e.g. https://10.0.0.1:6443: without\n"
	"                             kube-proxy the kubernetes ClusterIP only works once ferry runs\n"
	"  --allow-insecure-http      accept an http:// API server (the token goes in clear)\n"
	"  --max-event-bytes N        largest watch event accepted (default %u)\n"
	"  --watch-idle-timeout SECONDS  a watch stream that delivers no byte (event or\n"
	"                             bookmark) this long is taken for dead and resumed\n"
	"                             (default 90)\n"
	"  --forbidden-retry SECONDS  how long a request answered 403 (ferryd's account lacks\n"
	"                             a permission) waits before it is tried again: a fixed\n"
	"                             RBAC rule takes effect within it (default 30)\n"
	"  --metrics-addr ADDR        Prometheus /metrics (default 127.0.0.1:10249; \"\" = off)\n"
	"  --health-addr ADDR         /healthz and /livez (default :10256, every address;\n"
	"                             \"\" = off)\n"
	"  --health-timeout SECONDS   a change not in the maps after this makes /healthz\n"
	"                             503; the agent's loop this late makes /livez and\n"
	"                             /healthz 503 (default 60)\n"
	"  --cgroup DIR               cgroup v2 to attach to (default: the cgroup2 mount root)\n"
	"  --bpffs DIR                where maps and links are pinned (default /sys/fs/bpf/ferry)\n"
	"  --node-name NAME           this node (default: $NODE_NAME, then the hostname)\n"
	"  --node-zone ZONE           this node's zone, for topology hints, with --source file\n"
	"                             (with k8s: the Node's topology.kubernetes.io/zone label)\n"
	"  --max-services N           service ports (default %u)\n"
	"  --max-backends N           backends over all service ports (default %u)\n"
	"  --max-backends-per-service N  (default %u)\n"
	"  --max-affinity N           clients remembered for session affinity, over all\n"
	"                             service ports; the least recent go first (default %u)\n"
	"  --max-ct N                 per-packet flow entries, two per flow (NodePort, LB IPs,\n"
	"                             externalIPs from outside); the least recent go first\n"
	"                             (default %u)\n"
	"  --max-maglev-entries N     Maglev table entries over all service ports using it:\n"
	"                             704 for up to 7 backends, 1412 up to 14, ... (a table's\n"
	"                             prime size rounded up to 4); 2 bytes each (default %u)\n"
	"  --devices LIST             comma-separated devices that get the per-packet programs;\n"
	"                             ferryd refuses to start when it cannot serve them (default:\n"
	"                             those carrying the node's addresses, followed as they\n"
	"                             change; none, or a kernel without XDP and tcx: north-south\n"
	"                             traffic is not served, ClusterIPs are)\n"
	"  --xdp native|generic|off   XDP in the driver (default; generic, with a warning, where\n"
	"                             the driver has none), in the stack, or off (tc ingress\n"
	"                             does everything); tc egress reverse-translates replies\n"
	"  --node-ips LIST            this node's addresses, comma-separated (default: the\n"
	"                             Node's status.addresses; with --source file, the Node\n"
	"                             named --node-name in the source)\n"
	"  --node-port-range MIN-MAX  NodePorts answered (default 30000-32767)\n"
	"  --snat-port-range MIN-MAX  source ports of SNATed flows (default 32768-60999)\n"
	"  --icmp-rate N              ICMP replies per second and CPU the per-packet path\n"
	"                             sends: port unreachable (a service without endpoints)\n"
	"                             and fragmentation needed (default 100)\n"
	"  --lb-algorithm NAME        how service ports pick a backend unless their Service's\n"
	"                             annotation ferry.io/lb-algorithm says: random (default),\n"
	"                             round-robin, maglev or least-conn\n"
	"  --udp-reaper auto|off      fail connected UDP sockets whose backend was removed\n"
	"                             (B21) where the kernel can (auto: Linux 6.5+), or never\n"
	"  --tcx auto|off             the per-packet path's tc programs as tcx links where the\n"
	"                             kernel has them (auto: Linux 6.6+), or as clsact filters\n"
	"  --netns-dirs LIST          comma-separated folders where the container runtime pins\n"
	"                             pods' network namespaces, searched with /proc for\n"
	"                             connected UDP sockets of removed backends (default none)\n"
	"  --resync-period SECONDS    how often the programs' attachments and the service maps\n"
	"                             are checked, and what someone else removed or changed\n"
	"                             put back (default 30)\n"
	"  --log-level LEVEL          debug, info, warn, error (default info)\n"
	"  --cleanup                  detach and remove everything pinned under --bpffs\n";

static void print_usage(FILE *to)
{
	fprintf(to, usage, FERRYD_MAX_EVENT_BYTES, FERRY_DEFAULT_MAX_SERVICES, FERRY_DEFAULT_MAX_BACKENDS,
		FERRY_DEFAULT_MAX_PER_SERVICE, FERRY_DEFAULT_MAX_AFFINITY, FERRY_DEFAULT_MAX_CT,
		FERRY_DEFAULT_MAX_MAGLEV_ENTRIES);
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

/* An HTTP listen address; "" turns the server off. */
static int options_addr(const char *flag, const char *arg, char out[128])
{
	if (*arg && (strlen(arg) >= 128 || !httpd_addr_valid(arg))) {
		fprintf(stderr, "ferryd: %s wants HOST:PORT, [V6]:PORT, :PORT or \"\", not '%s'\n",
			flag, arg);
		return -1;
	}
	snprintf(out, 128, "%s", arg);
	return 0;
}

static int options_parse_source(const char *arg, struct ferryd_options *opts)
{
	if (strcmp(arg, "k8s") == 0) {
		opts->source = SOURCE_KUBE;
		return 0;
	}
	if (strncmp(arg, "file:", 5) == 0 && arg[5]) {
		opts->source = SOURCE_FILE;
		opts->source_path = arg + 5;
		return 0;
	}
	fprintf(stderr, "ferryd: --source takes k8s or file:PATH, not '%s'\n", arg);
	return -1;
}

/* MIN-MAX, 1 <= MIN <= MAX <= 65535. */
static int parse_range(const char *flag, const char *text, uint16_t *min, uint16_t *max)
{
	unsigned int lo, hi;
	int used = 0;

	if (sscanf(text, "%5u-%5u%n", &lo, &hi, &used) != 2 || text[used] || lo == 0 ||
	    lo > hi || hi > 65535) {
		fprintf(stderr, "ferryd: %s wants MIN-MAX, 1 <= MIN <= MAX <= 65535, not '%s'\n",
			flag, text);
		return -1;
	}
	*min = (uint16_t)lo;
	*max = (uint16_t)hi;
	return 0;
}

/* Comma-separated items into fn; -1 on the first refused (printed). */
static int parse_list(const char *flag, const char *text, struct ferryd_options *opts,
		      int (*fn)(const char *flag, const char *item, struct ferryd_options *opts))
{
	char item[64];

	for (const char *p = text;; p++) {
		size_t len = strcspn(p, ",");

		if (len == 0 || len >= sizeof(item)) {
			fprintf(stderr, "ferryd: %s: bad list '%s'\n", flag, text);
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (fn(flag, item, opts) < 0)
			return -1;
		p += len;
		if (!*p)
			return 0;
	}
}

static int add_device(const char *flag, const char *name, struct ferryd_options *opts)
{
	if (opts->n_devices == NP_MAX_DEVICES || strlen(name) >= IF_NAMESIZE) {
		fprintf(stderr, "ferryd: %s: at most %d devices of up to %d characters ('%s')\n",
			flag, NP_MAX_DEVICES, IF_NAMESIZE - 1, name);
		return -1;
	}
	snprintf(opts->devices[opts->n_devices++], IF_NAMESIZE, "%s", name);
	return 0;
}

static int add_node_ip(const char *flag, const char *text, struct ferryd_options *opts)
{
	if (opts->n_node_ips == FERRYD_MAX_NODE_IPS ||
	    addr_parse(text, &opts->node_ips[opts->n_node_ips]) < 0) {
		fprintf(stderr, "ferryd: %s: '%s' is not an IP address (at most %d)\n", flag, text,
			FERRYD_MAX_NODE_IPS);
		return -1;
	}
	opts->n_node_ips++;
	return 0;
}

static int parse_xdp(const char *text, enum np_xdp_mode *out)
{
	for (int m = NP_XDP_NATIVE; m <= NP_XDP_OFF; m++)
		if (strcmp(text, nodeport_mode_name((enum np_xdp_mode)m)) == 0) {
			*out = (enum np_xdp_mode)m;
			return 0;
		}
	fprintf(stderr, "ferryd: --xdp takes native, generic or off, not '%s'\n", text);
	return -1;
}

/* An optional kernel feature: auto (used where the kernel has it) or off. */
static int parse_auto_off(const char *flag, const char *text, bool *off)
{
	if (strcmp(text, "auto") && strcmp(text, "off")) {
		fprintf(stderr, "ferryd: %s takes auto or off, not '%s'\n", flag, text);
		return -1;
	}
	*off = strcmp(text, "off") == 0;
	return 0;
}

/* The per-packet path's settings: devices that exist in this network
 * namespace, port ranges that do not overlap. */
static int options_check_packet(const struct ferryd_options *opts)
{
	for (size_t i = 0; i < opts->n_devices; i++)
		if (!if_nametoindex(opts->devices[i])) {
			fprintf(stderr, "ferryd: --devices: no device %s in this network namespace\n",
				opts->devices[i]);
			return -1;
		}
	if (opts->node_port_min <= opts->snat_port_max && opts->snat_port_min <= opts->node_port_max) {
		fprintf(stderr, "ferryd: --node-port-range %u-%u and --snat-port-range %u-%u overlap\n",
			opts->node_port_min, opts->node_port_max, opts->snat_port_min,
			opts->snat_port_max);
		return -1;
	}
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

/* Without --source: the API server when there is a way to reach one. */
static int options_source(struct ferryd_options *opts)
{
	const char *env = getenv("KUBECONFIG");

	if (!opts->kubeconfig && env && *env) {
		/* client-go merges a list; ferryd reads the first file. */
		snprintf(opts->kubeconfig_env, sizeof(opts->kubeconfig_env), "%.*s",
			 (int)strcspn(env, ":"), env);
		opts->kubeconfig = opts->kubeconfig_env;
	}
	if (opts->source != SOURCE_NONE)
		return 0;
	if (opts->kubeconfig || opts->apiserver || getenv("KUBERNETES_SERVICE_HOST")) {
		opts->source = SOURCE_KUBE;
		return 0;
	}
	fprintf(stderr, "ferryd: no source: give --source file:PATH, or --kubeconfig, "
		"--apiserver, or run in a cluster\n");
	return -1;
}

static int options_check(struct ferryd_options *opts)
{
	if (opts->cleanup)
		return 0;
	if (options_source(opts) < 0)
		return -1;
	if (opts->node_zone && opts->source == SOURCE_KUBE) {
		fprintf(stderr, "ferryd: --node-zone is for --source file; from the API the zone "
			"is the Node's topology.kubernetes.io/zone label\n");
		return -1;
	}
	if (!opts->cgroup[0] && mounts_cgroup2_root(opts->cgroup, sizeof(opts->cgroup))) {
		fprintf(stderr, "ferryd: no cgroup2 mount found in /proc/mounts\n");
		return -1;
	}
	if (!opts->node_name[0])
		default_node_name(opts);
	return options_check_packet(opts);
}

static int parse_lb_algorithm(const char *arg, uint8_t *out)
{
	switch (model_lb_parse(arg)) {
	case MODEL_LB_RANDOM:
		*out = LB_RANDOM;
		return 0;
	case MODEL_LB_ROUND_ROBIN:
		*out = LB_ROUND_ROBIN;
		return 0;
	case MODEL_LB_MAGLEV:
		*out = LB_MAGLEV;
		return 0;
	case MODEL_LB_LEAST_CONN:
		*out = LB_LEAST_CONN;
		return 0;
	default:
		fprintf(stderr, "ferryd: --lb-algorithm: unknown algorithm '%s' (random, "
			"round-robin, maglev or least-conn)\n", arg);
		return -1;
	}
}

int options_parse(int argc, char **argv, struct ferryd_options *opts)
{
	static const struct option longopts[] = {
		{ "source", required_argument, NULL, 's' },
		{ "kubeconfig", required_argument, NULL, 'k' },
		{ "apiserver", required_argument, NULL, 'a' },
		{ "allow-insecure-http", no_argument, NULL, 'i' },
		{ "max-event-bytes", required_argument, NULL, 'E' },
		{ "watch-idle-timeout", required_argument, NULL, 'W' },
		{ "forbidden-retry", required_argument, NULL, 'F' },
		{ "metrics-addr", required_argument, NULL, 'M' },
		{ "health-addr", required_argument, NULL, 'H' },
		{ "health-timeout", required_argument, NULL, 'T' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "node-name", required_argument, NULL, 'n' },
		{ "node-zone", required_argument, NULL, 'z' },
		{ "max-services", required_argument, NULL, 'S' },
		{ "max-backends", required_argument, NULL, 'B' },
		{ "max-backends-per-service", required_argument, NULL, 'P' },
		{ "max-affinity", required_argument, NULL, 'A' },
		{ "max-ct", required_argument, NULL, 'X' },
		{ "max-maglev-entries", required_argument, NULL, 'G' },
		{ "devices", required_argument, NULL, 'D' },
		{ "xdp", required_argument, NULL, 'x' },
		{ "node-ips", required_argument, NULL, 'N' },
		{ "node-port-range", required_argument, NULL, 'R' },
		{ "snat-port-range", required_argument, NULL, 'r' },
		{ "icmp-rate", required_argument, NULL, 'I' },
		{ "lb-algorithm", required_argument, NULL, 'L' },
		{ "udp-reaper", required_argument, NULL, 'U' },
		{ "tcx", required_argument, NULL, 'K' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "netns-dirs", required_argument, NULL, 'J' },
		{ "resync-period", required_argument, NULL, 'Y' },
		{ "cleanup", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum log_level level;
	uint32_t count;
	int c;

	memset(opts, 0, sizeof(*opts));
	opts->bpffs = "/sys/fs/bpf/ferry";
	opts->max_event_bytes = FERRYD_MAX_EVENT_BYTES;
	opts->watch_idle_timeout = WATCH_IDLE_TIMEOUT_S;
	opts->forbidden_retry = WATCH_FORBIDDEN_RETRY_S;
	snprintf(opts->metrics_addr, sizeof(opts->metrics_addr), "127.0.0.1:10249");
	snprintf(opts->health_addr, sizeof(opts->health_addr), ":10256");
	opts->health_timeout = 60;
	opts->limits.max_services = FERRY_DEFAULT_MAX_SERVICES;
	opts->limits.max_backends = FERRY_DEFAULT_MAX_BACKENDS;
	opts->limits.max_per_service = FERRY_DEFAULT_MAX_PER_SERVICE;
	opts->limits.max_affinity = FERRY_DEFAULT_MAX_AFFINITY;
	opts->limits.max_ct = FERRY_DEFAULT_MAX_CT;
	opts->limits.max_source_ranges = FERRY_DEFAULT_MAX_SOURCE_RANGES;
	opts->limits.max_node_addrs = FERRY_DEFAULT_MAX_NODE_ADDRS;
	opts->limits.max_maglev_entries = FERRY_DEFAULT_MAX_MAGLEV_ENTRIES;
	opts->node_port_min = 30000;
	opts->node_port_max = 32767;
	opts->snat_port_min = 32768;
	opts->snat_port_max = 60999;
	opts->icmp_per_sec = 100;
	opts->resync_period = 30;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (options_parse_source(optarg, opts) < 0)
				return -1;
			break;
		case 'k':
			opts->kubeconfig = optarg;
			break;
		case 'a':
			opts->apiserver = optarg;
			break;
		case 'i':
			opts->allow_insecure_http = true;
			break;
		case 'M':
		case 'H':
			if (options_addr(c == 'M' ? "--metrics-addr" : "--health-addr", optarg,
					 c == 'M' ? opts->metrics_addr : opts->health_addr) < 0)
				return -1;
			break;
		case 'T':
			if (parse_count("--health-timeout", optarg, &count))
				return -1;
			opts->health_timeout = count;
			break;
		case 'E':
			if (parse_count("--max-event-bytes", optarg, &count))
				return -1;
			opts->max_event_bytes = count;
			break;
		case 'W':
			if (parse_count("--watch-idle-timeout", optarg, &count))
				return -1;
			opts->watch_idle_timeout = count;
			break;
		case 'F':
			if (parse_count("--forbidden-retry", optarg, &count))
				return -1;
			opts->forbidden_retry = count;
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
		case 'z':
			opts->node_zone = optarg;
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
		case 'A':
			if (parse_count("--max-affinity", optarg, &opts->limits.max_affinity))
				return -1;
			break;
		case 'X':
			if (parse_count("--max-ct", optarg, &opts->limits.max_ct))
				return -1;
			break;
		case 'G':
			if (parse_count("--max-maglev-entries", optarg, &opts->limits.max_maglev_entries))
				return -1;
			break;
		case 'D':
			opts->n_devices = 0;
			if (parse_list("--devices", optarg, opts, add_device))
				return -1;
			break;
		case 'x':
			if (parse_xdp(optarg, &opts->xdp))
				return -1;
			break;
		case 'N':
			opts->n_node_ips = 0;
			if (parse_list("--node-ips", optarg, opts, add_node_ip))
				return -1;
			break;
		case 'R':
		case 'r':
			if (parse_range(c == 'R' ? "--node-port-range" : "--snat-port-range", optarg,
					c == 'R' ? &opts->node_port_min : &opts->snat_port_min,
					c == 'R' ? &opts->node_port_max : &opts->snat_port_max))
				return -1;
			break;
		case 'I':
			if (parse_count("--icmp-rate", optarg, &opts->icmp_per_sec))
				return -1;
			break;
		case 'L':
			if (parse_lb_algorithm(optarg, &opts->lb_algorithm))
				return -1;
			break;
		case 'U':
		case 'K':
			if (parse_auto_off(c == 'U' ? "--udp-reaper" : "--tcx", optarg,
					   c == 'U' ? &opts->udp_reaper_off : &opts->tcx_off))
				return -1;
			break;
		case 'l':
			if (log_parse_level(optarg, &level)) {
				fprintf(stderr, "ferryd: unknown log level '%s'\n", optarg);
				return -1;
			}
			log_set_level(level);
			break;
		case 'J':
			opts->netns_dirs = optarg;
			break;
		case 'Y':
			if (parse_count("--resync-period", optarg, &opts->resync_period))
				return -1;
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
