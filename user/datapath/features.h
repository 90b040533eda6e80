/* The kernel features ferry uses: what a Service cannot work without is
 * the core, checked at start (ferryd refuses to run, naming what is
 * missing); everything else is optional: probed, used where the kernel has
 * it, and reported where it has not (ferryd's log once, ferryctl status,
 * ferry_feature_available in /metrics). */
#ifndef FERRY_FEATURES_H
#define FERRY_FEATURES_H

#include <stdbool.h>
#include <stddef.h>

/* The optional features, as status and metrics name them. */
enum feature {
	FEATURE_UDP_REAPER,  /* B21: the bpf_sock_destroy kfunc from a UDP socket
			      * iterator (Linux 6.5) */
	FEATURE_TCX,         /* the per-packet path's tc programs as tcx links
			      * (Linux 6.6); else clsact filters */
	FEATURE_XDP_META,    /* XDP marks the packets it leaves to tc ingress
			      * (bpf_xdp_adjust_meta, which some kernel builds
			      * refuse to XDP); else tc ingress takes every packet
			      * XDP passes */
	FEATURE__COUNT,
};

extern const char *const feature_names[FEATURE__COUNT];

/* Returns 0, or -1 after logging each missing core feature. */
int features_check(void);

/* Whether the kernel has an optional feature; when not, why[] names what
 * it lacks and the kernel that brought it. */
bool features_kernel_has(enum feature f, char *why, size_t len);

/* Whether the kernel takes tcx attachments, asked without reading its BTF
 * (about 10 ms, which ferryctl status must not pay on every call). */
bool features_tcx_query(void);

/* The build's UAPI headers (6.1) predate tcx (6.6); the running kernel's
 * values, which are fixed ABI. */
#define FEATURE_BPF_TCX_INGRESS 46
#define FEATURE_BPF_TCX_EGRESS 47

/* What a user loses without the feature, in their terms. */
const char *features_loss(enum feature f);

/* Whether this ferryd uses the feature: set at start, read-only after (the
 * metrics server's thread reads it). */
void features_set_used(enum feature f, bool used);
bool features_used(enum feature f);

/* The per-packet path (XDP and tc on the external devices) is optional:
 * without it ClusterIPs still work. Returns 0, or -1 with why[] naming the
 * missing feature. tcx is not among them (FEATURE_TCX). */
int features_packet_path(char *why, size_t len);

/* Whether the device's driver runs XDP itself (native mode): 1, 0, or -1
 * when the kernel cannot say (then an attach in native mode tells). */
int features_xdp_native(int ifindex);

/* Whether XDP programs may call bpf_xdp_adjust_meta (FEATURE_XDP_META):
 * a load of a program that calls it, 0.03 ms. */
bool features_xdp_meta(void);

#endif
