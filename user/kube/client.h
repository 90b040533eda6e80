/* The connection side of the API client: the watches share one curl multi
 * handle (and so its connections), and one loop drives them together with
 * the caller's own file descriptors. */
#ifndef FERRY_KUBE_CLIENT_H
#define FERRY_KUBE_CLIENT_H

#include <curl/curl.h>

#include "kube/config.h"
#include "kube/watch.h"

struct kube_client;

/* cfg and the watches added are borrowed; they must outlive the client. */
struct kube_client *kube_client_new(struct kube_config *cfg);
void kube_client_free(struct kube_client *cl);
/* The watch starts with the next kube_client_run. Returns -1 when full. */
int kube_client_add(struct kube_client *cl, struct watch *w);

/* Send the requests that are due, wait up to timeout_ms for the API
 * connections or the extra descriptors, then take what arrived (the
 * watches' handlers run here). extra[i].revents says which descriptors are
 * ready; *ready counts the descriptors, API ones included, that were.
 * Returns 0, or -1 when curl fails as a whole. */
int kube_client_run(struct kube_client *cl, struct curl_waitfd *extra, unsigned n_extra,
		    int timeout_ms, int *ready);

#endif
