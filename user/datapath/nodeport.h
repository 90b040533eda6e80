/* The per-packet path on the node's external devices: ferry_xdp_nodeport at
 * XDP, ferry_tc_egress at tc egress (reverse translation of replies) and,
 * with --xdp=off, ferry_tc_ingress in XDP's place. The programs use the
 * socket-LB object's maps (bpf_map__reuse_fd), so they see what the sync
 * engine writes.
 *
 * Every attachment is a BPF link pinned under <bpffs>/links as
 * xdp-<ifname>, tc-ingress-<ifname> or tc-egress-<ifname>. A restart swaps
 * the new program into a pinned link on the same device and mode with
 * bpf_link_update, so the device never runs without one (a change of XDP
 * mode, or a device recreated under its name, replaces the link: a moment
 * without XDP); a pinned link of a device no longer configured is unpinned
 * (detached). ferryd exits leaving them serving; --cleanup removes them.
 *
 * Without tcx (before Linux 6.6, or --tcx off) the tc programs are clsact
 * filters in direct-action mode instead, known by their handle and
 * priority: a restart replaces ferry's filter in place (no moment without
 * one), a device no longer configured loses it, and --cleanup removes
 * those of the network namespace it runs in. */
#ifndef FERRY_NODEPORT_H
#define FERRY_NODEPORT_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

#include "datapath/pinned.h"

#define NP_MAX_DEVICES 16
/* ferry's clsact filters, without tcx. */
#define NP_TC_HANDLE 0xf377
#define NP_TC_PRIORITY 1

enum np_xdp_mode {
	NP_XDP_NATIVE,   /* in the driver; generic where the driver has none */
	NP_XDP_GENERIC,  /* in the stack (skb mode) */
	NP_XDP_OFF,      /* no XDP: tc ingress does its work */
};

struct np_device {
	char name[IF_NAMESIZE];
	int ifindex;
	enum np_xdp_mode xdp;  /* as attached */
	int link_fd[3];        /* the XDP, tc ingress and tc egress links, held
				* for nodeport_heal; -1 where none (unused,
				* or a clsact filter) */
};

struct ferry_nodeport_xdp;
struct ferry_nodeport_tc;

struct nodeport {
	struct ferry_nodeport_xdp *xdp;
	struct ferry_nodeport_tc *tc;
	enum np_xdp_mode mode;  /* --xdp */
	bool xdp_meta;          /* XDP marks what it hands to tc (FEATURE_XDP_META) */
	bool tcx;               /* tc hooks as tcx links, else clsact filters */
	size_t n_devs;
	struct np_device devs[NP_MAX_DEVICES]; /* attached */
};

/* Load the programs against maps. Returns 0 or -errno (logged). */
int nodeport_load(struct nodeport *np, const struct dp_maps *maps, enum np_xdp_mode mode,
		  bool tcx);

/* Attach to exactly these devices (names), adopting pinned links, and
 * unpin the links of any other device. Returns 0, or -errno after logging
 * the device that failed (the others stay as they were attached). */
int nodeport_attach(struct nodeport *np, const char *bpffs, char (*const names)[IF_NAMESIZE],
		    size_t n);

/* B34: on every device attached, attach again each program someone
 * detached (bpftool link detach, tc filter del) and put back one someone
 * swapped in: read from the held links' info, or one query per clsact
 * filter. Each repair is logged, naming the device and the hook. A device
 * gone or created again is left to nodeport_attach. Returns the number
 * repaired. */
int nodeport_heal(struct nodeport *np, const char *bpffs);

/* Close descriptors; pinned links stay and keep serving. */
void nodeport_close(struct nodeport *np);

/* Unpin (detach) every per-packet link under bpffs, and remove ferry's
 * clsact filters from this namespace's devices. Returns 0 or -1. */
int nodeport_cleanup(const char *bpffs);

const char *nodeport_mode_name(enum np_xdp_mode mode);

#endif
