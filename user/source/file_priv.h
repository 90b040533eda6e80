/* Internals of the file source, shared by its files. */
#ifndef FERRY_FILE_PRIV_H
#define FERRY_FILE_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <time.h>

#include "source/file_source.h"

struct cJSON;

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

/* An object of a read that does not decode. */
struct file_invalid {
	char *key;                  /* its identity (file_key), NULL when it has none */
	size_t key_len;
	char *msg;                  /* "document N[ item I]: reason" */
};

/* One read of a file. */
struct file_read {
	const char *path;
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

#endif
