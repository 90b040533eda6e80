/* Strict replacement: ferry either has every kernel feature it relies on
 * or refuses to start, naming what is missing. */
#ifndef FERRY_FEATURES_H
#define FERRY_FEATURES_H

#include <stddef.h>

/* Returns 0, or -1 after logging each missing feature. */
int features_check(void);

/* The per-packet path (XDP and tc on the external devices) is optional:
 * without it ClusterIPs still work. Returns 0, or -1 with why[] naming the
 * missing feature. */
int features_packet_path(char *why, size_t len);

/* Whether the device's driver runs XDP itself (native mode): 1, 0, or -1
 * when the kernel cannot say (then an attach in native mode tells). */
int features_xdp_native(int ifindex);

#endif
