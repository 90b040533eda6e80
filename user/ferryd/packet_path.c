/* ferryd's per-packet path: the node's addresses, ferry_config, and the
 * programs on the external devices (datapath/nodeport.h).
 *
 * ClusterIPs never depend on it: a kernel without what it needs, or a node
 * without a device that carries its addresses, leaves north-south traffic
 * unserved with an error in the log, and ferryd runs on. Only --devices
 * makes it a requirement: then ferryd refuses to start without it. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "datapath/features.h"
#include "ferryd/agent.h"
#include "ferryd/hcnp.h"

/* How often the devices are looked at again (packet_check_devices). */
#define PACKET_CHECK_S 5

/* An error that stops ferryd when --devices asked for the path, and only
 * turns north-south off otherwise. Returns -1 or 0 accordingly. */
static int packet_fail(const struct agent *ag, const char *why)
{
	if (ag->opts.n_devices) {
		log_error("ferryd", "per-packet path on --devices: %s; refusing to start", why);
		return -1;
	}
	log_error("ferryd", "north-south traffic (NodePort, LoadBalancer, externalIPs from "
		  "outside) is not served: %s; ClusterIPs are", why);
	return 0;
}

/* SO_NETNS_COOKIE (Linux 5.14) may be missing from the build's headers. */
#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

/* The cookie of ferryd's network namespace, the node's: the socket LB
 * gives loopback NodePorts to its sockets only (B22). 0 when unknown. */
static uint64_t packet_netns_cookie(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);

	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len))
		log_warn("ferryd", "cannot read this network namespace's cookie: %s; NodePorts "
			 "on loopback are not served", strerror(errno));
	if (fd >= 0)
		close(fd);
	return cookie;
}

/* The engine fills in the SNAT addresses (the first node address of each
 * family). */
static void packet_write_config(struct agent *ag)
{
	struct dp_config cfg = {
		.node_port_min = ag->opts.node_port_min,
		.node_port_max = ag->opts.node_port_max,
		.snat_port_min = ag->opts.snat_port_min,
		.snat_port_max = ag->opts.snat_port_max,
		.icmp_per_sec = ag->opts.icmp_per_sec,
		.node_netns_cookie = packet_netns_cookie(),
	};

	sync_set_config(ag->eng, &cfg);
}

/* A SNATed flow's port is unique among ferry_ct's flows to its backend,
 * not among the node's own sockets: a host process connecting from an
 * ephemeral port to a pod on another node could meet a SNATed flow on the
 * same tuple. Said at start, with the cure, when the ranges overlap. */
static void packet_check_snat_range(const struct agent *ag)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	unsigned lo, hi;

	if (!f)
		return;
	if (fscanf(f, "%u %u", &lo, &hi) == 2 && lo <= ag->opts.snat_port_max &&
	    hi >= ag->opts.snat_port_min)
		log_warn("ferryd", "--snat-port-range %u-%u overlaps this node's ephemeral ports "
			 "(net.ipv4.ip_local_port_range %u-%u): a connection from the node to a pod "
			 "on another node may meet a SNATed flow's port; reserve the range "
			 "(net.ipv4.ip_local_reserved_ports) or give one outside it",
			 ag->opts.snat_port_min, ag->opts.snat_port_max, lo, hi);
	fclose(f);
}

/* ferry_config and the node addresses serve the socket LB too (NodePorts
 * on loopback, B22): written whatever becomes of the per-packet path. */
int packet_start(struct agent *ag)
{
	char why[256];

	if (ag->opts.n_node_ips)
		packet_set_node_addrs(ag, ag->opts.node_ips, ag->opts.n_node_ips);
	else
		packet_write_config(ag);
	if (features_packet_path(why, sizeof(why)))
		return packet_fail(ag, why);
	if (features_used(FEATURE_TCX))
		log_info("ferryd", "per-packet path: XDP, tc and tcx links available");
	else
		log_info("ferryd", "per-packet path: XDP and tc available; the tc programs go in "
			 "clsact filters (no tcx)");
	packet_check_snat_range(ag);
	ag->np_usable = true;
	return 0;
}

/* The devices that carry one of the node's addresses, loopback aside. */
static size_t packet_default_devices(const struct agent *ag, char (*out)[IF_NAMESIZE])
{
	struct ifaddrs *all, *ifa;
	size_t n = 0;

	if (getifaddrs(&all))
		return 0;
	for (ifa = all; ifa; ifa = ifa->ifa_next) {
		struct ferry_ip ip = { { 0, 0, htonl(0xffff), 0 } };
		bool found = false;

		if (!ifa->ifa_addr || (ifa->ifa_flags & IFF_LOOPBACK))
			continue;
		if (ifa->ifa_addr->sa_family == AF_INET)
			memcpy(&ip.w[3], &((struct sockaddr_in *)ifa->ifa_addr)->sin_addr, 4);
		else if (ifa->ifa_addr->sa_family == AF_INET6)
			memcpy(ip.w, &((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr, 16);
		else
			continue;
		for (size_t i = 0; i < ag->n_node_addrs && !found; i++)
			found = addr_equal(&ip, &ag->node_addrs[i]);
		for (size_t i = 0; i < n && found; i++)
			found = strcmp(out[i], ifa->ifa_name) != 0;
		if (found && n < NP_MAX_DEVICES)
			snprintf(out[n++], IF_NAMESIZE, "%s", ifa->ifa_name);
	}
	freeifaddrs(all);
	return n;
}

static void packet_log_devices(const struct agent *ag)
{
	char text[NP_MAX_DEVICES * (IF_NAMESIZE + 16)] = "";
	size_t len = 0;

	for (size_t i = 0; i < ag->np.n_devs; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s (%s)", i ? ", " : "",
					ag->np.devs[i].name,
					ag->np.devs[i].xdp == NP_XDP_OFF ? "tc" :
					ag->np.devs[i].xdp == NP_XDP_NATIVE ? "XDP native" : "XDP generic");
	if (ag->np.n_devs)
		log_info("ferryd", "north-south traffic served on %zu devices: %s", ag->np.n_devs,
			 text);
	else
		log_warn("ferryd", "north-south traffic not served: no device carries a node "
			 "address (%zu known; --node-ips or the Node's), nor was --devices given",
			 ag->n_node_addrs);
}

/* The devices to serve: --devices, else those carrying a node address. */
static size_t packet_devices(const struct agent *ag, char (*names)[IF_NAMESIZE])
{
	if (!ag->opts.n_devices)
		return packet_default_devices(ag, names);
	memcpy(names, ag->opts.devices, sizeof(ag->opts.devices));
	return ag->opts.n_devices;
}

int packet_attach(struct agent *ag)
{
	char names[NP_MAX_DEVICES][IF_NAMESIZE];
	size_t n;

	if (!ag->np_usable)
		return 0;
	ag->np_attached = true;
	n = packet_devices(ag, names);
	/* Loaded for the first device only: the verifier takes about a second
	 * over the programs, which a node without one need not spend. */
	if (n && !ag->np_loaded) {
		if (nodeport_load(&ag->np, &ag->dp.maps, ag->opts.xdp,
				  features_used(FEATURE_TCX)))
			return packet_fail(ag, "the per-packet programs do not load");
		ag->np_loaded = true;
	}
	if (nodeport_attach(&ag->np, ag->opts.bpffs, names, n) == 0) {
		packet_log_devices(ag);
		hcnp_set_serving(ag->hcnp, n > 0);
		return 0;
	}
	hcnp_set_serving(ag->hcnp, false);
	return packet_fail(ag, "cannot attach to every device (see above)");
}

/* Whether names differ from the devices attached, or one of them is now
 * another device (deleted and created again under its name). */
static bool packet_devices_changed(const struct agent *ag, char (*names)[IF_NAMESIZE], size_t n)
{
	if (n != ag->np.n_devs)
		return true;
	for (size_t i = 0; i < n; i++) {
		bool same = false;

		for (size_t j = 0; j < n && !same; j++)
			same = strcmp(names[i], ag->np.devs[j].name) == 0 &&
			       (int)if_nametoindex(names[i]) == ag->np.devs[j].ifindex;
		if (!same)
			return true;
	}
	return false;
}

void packet_check_devices(struct agent *ag)
{
	char names[NP_MAX_DEVICES][IF_NAMESIZE];
	struct timespec now;
	size_t n;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!ag->np_attached || now.tv_sec < ag->np_next_check)
		return;
	ag->np_next_check = now.tv_sec + PACKET_CHECK_S;
	n = packet_devices(ag, names);
	if (!packet_devices_changed(ag, names, n))
		return;
	log_info("ferryd", "the devices to serve changed (a device or a node address came, went "
		 "or was created again): attaching again");
	packet_attach(ag);
}

static bool packet_addrs_equal(const struct agent *ag, const struct ferry_ip *addrs, size_t n)
{
	if (n != ag->n_node_addrs)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!addr_equal(&addrs[i], &ag->node_addrs[i]))
			return false;
	return true;
}

void packet_set_node_addrs(struct agent *ag, const struct ferry_ip *addrs, size_t n)
{
	char text[FERRYD_MAX_NODE_IPS * (ADDR_STR_LEN + 1)] = "", buf[ADDR_STR_LEN];
	size_t len = 0;

	if (n > FERRYD_MAX_NODE_IPS)
		n = FERRYD_MAX_NODE_IPS;
	if (packet_addrs_equal(ag, addrs, n) && ag->node_addrs_set)
		return;
	if (n)
		memcpy(ag->node_addrs, addrs, n * sizeof(*addrs));
	ag->n_node_addrs = n;
	ag->node_addrs_set = true;
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s", i ? " " : "",
					addr_format(&addrs[i], buf));
	log_info("ferryd", "node addresses%s: %s", ag->opts.n_node_ips ? " (--node-ips)" : "",
		 n ? text : "none");
	sync_set_node_addrs(ag->eng, addrs, n);
	packet_write_config(ag);
	if (ag->np_attached && !ag->opts.n_devices)
		packet_attach(ag);
}
