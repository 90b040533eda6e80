#include "datapath/backend_map.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The largest window of the array mapped at once: 37,449 backends. */
#define BACKEND_WINDOW_BYTES (1u << 20)

/* An array's elements are value_size rounded up to 8: backend_value's. */
_Static_assert(sizeof(struct backend_value) % 8 == 0, "ferry_backends element size");

int backend_map_lookup(int fd, uint32_t id, struct backend_value *out)
{
	if (bpf_map_lookup_elem(fd, &id, out))
		return -errno;
	return out->svc_id ? 0 : -ENOENT;
}

int backend_map_delete(int fd, uint32_t id)
{
	struct backend_value v;
	int err = backend_map_lookup(fd, id, &v);

	if (err)
		return err;
	memset(&v, 0, sizeof(v));
	return bpf_map_update_elem(fd, &id, &v, BPF_ANY) ? -errno : 0;
}

static int backend_map_size(int fd, uint32_t *n)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (info.type != BPF_MAP_TYPE_ARRAY || info.value_size != sizeof(struct backend_value))
		return -EINVAL;
	*n = info.max_entries;
	return 0;
}

/* The live ones among elements *cursor.. of a window of up to max bytes
 * from the page that holds it. */
static int backend_window(int fd, uint32_t n, uint32_t *cursor, uint32_t *ids,
			  struct backend_value *values, uint32_t want, uint32_t *got, size_t max)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), es = sizeof(struct backend_value);
	size_t all = ((size_t)n * es + page - 1) / page * page;
	size_t off = (size_t)*cursor * es / page * page;
	size_t len = all - off < max ? all - off : max;
	uint32_t end = (off + len) / es < n ? (uint32_t)((off + len) / es) : n, id;
	const char *mem = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)off);

	if (mem == MAP_FAILED)
		return -errno;
	for (id = *cursor; id < end && *got < want; id++) {
		const struct backend_value *v = (const void *)(mem + (size_t)id * es - off);

		if (!v->svc_id)
			continue;
		if (ids)
			ids[*got] = id;
		if (values)
			values[*got] = *v;
		(*got)++;
	}
	*cursor = id;
	munmap((void *)mem, len);
	return 0;
}

int backend_map_read(int fd, uint32_t *cursor, uint32_t *ids, struct backend_value *values,
		     uint32_t *count)
{
	/* Mapping a window inserts all of its pages: the first is as large
	 * as *count entries take, each next one twice as large, so a short
	 * read maps little more than it reads and a long one few windows. */
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t window = ((size_t)*count * sizeof(struct backend_value) + page - 1) / page * page;
	uint32_t n = 0, got = 0;
	int err = backend_map_size(fd, &n);

	while (!err && got < *count && *cursor < n) {
		if (window > BACKEND_WINDOW_BYTES)
			window = BACKEND_WINDOW_BYTES;
		err = backend_window(fd, n, cursor, ids, values, *count, &got, window);
		window *= 2;
	}
	*count = got;
	if (err)
		return err;
	return *cursor >= n ? -ENOENT : 0;
}

int backend_map_next_id(int fd, const uint32_t *prev, uint32_t *next)
{
	uint32_t cursor = prev ? *prev + 1 : 0, count = 1;
	int err;

	if (prev && *prev == UINT32_MAX)
		return -ENOENT;
	err = backend_map_read(fd, &cursor, next, NULL, &count);
	if (count == 1)
		return 0;
	return err ? err : -ENOENT;
}

long long backend_map_count(int fd)
{
	uint32_t cursor = 0, count;
	long long n = 0;
	int err;

	do {
		count = UINT32_MAX;
		err = backend_map_read(fd, &cursor, NULL, NULL, &count);
		n += count;
	} while (!err);
	return err == -ENOENT ? n : err;
}
