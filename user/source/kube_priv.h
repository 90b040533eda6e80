/* Internals of the Kubernetes API source, shared by its files. */
#ifndef FERRY_SOURCE_KUBE_PRIV_H
#define FERRY_SOURCE_KUBE_PRIV_H

#include "source/kube_source.h"

struct kube_source {
	struct kube_client *client;
	struct watch watches[KUBE_COLLECTION__COUNT];
	struct model_store *store;
	char *node_name;
	struct kube_node node;
	bool node_known;           /* the Node has been seen at least once */
	double changed_since;
	struct kube_source_stats stats;
};

/* kube_source.c: the store changed; starts the flush clock. */
void kube_source_touched(struct kube_source *ks);

/* kube_node.c: the handler of the Node watch (ctx: the source). */
extern const struct watch_handler kube_node_handler;

#endif
