/* kube-proxy's healthCheckNodePort answer (B28): for each LoadBalancer
 * Service with externalTrafficPolicy Local, an HTTP server on its
 * healthCheckNodePort (every address, both families) that tells a cloud
 * load balancer whether this node has local endpoints: any path, 200 when
 * it has (503 when not), and the JSON
 * {"service":{"namespace":..,"name":..},"localEndpoints":N,"serviceProxyHealthy":true}.
 *
 * N counts the distinct addresses of the Service's local ready endpoints
 * over its ports and families: the backends of its external sets
 * ("<id>/external", model.h), 0 for a set of terminating endpoints (B11
 * fallback). Listeners open and close as Services change; a port that
 * cannot be bound is logged, counted, and tried again every few seconds
 * (hcnp_retry), as kube-proxy does: the kube-proxy ferry replaces may hold
 * it until it is gone. */
#ifndef FERRY_FERRYD_HCNP_H
#define FERRY_FERRYD_HCNP_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"
#include "model/store.h"

struct hcnp;

struct hcnp *hcnp_new(void);
void hcnp_free(struct hcnp *h);

/* The whole desired state: what it lacks closes. */
void hcnp_apply(struct hcnp *h, const struct desired_state *st);
/* A change: the service ports of delta->set replace theirs, those of
 * delta->removed go. */
void hcnp_apply_delta(struct hcnp *h, const struct desired_delta *delta);

/* Call from the loop, every second or so: ports that could not be bound
 * are tried again once their wait is over. */
void hcnp_retry(struct hcnp *h);

/* Listeners open only while the per-packet path serves a device: a load
 * balancer must not be told a node is healthy for traffic it does not
 * translate (and ferryd on a host without one binds nothing). */
void hcnp_set_serving(struct hcnp *h, bool serving);

/* Attempts to bind a port that failed, since start. */
uint64_t hcnp_bind_errors(const struct hcnp *h);

#endif
