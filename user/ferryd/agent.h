/* ferryd's state, shared by its start-up (main.c) and the loop of its
 * source (file_loop.c, kube_loop.c). */
#ifndef FERRY_FERRYD_AGENT_H
#define FERRY_FERRYD_AGENT_H

#include "datapath/loader.h"
#include "datapath/nodeport.h"
#include "ferryd/observe.h"
#include "ferryd/options.h"
#include "kube/config.h"
#include "source/file_source.h"
#include "source/kube_source.h"
#include "sync/engine.h"

struct agent {
	struct ferryd_options opts;
	struct file_source *file;
	struct kube_config kube_cfg;
	struct kube_source *kube;
	struct datapath dp;
	struct sync_engine *eng;
	struct agent_obs obs;
	bool reap_warned;         /* said once that namespaces were out of reach */
	time_t reap_again;        /* CLOCK_MONOTONIC s of the reaper's second search, 0: none */
	bool reap_dirs_warned;    /* said once that a --netns-dirs folder was */
	/* The per-packet path (packet_path.c). */
	struct nodeport np;
	bool np_usable;           /* the kernel has what it needs */
	bool np_loaded;           /* its programs are loaded (once there is a device) */
	bool np_attached;         /* packet_attach ran */
	time_t np_next_check;     /* CLOCK_MONOTONIC s of packet_check_devices' next look */
	bool node_addrs_set;
	size_t n_node_addrs;
	struct ferry_ip node_addrs[FERRYD_MAX_NODE_IPS];
	struct hcnp *hcnp;        /* healthCheckNodePort listeners (hcnp.c) */
	time_t heal_next;         /* CLOCK_MONOTONIC s of agent_heal's next pass */
};

/* What agent_heal put back (B34), as ferry_datapath_repairs_total's kind. */
enum agent_repair {
	REPAIR_PROGRAM,        /* a program attached again, or put back in its link */
	REPAIR_ENTRY_MISSING,  /* a map entry ferryd wrote, gone: written again */
	REPAIR_ENTRY_ALTERED,  /* one holding another value: rewritten */
	REPAIR_ENTRY_UNKNOWN,  /* one ferryd did not write, in a map it owns: removed */
	REPAIR__COUNT,
};
extern const char *const agent_repair_names[REPAIR__COUNT];

/* main.c */
double agent_ms_since(const struct timespec *t0);
/* Call after an apply of that many writes, once its state is freed. */
void agent_trim_after(int64_t writes);
/* SIGTERM and SIGINT as a descriptor; -1 on error. */
int agent_signals_fd(void);
/* Reads the signal; logs that ferryd exits and leaves the datapath. */
void agent_signalled(int fd);
/* After an apply that took a UDP backend out of a service, and before its
 * generation is published: connected UDP sockets pinned to it are
 * destroyed (B21), so a client that waits for the generation finds them
 * gone. */
void agent_reap_udp(struct agent *ag);
/* Call from the loop on every wake-up: once the programs are attached, the
 * UDP reaper's object, which loads after them, is waited for and its link
 * pinned (the first time; at once after). Returns -1 when it could not be
 * loaded (logged): ferryd must not run on, as when the programs could not. */
int agent_reaper(struct agent *ag);
/* Once the source's first state is read (the maps and programs load
 * meanwhile, datapath_load): wait for the maps, then make the sync engine,
 * start the per-packet path and the metrics and health servers. Returns 0,
 * or -1 when ferryd must not run. */
int agent_datapath(struct agent *ag);
/* Attach the programs (after the first fill of the maps), socket LB and
 * per-packet, then start the UDP reaper's load (agent_reaper takes it). */
int agent_attach(struct agent *ag);
/* Call from the loop on every wake-up (after agent_attach): every
 * --resync-period, and at the next wake-up after a pass that repaired
 * something, what someone else removed or changed is put back (B34). */
void agent_heal(struct agent *ag);
/* Repairs of that kind since start; from any thread (the metrics'). */
uint64_t agent_repairs(enum agent_repair kind);

/* packet_path.c. packet_start writes ferry_config and probes the kernel
 * (after the sync engine exists); packet_attach loads the per-packet
 * programs and puts them on the devices (after the socket LB's attach). Both return -1 only when ferryd must not
 * run (--devices given and the path cannot serve them). */
int packet_start(struct agent *ag);
int packet_attach(struct agent *ag);
/* Call from the loop, every second or so: every few seconds the devices
 * are looked at again, and attached again when they changed (a device
 * created again after a link went with it, an address moved). */
void packet_check_devices(struct agent *ag);
/* The node's addresses (the Node's, or --node-ips) changed: ferry_config,
 * ferry_node_addrs and, without --devices, the devices follow. */
void packet_set_node_addrs(struct agent *ag, const struct ferry_ip *addrs, size_t n);

/* file_loop.c, kube_loop.c: fill the maps, attach, then follow the source
 * until a signal. Return 0, or -1 when the datapath could not be set up. */
int file_loop_run(struct agent *ag);
int kube_loop_run(struct agent *ag);

#endif
