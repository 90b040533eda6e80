/* The sync engine: brings the BPF maps from what they hold to the desired
 * state, writing only the entries of service ports that changed (B35).
 *
 * Each service port changes make-before-break: new backends and the slots
 * of a new revision are written first, then one update of the service entry
 * publishes them, and only then are the old slots and departed backends
 * removed. A connect() that starts after sync_apply returns never reaches a
 * backend the new state removed. */
#ifndef FERRY_SYNC_ENGINE_H
#define FERRY_SYNC_ENGINE_H

#include <stdint.h>

#include "common/addr.h"
#include "datapath/loader.h"
#include "ferry/maps.h"
#include "model/model.h"
#include "model/store.h"

struct sync_engine;

struct sync_stats {
	uint64_t generation;      /* applies that changed the maps */
	uint64_t map_full_errors; /* service ports not (re)programmed: no room */
	uint64_t conflicts;       /* frontends claimed by two service ports */
	uint64_t services;        /* service ports programmed */
	uint64_t backends;        /* backends programmed */
	uint64_t slots;           /* ferry_slots entries: backends of sets too
				   * large to ride inline */
	uint64_t repairs;         /* what sync_note_repairs was told (B34) */
	uint64_t pending;         /* service ports desired but not programmed */
	uint64_t svc_entries4;    /* ferry_services4's entries: frontends and
				   * (VIP, 0, 0) markers */
	uint64_t svc_entries6;    /* ferry_services6's */
	uint64_t fast_entries;    /* ferry_fast4's */
	uint64_t fast_left_out;   /* frontends ferry_fast4 found no room for */
};

/* Generations and IDs continue from last, what a previous ferryd published
 * (NULL: none), so a waiter never sees the count go back and socket state
 * never meets its IDs again on other service ports or backends. */
struct sync_engine *sync_new(const struct dp_maps *maps, const struct dp_limits *limits,
			     const struct agent_state *last);
void sync_free(struct sync_engine *eng);

/* Take over maps a previous ferryd wrote (same layout): rebuild the record
 * of what they hold and remove what nothing reaches. Call before the first
 * sync_apply, which then writes only what differs from the source. */
void sync_adopt(struct sync_engine *eng);

/* Apply the whole desired state: what it does not hold is removed. Returns the number of map writes (0 = nothing
 * changed); the generation goes up when it is not 0, and on the first
 * apply. The first apply into fresh maps (nothing attached yet) is written
 * in batches; -1 when that fails, and the maps must not be attached. */
int64_t sync_apply(struct sync_engine *eng, const struct desired_state *desired);

/* Apply a change: the service ports of delta->set are brought to what it
 * says, those of delta->removed go; nothing else is looked at. Service
 * ports that did not fit, in this apply or an earlier one, are tried again
 * when room was freed. Returns the number of map writes. */
int64_t sync_apply_delta(struct sync_engine *eng, const struct desired_delta *delta);

/* This node's addresses (Node status.addresses or --node-ips, in order of
 * preference): ferry_node_addrs is brought to exactly this set, new ones
 * written before departed ones are deleted; the first of each family is
 * the SNAT address (NODE_ADDR_SNAT, and ferry_config's snat_v4/snat_v6).
 * Returns the number of map writes, or -errno (logged) when one failed. */
int sync_set_node_addrs(struct sync_engine *eng, const struct ferry_ip *addrs, size_t n);
/* Write ferry_config: config as given, except snat_v4/snat_v6, which
 * follow the node addresses. Nothing is written when nothing changed.
 * Returns the number of map writes, or -errno (logged). */
int sync_set_config(struct sync_engine *eng, const struct dp_config *config);

/* Write the agent state (generation, counters) to ferry_state. */
/* The algorithm of service ports whose Service does not choose one
 * (--lb-algorithm): enum lb_algorithm. Set before the first apply. */
void sync_set_lb_default(struct sync_engine *eng, uint8_t algorithm);
/* ready(arg) runs before a least-conn set is first written (again after it
 * failed): what makes the datapath take a connection off its count when the
 * socket closes (ferryd: datapath_want_release). 0: done. */
void sync_set_least_conn_hook(struct sync_engine *eng, int (*ready)(void *arg), void *arg);
/* This node's name and zone ("" = none), published in ferry_state with
 * the next generation for ferryctl explain. */
void sync_set_node_identity(struct sync_engine *eng, const char *name, const char *zone);
int sync_publish(struct sync_engine *eng, uint64_t parse_errors, uint64_t objects_skipped,
		 uint64_t fields_ignored);

const struct sync_stats *sync_stats(const struct sync_engine *eng);
/* Whether a UDP backend left a service since the last call (connected
 * sockets may still point at it: dp_reap_udp, B21); clears it. */
bool sync_take_udp_gone(struct sync_engine *eng);

/* B34: what sync_reconcile found changed in the maps and put back. */
struct sync_repairs {
	uint64_t missing;  /* entries written that were gone: written again */
	uint64_t altered;  /* entries holding another value: rewritten */
	uint64_t unknown;  /* entries not written, in a map the engine owns: removed */
};

/* Compare ferry_services4/6 (frontends, VIP markers), ferry_slots,
 * ferry_backends, ferry_revnat (the entries the engine owns; its orphans
 * are left), ferry_source_ranges, ferry_node_addrs, ferry_config and
 * ferry_fast4 with the record of what was written, and bring them back to it
 * (reconcile.c). Call between applies. Each map that was changed gets one
 * log line. Returns the number of entries read, or -1 (logged). */
int64_t sync_reconcile(struct sync_engine *eng, struct sync_repairs *out);
/* n more programs or map entries put back: counted, and shown at once in
 * the published ferry_state (ferryctl status). */
void sync_note_repairs(struct sync_engine *eng, uint64_t n);

#endif
