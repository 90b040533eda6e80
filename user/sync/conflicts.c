/* Frontends left out of a service port because another one holds them:
 * each (frontend, service port) is reported, a warning and one count in
 * stats.conflicts, once while it lasts, not at every apply. A full apply
 * forgets what it no longer meets; a delta forgets what it names, so a
 * change to the object reports it again. */
#include <stdlib.h>
#include <string.h>

#include "sync/state.h"

struct conflict {
	struct hmap_node node;
	bool seen;                /* met in this full apply */
	size_t len;
	char key[];               /* struct svc_key, then the service port's id */
};

bool conflict_note(struct sync_engine *eng, const struct svc_key *key, const char *id)
{
	size_t id_len = strlen(id), len = sizeof(*key) + id_len;
	struct conflict *c = malloc(sizeof(*c) + len);
	struct hmap_node *n;

	if (!c)
		return true;
	memcpy(c->key, key, sizeof(*key));
	memcpy(c->key + sizeof(*key), id, id_len);
	c->len = len;
	c->seen = true;
	n = hmap_get(&eng->conflicts, c->key, len);
	if (n) {
		hmap_entry(n, struct conflict, node)->seen = true;
		free(c);
		return false;
	}
	hmap_put(&eng->conflicts, &c->node, c->key, len);
	return true;
}

/* Drop the entries for which keep() is false. */
static void conflict_filter(struct sync_engine *eng, bool (*keep)(struct conflict *, const char *),
			    const char *id)
{
	struct hmap_node *n, *next;

	for (n = eng->conflicts.buckets ? hmap_first(&eng->conflicts) : NULL; n; n = next) {
		struct conflict *c = hmap_entry(n, struct conflict, node);

		next = hmap_next(&eng->conflicts, n);
		if (keep(c, id))
			continue;
		hmap_remove(&eng->conflicts, n);
		free(c);
	}
}

static bool still_seen(struct conflict *c, const char *id)
{
	bool seen = c->seen;

	(void)id;
	c->seen = false;
	return seen;
}

static bool other_port(struct conflict *c, const char *id)
{
	size_t id_len = c->len - sizeof(struct svc_key);

	return id_len != strlen(id) || memcmp(c->key + sizeof(struct svc_key), id, id_len);
}

static bool none(struct conflict *c, const char *id)
{
	(void)c;
	(void)id;
	return false;
}

void conflict_sweep(struct sync_engine *eng)
{
	conflict_filter(eng, still_seen, NULL);
}

void conflict_forget(struct sync_engine *eng, const char *id)
{
	if (eng->conflicts.count)
		conflict_filter(eng, other_port, id);
}

void conflict_clear(struct sync_engine *eng)
{
	conflict_filter(eng, none, NULL);
}
