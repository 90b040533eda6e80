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

#define FERRY_LAYOUT_VERSION 12

/* Default capacities; ferryd's flags override them. */
#define FERRY_DEFAULT_MAX_SERVICES 65536
#define FERRY_DEFAULT_MAX_BACKENDS 262144
#define FERRY_DEFAULT_MAX_PER_SERVICE 4096
#define FERRY_DEFAULT_MAX_AFFINITY 65536
#define FERRY_DEFAULT_MAX_CT 262144      /* per-packet flows (conntrack and NAT) */
#define FERRY_DEFAULT_MAX_SOURCE_RANGES 16384
#define FERRY_DEFAULT_MAX_NODE_ADDRS 64
#define FERRY_DEFAULT_MAX_MAGLEV_ENTRIES 2097152 /* 4 MiB: 1,489 sets of up to 14 */

/* How many services one socket can be translated for at once. */
#define FERRY_SOCK_REVNAT_SLOTS 8

/* ferry_services4 and ferry_services6: frontend (virtual address, port,
 * protocol, scope) -> backend set. Every frontend of one service port (its
 * ClusterIP, NodePort, LB IPs and externalIPs) carries the same svc_id and
 * rev: one set of slots, one affinity (B30).
 *
 * A NodePort is one entry whose address is its family's wildcard
 * (::ffff:0.0.0.0 or ::): it matches every node address (ferry_node_addrs)
 * and, from the node itself, loopback (B22).
 *
 * svc_key is the frontend as the rest of ferry names it, and
 * ferry_services6's key. An IPv4 frontend is stored in ferry_services4
 * under svc_key4, its v4-mapped address's last word: the hash of an 8-byte
 * key is one jhash round where svc_key's 20 bytes take two, a twentieth of
 * a connect()'s run time. Only the lookups (bpf/lib/lookup.h) and
 * user/datapath/svc_map.h know of the split. */
struct svc_key {
	__u32 addr[4];   /* virtual IP, network order, IPv4 v4-mapped */
	__u16 port;      /* network order; 0 with proto 0 marks "known VIP" */
	__u8 proto;      /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP; 0 = VIP marker */
	__u8 scope;      /* enum svc_scope */
};

struct svc_key4 {
	__u32 addr;      /* svc_key's addr[3] */
	__u16 port;      /* svc_key's last word, as it is */
	__u8 proto;
	__u8 scope;
};

/* externalTrafficPolicy=Local gives a frontend two backend sets: the
 * Cluster set for traffic that starts on the node (B23), the local set for
 * traffic from outside (B16). */
enum svc_scope {
	SVC_SCOPE_ALL = 0,      /* sockets on the node, and the per-packet path
				 * unless SVC_FLAG_EXT_LOCAL */
	SVC_SCOPE_EXTERNAL = 1, /* per-packet path of an SVC_FLAG_EXT_LOCAL frontend */
};

enum svc_flags {
	SVC_FLAG_VIP_MARKER = 1 << 0, /* entry only says "this address is a VIP" (B17) */
	SVC_FLAG_FALLBACK   = 1 << 1, /* backends are serving+terminating ones (B11) */
	SVC_FLAG_LOCAL      = 1 << 2, /* internalTrafficPolicy Local: this node's only (B15) */
	SVC_FLAG_ZONE_HINTS = 1 << 3, /* backends hinted for this node's zone (B31) */
	SVC_FLAG_EXTERNAL   = 1 << 4, /* NodePort, LB IP or externalIP: the per-packet
				       * path serves it (a ClusterIP it does not) */
	SVC_FLAG_NODE_PORT  = 1 << 5, /* the wildcard NodePort entry */
	SVC_FLAG_SOURCE_RANGES = 1 << 6, /* LB IP: only sources in ferry_source_ranges (B26) */
	SVC_FLAG_EXT_LOCAL  = 1 << 7, /* externalTrafficPolicy Local: external traffic
				       * takes the SVC_SCOPE_EXTERNAL entry (B16, B23) */
	SVC_FLAG_LOAD_BALANCER = 1 << 8, /* an LB ingress IP (else an external,
					  * non-NodePort entry is an externalIP) */
};

/* How a service port picks a new connection's backend: its annotation
 * ferry.io/lb-algorithm, else ferryd's --lb-algorithm. */
enum lb_algorithm {
	LB_RANDOM = 0,
	LB_ROUND_ROBIN = 1, /* ferry_rr[svc_id]: one counter for all CPUs */
	LB_MAGLEV = 2,      /* the flow's hash in ferry_maglev's table */
	LB_LEAST_CONN = 3,  /* the fewest live connections (ferry_conns) */
	LB_ALGORITHM__COUNT,
};

struct svc_value {
	__u32 svc_id;    /* service-port identity; keys its slots */
	__u32 rev;       /* backend-set revision; slots of other revisions are stale */
	__u32 count;     /* backends in this revision; 0 = refuse (B14) */
	__u32 flags;     /* enum svc_flags */
	__u32 affinity_timeout; /* ClientIP session affinity, seconds; 0 = none (B30) */
	__u8 algorithm;  /* enum lb_algorithm */
	__u8 pad[3];     /* always 0 */
	__u32 maglev_size;   /* LB_MAGLEV: entries in this revision's table (a prime) */
	__u32 maglev_offset; /* LB_MAGLEV: its first cell in ferry_maglev */
};


/* ferry_slots: (svc_id, rev, slot) -> backend, for sets too large to ride
 * inline (below). A new backend set is written under a new rev, then
 * published by one update of the svc_value. */
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
	__u16 flags;     /* enum slot_flags */
	__u32 addr[4];   /* network order, IPv4 v4-mapped */
};

enum slot_flags {
	/* ferry_revnat names this service port's ClusterIP for this backend:
	 * a socket that connects to it through the ClusterIP needs no
	 * socket storage, getpeername() finds the service there. */
	SLOT_FLAG_REVNAT_OWNER = 1 << 0,
};

/* A small set rides in the service entry instead, so a connect() to it is
 * one lookup: a set of at most FERRY_SVC_INLINE_V4 IPv4 backends (the key's
 * address is v4-mapped; a set is of its frontends' family) or
 * FERRY_SVC_INLINE_V6 IPv6 ones is always inline, slot i as inline entry i,
 * and has no ferry_slots entries: only larger sets are written there. Most
 * services are small, so most of a state's slot writes (a third of a cold
 * start's) and their kernel memory are gone. ferry_backends still holds
 * every backend: liveness checks (B12, B21, kubernetes#81775) go by ID. */
#define FERRY_SVC_INLINE_V4 16  /* powers of two (bpf/lib/select.h) */
#define FERRY_SVC_INLINE_V6 8

struct svc_inline_v4 {
	__u32 addr;      /* network order */
	__u16 port;      /* network order */
	__u16 flags;     /* enum slot_flags */
};

/* ferry_services4's and ferry_services6's value: the set's description,
 * then its inline copy. An IPv4 backend's ID, which only the general path
 * reads, sits apart from its address and port: at 8 bytes a backend, the
 * description's cache line also holds the first four backends (on Linux
 * 6.18 the value starts a line: the element's header and an 8-byte key fill
 * the one before) and the next line eight more, so a fresh socket's
 * connect() to a set of up to twelve reads at most two lines of the value. */
struct svc_entry {
	struct svc_value v;
	union {
		struct {
			struct svc_inline_v4 v4[FERRY_SVC_INLINE_V4];
			__u32 v4_backend_id[FERRY_SVC_INLINE_V4];
		};
		struct slot_value v6[FERRY_SVC_INLINE_V6];
	} in;
};

/* ferry_fast4: the common connect() in one cache line. An IPv4 ClusterIP
 * port (TCP or UDP, scope all) whose set is picked at random without
 * session affinity, of 1 to FERRY_FAST_BACKENDS IPv4 backends on one port,
 * each the ferry_revnat owner for that ClusterIP, is written here too,
 * beside its ferry_services4 entry (user/datapath/fast_map.c). The table is
 * an array of 64-byte entries, open-addressed from the frontend's home
 * (ferry_fast_home): connect4 reaches an entry without a helper call and
 * reads one line, where a hash lookup reads the bucket, the element's
 * header and its value's lines (bpf/lib/fast.h). Everything else, and a
 * frontend that found no free entry within FERRY_FAST_PROBES of its home,
 * is looked up in ferry_services4: a miss here costs time, never a wrong
 * answer.
 *
 * Entries are rewritten in place, so each carries a count that is odd
 * while ferryd writes it: three writes, each its own syscall (the old
 * content with the count made odd, the new content still odd, the new
 * with the count even again). A reader that reads one even count before
 * and after the fields has read one version of them: on x86, whose loads
 * are not reordered with one another (bpf/lib/fast.h uses the table there
 * only). */
#define FERRY_FAST_BACKENDS 12
#define FERRY_FAST_PROBES 4

struct fast_entry {
	__u32 seq;       /* even: stable; odd: being written */
	__u32 addr;      /* svc_key4's address, network order */
	__u32 port_word; /* svc_key4's last word (port, proto, scope); 0: a free entry */
	__u16 count;     /* backends, 1 .. FERRY_FAST_BACKENDS */
	__u16 port;      /* every backend's port, network order */
	__u32 backend[FERRY_FAST_BACKENDS]; /* IPv4 addresses, network order */
};

/* ferry_backends: backend_id -> where to send. A backend_id belongs to one
 * service port; it is cleared when the backend leaves that service. An
 * array over the backend_id space: an element whose svc_id is 0 (never a
 * service port's) holds no backend. */
struct backend_value {
	__u32 addr[4];   /* network order, IPv4 v4-mapped */
	__u16 port;      /* network order */
	__u8 proto;      /* same as the service's */
	__u8 state;      /* enum backend_state */
	__u32 svc_id;    /* owning service port */
};

/* ferry_maglev (array of cells): the Maglev lookup tables (Eisenbud et al.,
 * NSDI 2016) of every Maglev set, each a run of cells from its svc_value's
 * maglev_offset, built by ferryd from the backends' addresses and ports
 * alone, so every node builds the same one and a flow's hash picks the
 * same backend on each. A new revision's table goes to a new run, written
 * before the entry that publishes it, so a reader's table and set always
 * belong together; the old run is reused only after the apply. One array,
 * not a map per table: replacing a map in a map of maps waits for an RCU
 * grace period (tens of milliseconds) per update. A cell holds four slot
 * indexes (an array element takes 8 bytes whatever its value's size): 2
 * bytes per table entry. */
#define FERRY_MAGLEV_PER_CELL 4

struct maglev_cell {
	__u16 slot[FERRY_MAGLEV_PER_CELL];
};

/* ferry_conns (array, by backend_id): live connections made through ferry
 * to each backend of a least-conn set. Sockets count from connect() to
 * close() (a sock_release program takes them off; ferry_sk_conn says which
 * backend a socket counts for); per-packet TCP flows from their first
 * packet to their first FIN or RST (CT_FLAG_COUNTED). Counts never go
 * below zero, so a count a restart of the maps lost returns to zero as
 * its connections close rather than drifting. */
struct backend_conns {
	__u32 sock;      /* sockets on the node */
	__u32 packet;    /* per-packet flows */
};

/* ferry_sk_conn (socket-local storage): the backend a connected socket
 * counts for in ferry_conns; 0 = none. Only sockets that connected through
 * a least-conn set have it. */
struct sock_conn {
	__u32 backend_id;
	__u32 pad;       /* always 0 */
};

/* ferry_svc_names: svc_id -> the service port's identity, e.g.
 * "shop/web:http/TCP/v4", for ferryctl alone (the datapath never reads
 * it): what a user sees instead of an ID. */
#define FERRY_SVC_NAME_LEN 160

struct svc_name {
	char id[FERRY_SVC_NAME_LEN]; /* NUL-terminated */
};

enum backend_state {
	BACKEND_ACTIVE = 0,
	BACKEND_TERMINATING = 1, /* used only because no ready backend exists */
};

/* ferry_revnat: TCP or UDP backend -> the ClusterIP frontend it stands
 * for, so getpeername() (and a connected UDP socket's recvmsg()) on a
 * socket connected through a service needs no state of its own (no
 * allocation, no rewrite per connect). A backend of several service ports
 * names one of them, its owner (the first to take it, until it lets go);
 * the others' sockets, sockets that reached a service through a NodePort,
 * LB IP or externalIP, and unconnected UDP sockets keep socket storage
 * (ferry_sk_revnat). */
struct revnat_key {
	__u32 addr[4];   /* backend, network order, IPv4 v4-mapped */
	__u16 port;      /* network order */
	__u8 proto;      /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;        /* always 0 */
};

struct revnat_value {
	__u32 svc_addr[4]; /* the owner's ClusterIP */
	__u16 svc_port;    /* network order */
	__u16 pad;         /* always 0 */
	__u32 svc_id;      /* the owner service port */
};

/* ferry_affinity (LRU): the backend a client last used for a service port
 * with session affinity (B30). At connect() no source address exists yet,
 * so a client on the node is its network namespace, as a pod is one IP; a
 * client from outside is its source address (netns_cookie 0). */
struct affinity_key {
	__u64 netns_cookie;
	__u32 svc_id;
	__u32 pad;       /* always 0 */
	__u32 client_addr[4]; /* external clients; zero for sockets on the node */
};

struct affinity_value {
	__u64 last_used_ns;  /* bpf_ktime_get_ns() of the client's last connection */
	__u32 backend_id;
	__u32 pad;
};

/* ferry_sk_revnat (socket-local storage): which service each backend
 * address of this socket stands for, so replies and getpeername() show the
 * virtual address, and unconnected UDP keeps its backend. Every UDP socket
 * that sent unconnected datagrams through a service has it; a connected
 * socket only when ferry_revnat cannot answer for it (see there), or when
 * it connected to a backend's address directly: its entry then names the
 * backend itself (backend_id 0). */
struct sock_revnat_entry {
	__u32 svc_addr[4];
	__u32 backend_addr[4];
	__u16 svc_port;      /* network order */
	__u16 backend_port;  /* network order */
	__u32 svc_id;        /* 0 = empty entry */
	__u32 svc_rev;       /* rev the backend was chosen (or last checked) in */
	__u32 backend_id;
	__u32 used;          /* the socket's clock when last sent through */
};

/* Past FERRY_SOCK_REVNAT_SLOTS services the least recently used entry goes.
 * Two entries may name one backend (two services selecting one pod): a
 * reply from it shows the service last sent through. A connected socket
 * reads only the entry its connect() wrote (peer): the others are its
 * unconnected datagrams', which may name its peer for another service. */
struct sock_revnat {
	struct sock_revnat_entry entry[FERRY_SOCK_REVNAT_SLOTS];
	__u32 clock;         /* counts sends through an entry */
	__u32 peer;          /* 1 + the entry of the last connect(); 0: none,
			      * the peer is ferry_revnat's */
};

/* ferry_peer_mark: one value for every socket. Set (never cleared) once a
 * connected UDP socket kept a peer entry. Until then no socket holds one,
 * so connect() again on a connected UDP socket has no entry to forget and
 * skips the socket-storage lookup, a helper call of about 20 ns. */
struct peer_mark {
	__u32 seen;          /* 1: some UDP socket may hold a peer entry */
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
	STAT_NP_XLATE,         /* per-packet: new flows translated to a backend */
	STAT_NP_REVNAT,        /* per-packet: replies translated back */
	STAT_NP_NO_LOCAL,      /* per-packet: dropped, externalTrafficPolicy Local
				* without a local endpoint (B16) */
	STAT_NP_SOURCE_DENIED, /* per-packet: dropped by loadBalancerSourceRanges (B26) */
	STAT_NP_ICMP_SENT,     /* per-packet: port unreachable sent, no backend (B14) */
	STAT_NP_ICMP_LIMITED,  /* per-packet: an ICMP error (port unreachable, too big)
				* suppressed by the rate limit or RFC 1122 */
	STAT_NP_BACKEND_GONE,  /* per-packet: a flow's backend left; moved to a live one */
	STAT_NP_SNAT_EXHAUSTED,/* per-packet: no free SNAT port; dropped */
	STAT_NP_FIB_PASS,      /* per-packet: no route or neighbour yet, no hop left, or too
				* long for the route (IPv4 without DF): the stack forwards */
	STAT_NP_PASSED,        /* per-packet: fragments and others not translated */
	STAT_NP_SCTP_TOO_LONG, /* per-packet: SCTP packet too long to checksum; dropped */
	STAT_NP_TOO_BIG,       /* per-packet: fragmentation needed / packet too big sent:
				* too long for the route, may not be fragmented */
	STAT_REVNAT_SHARED,    /* of STAT_REVNAT: a connected socket without socket
				* state answered from ferry_revnat */
	STAT_REVNAT_UNSHARED,  /* an unconnected send took another backend: the
				* socket reached its pick through another service */
	STAT_LB_STATE_MISSING, /* a round-robin counter or Maglev table was missing:
				* picked at random */
	STAT__COUNT,
};

struct stat_value {
	__u64 count;
};

/* ferry_node_addrs: this node's addresses (Node status.addresses, or
 * --node-ips). A NodePort answers on each; the value says which family's
 * SNAT address it is. */
struct node_addr_key {
	__u32 addr[4];   /* network order, IPv4 v4-mapped */
};

struct node_addr_value {
	__u32 flags;     /* NODE_ADDR_SNAT: the source for SNATed flows of its family */
};

#define NODE_ADDR_SNAT 1

/* ferry_source_ranges (LPM trie): loadBalancerSourceRanges of a service
 * port (B26). prefixlen counts the svc_id's 32 bits plus the address's
 * bits in v4-mapped form (an IPv4 /24 is 32 + 96 + 24). */
struct source_range_key {
	__u32 prefixlen;
	__u32 svc_id;    /* network order, so it is a prefix of the key */
	__u32 addr[4];
};

/* ferry_ct (LRU): per-packet flows. Each flow has two entries: the
 * original direction (client -> frontend) and the reply direction as it
 * arrives (backend -> node SNAT address, or backend -> client when not
 * SNATed). Each says how to rewrite a packet that matches it. */
struct ct_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;     /* network order; ICMP: 0 */
	__u16 dport;
	__u8 proto;
	__u8 pad[3];     /* always 0 */
};

enum ct_flags {
	CT_FLAG_REPLY = 1 << 0, /* reply direction entry */
	CT_FLAG_SNAT  = 1 << 1, /* the source is rewritten too (externalTrafficPolicy Cluster) */
	CT_FLAG_CLOSED = 1 << 2, /* reply entry of a SNATed TCP flow that sent FIN or RST
				  * (at last_seen_ns): its SNAT port is reusable later */
	CT_FLAG_COUNTED = 1 << 3, /* original entry of a least-conn TCP flow still in
				   * its backend's ferry_conns count */
};

struct ct_value {
	__u32 new_saddr[4];  /* what the packet's addresses and ports become */
	__u32 new_daddr[4];
	__u16 new_sport;     /* network order */
	__u16 new_dport;
	__u32 flags;         /* enum ct_flags */
	__u32 svc_id;        /* original direction: the service port, to re-pick */
	__u32 backend_id;    /* original direction: checked alive on every packet */
	__u64 last_seen_ns;
};

/* ferry_config: one entry written by ferryd, read by the datapath. */
struct dp_config {
	__u32 snat_v4[4];        /* node address SNATed flows leave with; zero = none */
	__u32 snat_v6[4];
	__u16 node_port_min;     /* --node-port-range, host order */
	__u16 node_port_max;
	__u16 snat_port_min;     /* ports SNAT allocates from, host order */
	__u16 snat_port_max;
	__u32 icmp_per_sec;      /* port-unreachable replies per second and CPU */
	__u32 pad;               /* always 0 */
	__u64 node_netns_cookie; /* ferryd's network namespace, the node's: only
				  * its sockets reach NodePorts on loopback (B22) */
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
	__u64 fields_ignored;  /* bad fields of served objects, left out (a
				* NodePort out of range, an unparsable source range) */
	__u64 services;        /* service ports programmed */
	__u64 backends;        /* backends programmed */
	__u32 next_svc_id;     /* where the writer's ID counters stood: the next */
	__u32 next_backend_id; /* ferryd, after a restart or a migration to new
				* maps, goes on from there, so an ID that socket
				* state still names is not handed out again */
	__u64 datapath_repairs; /* programs and map entries someone else removed
				 * or changed, put back (B34) */
	__u64 annotations_ignored; /* ferry.io/ annotations with a value ferryd
				    * does not know: the Service keeps the default */
	char node_name[256];   /* this node, as ferryd was told (NUL-terminated) */
	char node_zone[64];    /* its topology.kubernetes.io/zone label; "" = none */
	__u64 backends_capacity; /* the most backends ferry_backends holds at once
				  * (--max-backends + --max-backends-per-service);
				  * the array spans the backend_id space */
	__u64 fast_left_out;     /* ClusterIP ports ferry_fast4 had no free entry
				  * for near their home (looked up in
				  * ferry_services4 instead) */
};

#endif
