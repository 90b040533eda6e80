#define _GNU_SOURCE /* asprintf */
#include "kube/client.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"

#define CLIENT_MAX_WATCHES 4
/* A request that cannot even be built (out of memory) is tried again. */
#define CLIENT_LOCAL_RETRY_S 1.0

struct kube_client {
	struct kube_config *cfg;
	CURLM *multi;
	struct watch *watches[CLIENT_MAX_WATCHES];
	size_t n_watches;
};

struct kube_client *kube_client_new(struct kube_config *cfg)
{
	struct kube_client *cl = calloc(1, sizeof(*cl));

	if (!cl)
		return NULL;
	cl->cfg = cfg;
	cl->multi = curl_multi_init();
	if (!cl->multi) {
		free(cl);
		return NULL;
	}
	return cl;
}

void kube_client_free(struct kube_client *cl)
{
	if (!cl)
		return;
	for (size_t i = 0; i < cl->n_watches; i++)
		if (cl->watches[i]->easy)
			curl_multi_remove_handle(cl->multi, cl->watches[i]->easy);
	curl_multi_cleanup(cl->multi);
	free(cl);
}

int kube_client_add(struct kube_client *cl, struct watch *w)
{
	if (cl->n_watches == CLIENT_MAX_WATCHES)
		return -1;
	cl->watches[cl->n_watches++] = w;
	w->phase = WATCH_WAITING;
	w->wait_until = 0;
	return 0;
}

static struct curl_slist *client_headers(struct kube_client *cl, struct watch *w)
{
	const char *token = kube_token_get(cl->cfg, w->reauth);
	struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
	char *auth = NULL;

	w->reauth = false;
	if (h)
		h = curl_slist_append(h, "User-Agent: ferryd");
	if (h && token && asprintf(&auth, "Authorization: Bearer %s", token) >= 0) {
		h = curl_slist_append(h, auth);
		free(auth);
	}
	return h;
}

/* Set up the watch's next request and hand it to curl. */
static int client_send(struct kube_client *cl, struct watch *w, double now)
{
	char *path = NULL, *url = NULL;
	CURL *easy = watch_request(w, now, &path);
	int rc = -1;

	if (easy && (url = kube_config_url(cl->cfg, path)) &&
	    (w->headers = client_headers(cl, w)) &&
	    kube_config_apply_tls(cl->cfg, easy) == 0) {
		curl_easy_setopt(easy, CURLOPT_URL, url);
		curl_easy_setopt(easy, CURLOPT_HTTPHEADER, w->headers);
		rc = curl_multi_add_handle(cl->multi, easy) == CURLM_OK ? 0 : -1;
	}
	if (rc < 0) {
		log_error("kube", "%s: cannot set up a request; retrying in %.0f s", w->name,
			  CLIENT_LOCAL_RETRY_S);
		w->phase = WATCH_WAITING;
		w->wait_until = now + CLIENT_LOCAL_RETRY_S;
	}
	free(path);
	free(url);
	return rc;
}

/* Sends what is due; returns the ms until the next watch is due (or
 * timeout_ms when that is sooner). */
static int client_send_due(struct kube_client *cl, int timeout_ms)
{
	double now = kube_now();

	for (size_t i = 0; i < cl->n_watches; i++) {
		struct watch *w = cl->watches[i];
		double ms;

		if (w->phase == WATCH_WAITING && w->wait_until <= now)
			client_send(cl, w, now);
		if (w->phase != WATCH_WAITING)
			continue;
		ms = (w->wait_until - now) * 1e3 + 1;
		if (ms < timeout_ms)
			timeout_ms = ms < 0 ? 0 : (int)ms;
	}
	return timeout_ms;
}

static void client_take_done(struct kube_client *cl)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(cl->multi, &left))) {
		struct watch *w = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&w);
		curl_multi_remove_handle(cl->multi, msg->easy_handle);
		watch_done(w, msg->data.result, kube_now());
	}
}

int kube_client_run(struct kube_client *cl, struct curl_waitfd *extra, unsigned n_extra,
		    int timeout_ms, int *ready)
{
	int running;
	CURLMcode mc;

	/* A projected token rotates while a watch runs for minutes: read it
	 * again at least once a minute, not only when a request goes out. */
	kube_token_get(cl->cfg, false);
	timeout_ms = client_send_due(cl, timeout_ms);
	mc = curl_multi_poll(cl->multi, extra, n_extra, timeout_ms, ready);
	if (mc == CURLM_OK)
		mc = curl_multi_perform(cl->multi, &running);
	if (mc != CURLM_OK) {
		log_error("kube", "curl: %s", curl_multi_strerror(mc));
		return -1;
	}
	client_take_done(cl);
	return 0;
}
