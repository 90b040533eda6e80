/* ferry: the BPF maps' keys and values, shared by the datapath and userspace.
 *
 * Every address is stored as 16 bytes in network order; IPv4 addresses are
 * v4-mapped (::ffff:a.b.c.d). One key format serves connect4, connect6 and
 * v4-mapped IPv6 sockets, and per-socket state does not depend on which
 * family's hook created it.
 *
 * Bump FERRY_LAYOUT_VERSION whenever a struct below changes its layout.
 */
#ifndef FERRY_MAPS_H
#define FERRY_MAPS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define FERRY_LAYOUT_VERSION 3

/* Default capacities; ferryd's flags override them. */
#define FERRY_DEFAULT_MAX_SERVICES 65536
#define FERRY_DEFAULT_MAX_BACKENDS 262144
#define FERRY_DEFAULT_MAX_PER_SERVICE 4096
#define FERRY_DEFAULT_MAX_AFFINITY 65536

/* How many services one socket can be translated for at once. */
#define FERRY_SOCK_REVNAT_SLOTS 8

/* ferry_services: frontend (virtual address, port, protocol) -> backend set. */
struct svc_key {
	__u32 addr[4];   /* virtual IP, network order, IPv4 v4-mapped */
	__u16 port;      /* network order; 0 with proto 0 marks "known VIP" */
	__u8 proto;      /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP; 0 = VIP marker */
	__u8 pad;        /* always 0 */
};

enum svc_flags {
	SVC_FLAG_VIP_MARKER = 1 << 0, /* entry only says "this address is a VIP" (B17) */
	SVC_FLAG_FALLBACK   = 1 << 1, /* backends are serving+terminating ones (B11) */
	SVC_FLAG_LOCAL      = 1 << 2, /* internalTrafficPolicy Local: this node's only (B15) */
	SVC_FLAG_ZONE_HINTS = 1 << 3, /* backends hinted for this node's zone (B31) */
};

struct svc_value {
	__u32 svc_id;    /* service-port identity; keys its slots */
	__u32 rev;       /* backend-set revision; slots of other revisions are stale */
	__u32 count;     /* backends in this revision; 0 = refuse (B14) */
	__u32 flags;     /* enum svc_flags */
	__u32 affinity_timeout; /* ClientIP session affinity, seconds; 0 = none (B30) */
};

/* ferry_slots: (svc_id, rev, slot) -> backend. A new backend set is written
 * under a new rev, then published by one update of the svc_value. */
struct slot_key {
	__u32 svc_id;
	__u32 rev;
	__u32 slot;      /* 0 .. count-1 */
};

/* The backend's address rides in the slot, so choosing a backend is one
 * lookup; ferry_backends stays the record of which backends live. */
struct slot_value {
	__u32 backend_id;
	__u16 port;      /* network order */
	__u16 pad;       /* always 0 */
	__u32 addr[4];   /* network order, IPv4 v4-mapped */
};

/* ferry_backends: backend_id -> where to send. A backend_id belongs to one
 * service port; it is deleted when the backend leaves that service. */
struct backend_value {
	__u32 addr[4];   /* network order, IPv4 v4-mapped */
	__u16 port;      /* network order */
	__u8 proto;      /* same as the service's */
	__u8 state;      /* enum backend_state */
	__u32 svc_id;    /* owning service port */
};

enum backend_state {
	BACKEND_ACTIVE = 0,
	BACKEND_TERMINATING = 1, /* used only because no ready backend exists */
};

/* ferry_affinity (LRU): the backend a client last used for a service port
 * with session affinity (B30). At connect() no source address exists yet,
 * so the client is its network namespace, as a pod is one IP. */
struct affinity_key {
	__u64 netns_cookie;
	__u32 svc_id;
	__u32 pad;       /* always 0 */
};

struct affinity_value {
	__u64 last_used_ns;  /* bpf_ktime_get_ns() of the client's last connection */
	__u32 backend_id;
	__u32 pad;
};

/* ferry_sk_revnat (socket-local storage): which service each backend
 * address of this socket stands for, so replies and getpeername() show the
 * virtual address, and unconnected UDP keeps its backend. */
struct sock_revnat_entry {
	__u32 svc_addr[4];
	__u32 backend_addr[4];
	__u16 svc_port;      /* network order */
	__u16 backend_port;  /* network order */
	__u32 svc_id;        /* 0 = empty entry */
	__u32 svc_rev;       /* rev the backend was chosen (or last checked) in */
	__u32 backend_id;
};

struct sock_revnat {
	struct sock_revnat_entry entry[FERRY_SOCK_REVNAT_SLOTS];
	__u32 next;          /* entry to reuse when all are taken (oldest first) */
	__u32 pad;
};

/* ferry_stats: per-CPU datapath counters, indexed by enum stat_index. */
enum stat_index {
	STAT_XLATE_V4 = 0,     /* forward translations to an IPv4 backend */
	STAT_XLATE_V6,         /* forward translations to an IPv6 backend */
	STAT_REVNAT,           /* replies / getpeername shown as the service */
	STAT_SVC_MISS,         /* lookups that matched no service */
	STAT_NO_BACKEND,       /* refused: service has no usable backend (B14) */
	STAT_UNKNOWN_PORT,     /* refused: known VIP, undefined port (B17) */
	STAT_STICKY_REUSE,     /* unconnected UDP kept its live backend */
	STAT_SLOT_MISS,        /* backend set changed under a reader */
	STAT_SK_STORAGE_FULL,  /* socket state could not be created */
	STAT_REVNAT_EVICT,     /* a socket talked to more than 8 services */
	STAT_AFFINITY_KEPT,    /* sent to the client's remembered backend (B30) */
	STAT_UDP_REAPED,       /* connected UDP sockets whose backend left (B21) */
	STAT__COUNT,
};

struct stat_value {
	__u64 count;
};

/* ferry_state: one entry written by ferryd. Tests and ferryctl read the
 * published generation to know what the datapath already reflects. */
struct agent_state {
	__u64 generation;      /* last source state fully applied to the maps */
	__u64 applied_unix_ns; /* when it was applied (CLOCK_REALTIME) */
	__u32 layout_version;  /* FERRY_LAYOUT_VERSION of the writer */
	__u32 pid;             /* ferryd that wrote this */
	__u64 parse_errors;    /* documents or files that failed to parse */
	__u64 objects_skipped; /* objects rejected for invalid fields */
	__u64 map_full_errors; /* map updates refused for lack of space */
	__u64 services;        /* service ports programmed */
	__u64 backends;        /* backends programmed */
};

#endif
