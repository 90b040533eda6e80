/* Internals of the file source, shared by its files. */
#ifndef FERRY_FILE_PRIV_H
#define FERRY_FILE_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "common/hmap.h"
#include "source/file_source.h"

struct cJSON;

/* A List item of the last read whose bytes were hashed (JSON), and the
 * object it decoded to: an item with the same bytes is not parsed again. */
struct file_rec {
	uint64_t hash;
	uint32_t len;            /* (32 bits: one per object, 16 bytes) */
	uint32_t index : 30;     /* into objs.slices when slice, else objs.services */
	uint32_t slice : 1;
	uint32_t used : 1;       /* taken by the read under way */
};

/* What stat says of a file: while it does not change, neither does the file. */
struct file_stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim, ctim;
};

/* One file: the objects of its last read, with what that read kept from
 * before (file_merge); the cJSON documents are freed as soon as they are
 * decoded. */
struct file_cache {
	char *path;
	struct model_objects objs;
	bool stamp_valid;        /* stamp is that of a content that parsed in full:
				  * same stamp, same content */
	struct file_stamp stamp;
	struct file_rec *recs;   /* in the order of the items */
	size_t n_recs;
};

/* An identity more than one object of the source has (several files, or
 * documents, define it): the last in file order is the one the store gets. */
struct file_dup {
	struct hmap_node node;
	size_t holders;
	bool touched;            /* by the load under way */
	const void *last;        /* the winner found by file_store_resolve */
	struct file_dup *next_touched;
	size_t key_len;
	char key[];              /* file_key, and a NUL */
};

struct file_source {
	char *path;
	bool is_dir;
	char *base;              /* file mode: the file's name in its folder */
	int fd;                  /* inotify */
	struct file_source_stats stats;
	size_t n_cache;
	struct file_cache *cache;
	/* file_source_objects: cache[i].objs copied (not owned), rebuilt by
	 * every load; room for n_cache of them. */
	struct model_objects *sets;
	/* What the loads hold, lent to the store (file_store.c). */
	struct model_store *store;
	struct hmap dups;        /* of struct file_dup */
	struct file_dup *touched;
};

/* file_source.c: a name a folder source reads (*.yaml, *.yml, *.json, not
 * hidden). */
bool file_name_relevant(const char *name);
bool file_name_has_suffix(const char *name, const char *suffix);

/* file_load.c: frees every cache entry and the sets. */
void file_load_clear(struct file_source *src);

/* What file_docs_read hands over, in file order. */
enum file_doc_what {
	FILE_DOC_ITEM,    /* value: element `item` (from 1) of the top-level "items" of
			   * document `number`, handed over before the document */
	FILE_DOC_END,     /* value: document `number` without the items handed over
			   * before it ("items" emptied), or NULL when it does not parse
			   * (then line and why; its items handed over are void) */
	FILE_DOC_RESTART, /* the file is read again another way: forget what this
			   * read handed over */
};

struct file_doc {
	enum file_doc_what what;
	int number;                 /* from 1, in file order */
	size_t item;
	uint64_t hash;              /* FILE_DOC_ITEM of JSON: the item's bytes' */
	size_t len;                 /* their length; 0 = not hashed */
	const struct cJSON *value;
	size_t line;                /* where it does not parse */
	const char *why;            /* why it does not parse */
};

typedef void file_doc_fn(const struct file_doc *doc, void *ctx);

/* file_docs.c: every document of one file, in order, to fn, which must not
 * keep it. The file is read in chunks and the elements of a document's
 * top-level "items" (a v1 List's) are parsed and handed over one by one, so
 * that a read takes the memory of the largest item, not of the file. A
 * *.json file is JSON; any other is JSON when it starts with { or [ and
 * parses as such, else YAML (a flow-style YAML document starts with { too),
 * each document parsed on its own. A JSON file is one document, or when it is
 * an array, one per item. Returns 0, or -1 with errno set when the file cannot
 * be read (then what fn got is to be dropped). */
int file_docs_read(const char *path, file_doc_fn *fn, void *ctx);
/* The same, asking known first for each List item of JSON, by the hash and
 * length of its bytes: when it returns true (the consumer has that item's
 * object from before) the item is not parsed and fn does not get it. */
typedef bool file_known_fn(uint64_t hash, size_t len, void *ctx);
int file_docs_read_known(const char *path, file_doc_fn *fn, file_known_fn *known, void *ctx);
/* The hash of an item's bytes (not keyed: the file is the administrator's),
 * and of more bytes after h. */
uint64_t file_hash(const char *p, size_t len);
uint64_t file_hash_more(uint64_t h, const void *data, size_t len);

/* An object of a read that does not decode. */
struct file_invalid {
	char *key;                  /* its identity (file_key), NULL when it has none */
	size_t key_len;
	char *msg;                  /* "document N[ item I]: reason" */
};

/* A Service or EndpointSlice a read decoded, or carried over from the last
 * read when its item's bytes are the same: then it is a copy of
 * old->services/slices[old_index], owned by old until the read is applied. */
struct file_item {
	uint64_t hash;
	uint32_t len;               /* 0: not hashed (32 bits, as file_rec's) */
	uint32_t old_index;
	uint32_t index;
	char kind;                  /* 'S' or 'E' */
	bool carried;
	bool kept;                  /* kept from before by file_merge (old_index),
				     * with its hash of then */
	bool in_pending;            /* index is into pending, not objs */
};

/* One read of a file. */
struct file_read {
	const char *path;
	/* The file's objects of before, and their items' hashes: items with
	 * the same bytes are carried over, not parsed (NULL: none). */
	const struct model_objects *old;
	struct file_rec *old_recs;
	size_t n_old_recs;
	size_t rec_cursor;          /* where the next item likely is in old_recs */
	uint32_t *rec_index;        /* file_objects.c's, made at the first miss */
	size_t rec_mask;
	size_t n_items, cap_items;
	struct file_item *items;
	size_t pending_items;       /* items[pending_items..] are in pending */
	struct model_objects objs;  /* of the documents that parse, invalid objects left out */
	size_t n_failed;            /* documents that do not parse */
	bool keep_old;              /* a document failed, an invalid object has no
				     * identity or memory ran out: keep every object
				     * of before that this read has no good one of */
	size_t n_invalid, cap_invalid;
	struct file_invalid *invalid;
	/* The document under way: its items decoded, kept apart until its end
	 * says it is a List that parses. */
	struct model_objects pending;
	size_t pending_invalid;     /* invalid[pending_invalid..] are its items' */
	bool pending_keep_old;
};

/* file_objects.c: a file_doc_fn decoding a document (a List into its items)
 * into the file_read ctx; a document that does not parse is logged. The
 * file_read starts zeroed but for its path. */
void file_objects_doc(const struct file_doc *doc, void *ctx);
/* A file_known_fn: carries the object of an item of rd->old_recs with the
 * same bytes into the pending objects. */
bool file_objects_carry(uint64_t hash, size_t len, void *ctx);
/* Notes an object of rd: 0, or -1 when out of memory. */
int file_read_note(struct file_read *rd, const struct file_item *it);
/* The carried copies in rd are old's again (zeroed in rd): the read is not
 * applied. */
void file_objects_uncarry(struct file_read *rd);
/* The arrays grow by doubling; the cache keeps them, so give the slack back. */
void file_objects_trim(struct model_objects *objs);
void file_read_free(struct file_read *rd);

/* file_merge.c: the key of an object's identity, "<kind initial><ns>\0<name>",
 * file_key_len(ns, name) bytes written at buf; returns that length. */
size_t file_key_len(const char *ns, const char *name);
size_t file_key(char *buf, char kind, const char *ns, const char *name);

/* Adds to rd->objs the objects of old that this read keeps, moving them out
 * of old: when rd->keep_old, every object whose identity the read has no good
 * object of; else the last good version of each invalid object. Logs each
 * invalid object and what became of it. Returns -1 when out of memory (then
 * rd->objs holds only what the read decoded). */
int file_merge(struct file_read *rd, struct model_objects *old);

/* What a read changes in its file's objects (file_load.c): a bit per old
 * object (services, then slices) it takes over, carried or kept, the
 * positions in rd->items of the objects it decoded anew, and a bit per
 * object of the read (services, then slices) that is one of them. */
struct file_change {
	uint64_t *taken;
	size_t n_old_svc, n_old;
	size_t *fresh;
	size_t n_fresh;
	uint64_t *fresh_bits;
	bool in_place;       /* every object the read takes over keeps its place
			      * (index): the read is applied in the old arrays */
};

/* Whether the read's object i (services, then slices) was decoded anew. */
static inline bool file_change_is_fresh(const struct file_change *ch, size_t i)
{
	return ch->fresh_bits[i / 64] >> (i % 64) & 1;
}

/* The first old object at or after *at that the read does not take (it is
 * dropped): true with *at set, false when there is none. */
bool file_change_next_dropped(const struct file_change *ch, size_t *at);

/* file_store.c: the objects a load changes, lent to src->store. A read of a
 * file is applied in two steps: file_store_drop while the old objects are
 * still there (those it drops are gone from the store), then, once the
 * read's objects are where they stay (objs), file_store_add: the store
 * follows the objects that moved (none when ch->in_place), and gets the
 * ones the read decoded. */
void file_store_drop(struct file_source *src, const struct model_objects *old,
		     const struct file_change *ch);
void file_store_add(struct file_source *src, const struct model_objects *objs,
		    const struct file_read *rd, const struct file_change *ch);
/* A file's objects gone (the file is). */
void file_store_drop_all(struct file_source *src, const struct model_objects *objs);
/* After every file of a load: identities defined more than once that the
 * load touched go to the store as their last definition says. */
void file_store_resolve(struct file_source *src);
void file_store_free(struct file_source *src);

#endif
