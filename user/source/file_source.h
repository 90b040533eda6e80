/* The file source: Kubernetes objects from a YAML or JSON file, or a folder
 * of them, as `kubectl get services,endpointslices -A -o yaml|json` prints
 * them (v1 List), as single objects, or as multi-document YAML. The path is
 * watched with inotify, including editors that replace a file by rename. */
#ifndef FERRY_FILE_SOURCE_H
#define FERRY_FILE_SOURCE_H

#include <stdint.h>

#include "model/model.h"
#include "model/store.h"

struct file_source;

struct file_source_stats {
	uint64_t parse_errors;    /* documents that failed to parse, files that could
				   * not be read (at each load that read them) */
	uint64_t objects_skipped; /* objects that model_decode found invalid */
	uint64_t store_ns;        /* the last load's time handing its changes to
				   * the store (file_source_store) */
};

/* Opens the path (file or folder) and starts watching it. NULL on error,
 * logged. */
struct file_source *file_source_open(const char *path);
void file_source_close(struct file_source *src);

/* The inotify descriptor to poll for readability. */
int file_source_fd(const struct file_source *src);

/* Drain pending inotify events. Returns 1 if a watched file changed, 0 if
 * not, -1 on error. */
int file_source_drain(struct file_source *src);

/* Refresh the objects of every file: a file is read, parsed and decoded
 * when it is new or changed (by stat: size, inode, mtime, ctime) since its
 * last read in full, and the cJSON documents are freed at once; only the
 * decoded objects are kept. An item (or document) whose bytes (JSON List
 * items) or parsed tree (the others) are those of an item of the last read
 * keeps that item's object: it is not decoded again, and the store
 * (file_source_store) sees no change of it. Each document of a multi-document YAML file
 * parses on its own: one that fails is reported (file, document number,
 * line, reason) and counted, the others apply, and while any document of the
 * file fails nothing that came from that file is deleted (the file is read
 * again at every load until it parses). An object with invalid fields is
 * reported and counted, and its last good version from that file, if any,
 * stays. Objects are matched by kind, namespace and name; the items of a List
 * count one by one. A file gone from a folder takes its objects with it.
 * Returns 0, or -1 when the path cannot be read at all (then every file keeps
 * the objects it had). */
int file_source_load(struct file_source *src);

/* The objects of the last load, one set per file (a single file: one set; a
 * folder: its files in name order), to give model_compute as they are.
 * Owned by the source; valid until the next file_source_load or
 * file_source_close. NULL and *n_sets = 0 before the first load. */
const struct model_objects *file_source_objects(const struct file_source *src, size_t *n_sets);

/* The Services and EndpointSlices of the loads in a model store (the API
 * source's): each load puts there only the objects it changed and deletes
 * those gone, so a flush recomputes only their Services. An identity that
 * more than one file or document defines is the last one's (file order,
 * with a warning), as in model_compute. The store's objects are the
 * source's (lent): flush it after every load. It caps backends per service
 * at nothing until store_set_max_per_service. */
struct model_store *file_source_store(struct file_source *src);

const struct file_source_stats *file_source_stats(const struct file_source *src);

#endif
