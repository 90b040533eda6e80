/* ferryd's command line. */
#ifndef FERRY_FERRYD_OPTIONS_H
#define FERRY_FERRYD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/addr.h"
#include "datapath/loader.h"
#include "datapath/nodeport.h"

/* etcd refuses objects over 1.5 MiB by default; 16 MiB leaves room for
 * clusters that raised it and still bounds a broken stream. */
#define FERRYD_MAX_EVENT_BYTES (16u << 20)
/* --node-ips: a node has a few addresses (one or two per family). */
#define FERRYD_MAX_NODE_IPS 16

enum ferryd_source {
	SOURCE_NONE,
	SOURCE_FILE,
	SOURCE_KUBE,
};

struct ferryd_options {
	enum ferryd_source source;
	const char *source_path;  /* from --source file:PATH */
	const char *kubeconfig;   /* --kubeconfig, else $KUBECONFIG's first file, else NULL */
	char kubeconfig_env[4096];
	const char *apiserver;    /* --apiserver URL */
	bool allow_insecure_http; /* --allow-insecure-http */
	size_t max_event_bytes;   /* --max-event-bytes */
	double watch_idle_timeout;/* --watch-idle-timeout, seconds */
	double forbidden_retry;   /* --forbidden-retry, seconds */
	char metrics_addr[128];   /* --metrics-addr, "" = off */
	char health_addr[128];    /* --health-addr, "" = off */
	double health_timeout;    /* --health-timeout, seconds */
	char cgroup[512];         /* default: the cgroup2 mount root */
	const char *bpffs;
	const char *netns_dirs;   /* --netns-dirs, comma-separated; NULL = none */
	char node_name[256];
	const char *node_zone;    /* --node-zone (file source), NULL when not given */
	bool cleanup;
	struct dp_limits limits;
	/* The per-packet path. */
	size_t n_devices;         /* --devices; 0 = those carrying the node addresses */
	char devices[NP_MAX_DEVICES][IF_NAMESIZE];
	enum np_xdp_mode xdp;     /* --xdp */
	size_t n_node_ips;        /* --node-ips; 0 = the Node's addresses */
	struct ferry_ip node_ips[FERRYD_MAX_NODE_IPS];
	uint16_t node_port_min, node_port_max;  /* --node-port-range */
	uint16_t snat_port_min, snat_port_max;  /* --snat-port-range */
	uint32_t icmp_per_sec;    /* --icmp-rate */
	uint8_t lb_algorithm;     /* --lb-algorithm, enum lb_algorithm (default random) */
	bool udp_reaper_off;      /* --udp-reaper off (default auto) */
	bool tcx_off;             /* --tcx off (default auto) */
	uint32_t resync_period;   /* --resync-period, seconds between B34 checks */
};

/* Returns 0, 1 when --help was printed, -1 on a usage error (printed). */
int options_parse(int argc, char **argv, struct ferryd_options *opts);

#endif
