/* The only part of the API client that speaks curl: each watch's request
 * becomes an easy handle on one multi handle, and what curl receives goes
 * to the watch's state machine (kube/watch.h). */
#define _GNU_SOURCE /* asprintf */
#include "kube/client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "common/log.h"

#define CLIENT_MAX_WATCHES 4
/* A request that cannot even be built (out of memory) is tried again. */
#define CLIENT_LOCAL_RETRY_S 1.0
#define CLIENT_CONNECT_TIMEOUT_S 10L
/* A peer that stopped answering (a black hole) is found by TCP within
 * about a minute, with or without data in flight: keepalive probes after
 * 30 s without traffic, 3 of them 10 s apart, and TCP_USER_TIMEOUT for
 * data (and probes) left unacknowledged. curl's defaults take 60 s plus
 * the kernel's 9 probes 75 s apart, about 12 minutes. A stream that stays
 * up but silent is the watch's idle deadline's to find. */
#define CLIENT_KEEPIDLE_S 30L
#define CLIENT_KEEPINTVL_S 10L
#define CLIENT_KEEPCNT 3
#define CLIENT_USER_TIMEOUT_MS 60000U

/* One watch and its request under way, if any. */
struct client_slot {
	struct watch *w;
	CURL *easy;
	struct curl_slist *headers;
};

struct kube_client {
	struct kube_config *cfg;
	CURLM *multi;
	struct client_slot slots[CLIENT_MAX_WATCHES];
	size_t n_slots;
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

/* Forget the slot's request (removed from the multi handle first). */
static void client_release(struct kube_client *cl, struct client_slot *s)
{
	if (s->easy) {
		curl_multi_remove_handle(cl->multi, s->easy);
		curl_easy_cleanup(s->easy);
	}
	curl_slist_free_all(s->headers);
	s->easy = NULL;
	s->headers = NULL;
}

void kube_client_free(struct kube_client *cl)
{
	if (!cl)
		return;
	for (size_t i = 0; i < cl->n_slots; i++)
		client_release(cl, &cl->slots[i]);
	curl_multi_cleanup(cl->multi);
	free(cl);
}

int kube_client_add(struct kube_client *cl, struct watch *w)
{
	if (cl->n_slots == CLIENT_MAX_WATCHES)
		return -1;
	cl->slots[cl->n_slots++] = (struct client_slot){ .w = w };
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

static size_t client_on_header(char *data, size_t size, size_t n, void *ud)
{
	struct client_slot *s = ud;

	watch_header(s->w, data, size * n, kube_now());
	return size * n;
}

/* Returning less than len makes curl end the transfer. */
static size_t client_on_data(char *data, size_t size, size_t n, void *ud)
{
	struct client_slot *s = ud;
	long status = 0;

	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
	return watch_data(s->w, status, data, size * n, kube_now()) == 0 ? size * n : 0;
}

/* The socket options curl has no setting for (KEEPCNT before curl 8.9). A
 * failure is not fatal: the idle deadline still finds a dead stream. */
static int client_sockopt(void *ud, curl_socket_t fd, curlsocktype purpose)
{
	unsigned int timeout = CLIENT_USER_TIMEOUT_MS;
	int cnt = CLIENT_KEEPCNT;

	(void)ud;
	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKOPT_OK;
	if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof(timeout)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)))
		log_debug("kube", "TCP_USER_TIMEOUT/TCP_KEEPCNT: %m");
	return CURL_SOCKOPT_OK;
}

static void client_setopts(struct client_slot *s, const char *url)
{
	CURL *easy = s->easy;

	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, s);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, client_on_data);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, client_on_header);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, s);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, CLIENT_KEEPIDLE_S);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, CLIENT_KEEPINTVL_S);
	curl_easy_setopt(easy, CURLOPT_SOCKOPTFUNCTION, client_sockopt);
	/* After an idle stream: over HTTP/2 the watches share a connection,
	 * which must not carry the next request if it is the dead one. */
	curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, s->w->fresh_connect ? 1L : 0L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, CLIENT_CONNECT_TIMEOUT_S);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT, s->w->timeout);
}

/* Set up the watch's next request and hand it to curl. */
static int client_send(struct kube_client *cl, struct client_slot *s, double now)
{
	struct watch *w = s->w;
	char *path = watch_start(w, now), *url = NULL;
	int rc = -1;

	if (path && (url = kube_config_url(cl->cfg, path)) && (s->easy = curl_easy_init()) &&
	    (s->headers = client_headers(cl, w)) &&
	    kube_config_apply_tls(cl->cfg, s->easy) == 0) {
		client_setopts(s, url);
		rc = curl_multi_add_handle(cl->multi, s->easy) == CURLM_OK ? 0 : -1;
	}
	if (rc < 0) {
		log_error("kube", "%s: cannot set up a request; retrying in %.0f s", w->name,
			  CLIENT_LOCAL_RETRY_S);
		if (s->easy)
			curl_easy_cleanup(s->easy);
		curl_slist_free_all(s->headers);
		s->easy = NULL;
		s->headers = NULL;
		watch_retry_at(w, now + CLIENT_LOCAL_RETRY_S);
	}
	free(path);
	free(url);
	return rc;
}

/* A stream silent past its idle deadline is dropped (its connection with
 * it: it is not reused) and its watch told. */
static void client_drop_idle(struct kube_client *cl, struct client_slot *s, double now)
{
	long status = 0;

	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(s->easy, CURLOPT_FORBID_REUSE, 1L);
	client_release(cl, s);
	watch_done(s->w, status, WATCH_RESULT_IDLE, NULL, now);
}

/* Drops idle streams and sends what is due; returns the ms until the next
 * watch is due or idle deadline passes (or timeout_ms when that is sooner). */
static int client_send_due(struct kube_client *cl, int timeout_ms)
{
	double now = kube_now();

	for (size_t i = 0; i < cl->n_slots; i++) {
		struct client_slot *s = &cl->slots[i];
		struct watch *w = s->w;
		double at, ms;

		if (s->easy && watch_idle(w, now))
			client_drop_idle(cl, s, now);
		if (w->phase == WATCH_WAITING && w->wait_until <= now)
			client_send(cl, s, now);
		at = w->phase == WATCH_WAITING ? w->wait_until : watch_idle_at(w);
		if (!at)
			continue;
		ms = (at - now) * 1e3 + 1;
		if (ms < timeout_ms)
			timeout_ms = ms < 0 ? 0 : (int)ms;
	}
	return timeout_ms;
}

static enum watch_result client_result(CURLcode res)
{
	if (res == CURLE_OK)
		return WATCH_RESULT_OK;
	return res == CURLE_OPERATION_TIMEDOUT ? WATCH_RESULT_TIMEOUT : WATCH_RESULT_TRANSPORT;
}

static void client_take_done(struct kube_client *cl)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(cl->multi, &left))) {
		struct client_slot *s = NULL;
		CURLcode res = msg->data.result;
		long status = 0;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		client_release(cl, s);
		watch_done(s->w, status, client_result(res),
			   res == CURLE_OK ? NULL : curl_easy_strerror(res), kube_now());
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
