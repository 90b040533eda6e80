/* Unit tests of the first apply's staged writes (user/sync/stage.c and
 * wr_put/wr_del in writes.c) on real BPF maps: a stage is written out each
 * time it holds its hold of entries (about STAGE_HOLD_BYTES), so staging
 * stays about a MB a map at any N; a
 * key already written is deleted from the map when its put is undone; a
 * failed write keeps what it did not write for the final flush, which
 * reports it. Creating maps needs CAP_BPF (tests run as root). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <cmocka.h>

#include "ferry/maps.h"
#include "sync/state.h"

/* The sink ferryd's stages write through, on a plain map fd. */
static int fd_sink(void *ctx, const void *keys, const void *values, uint32_t *count)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);

	return bpf_map_update_batch(*(int *)ctx, keys, values, count, &opts) ? -errno : 0;
}

static int slots_map(uint32_t max)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, NULL, sizeof(struct slot_key),
				sizeof(struct slot_value), max, &opts);

	assert_true(fd >= 0);
	return fd;
}

static size_t map_count(int fd)
{
	struct slot_key k, next;
	size_t n = 0;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		n++;
	}
	return n;
}

static struct slot_key key_of(uint32_t i)
{
	struct slot_key k = { .svc_id = i / 10 + 1, .rev = 1, .slot = i % 10 };

	return k;
}

static struct slot_value value_of(uint32_t i)
{
	struct slot_value v = { .backend_id = i + 1, .port = 8080 };

	return v;
}

/* An engine in the state of a first apply into fresh maps: staging on,
 * ferry_slots the only staged map. */
static void engine_staging(struct sync_engine *eng, int fd)
{
	memset(eng, 0, sizeof(*eng));
	for (int i = 0; i < DP_MAP__COUNT; i++)
		eng->maps.fd[i] = -1;
	eng->maps.fd[DP_MAP_SLOTS] = fd;
	sync_set_map_io(eng, &map_io_bpf, &eng->maps);
	stage_init(&eng->stage[DP_MAP_SLOTS], sizeof(struct slot_key), sizeof(struct slot_value));
	eng->staging = true;
}

/* A hold of puts is in the map before the apply ends, and the stage is
 * empty again: what is staged never grows with the state. */
static void test_stage_written_when_full(void **state)
{
	struct sync_engine eng;
	struct stage *s = &eng.stage[DP_MAP_SLOTS];
	int fd = slots_map(2 * STAGE_HOLD);
	uint32_t hold;

	(void)state;
	engine_staging(&eng, fd);
	hold = (uint32_t)s->hold;
	/* About STAGE_HOLD_BYTES of ferry_slots' entries. */
	assert_int_equal(hold, STAGE_HOLD_BYTES / (sizeof(struct slot_key) + sizeof(struct slot_value)));
	for (uint32_t i = 0; i < hold - 1; i++) {
		struct slot_key k = key_of(i);
		struct slot_value v = value_of(i);

		assert_int_equal(wr_put(&eng, DP_MAP_SLOTS, &k, &v), 0);
	}
	assert_int_equal(s->n, hold - 1);
	assert_int_equal(map_count(fd), 0);
	{
		struct slot_key k = key_of(hold - 1);
		struct slot_value v = value_of(hold - 1);

		assert_int_equal(wr_put(&eng, DP_MAP_SLOTS, &k, &v), 0);
	}
	assert_int_equal(s->n, 0);
	assert_int_equal(map_count(fd), hold);
	assert_int_equal(eng.writes, hold);
	/* The rest goes with the final flush. */
	for (uint32_t i = hold; i < hold + 100; i++) {
		struct slot_key k = key_of(i);
		struct slot_value v = value_of(i);

		assert_int_equal(wr_put(&eng, DP_MAP_SLOTS, &k, &v), 0);
	}
	assert_int_equal(s->n, 100);
	assert_int_equal(stage_flush(s, fd_sink, &fd), 0);
	assert_int_equal(map_count(fd), hold + 100);
	for (uint32_t i = 0; i < hold + 100; i += 997) {
		struct slot_key k = key_of(i);
		struct slot_value v;

		assert_int_equal(bpf_map_lookup_elem(fd, &k, &v), 0);
		assert_int_equal(v.backend_id, i + 1);
	}
	close(fd);
}

/* A put undone after its stage was written (a service port that fails
 * half-way) leaves no entry behind; one still staged is just dropped. */
static void test_undo_after_write(void **state)
{
	struct sync_engine eng;
	struct stage *s = &eng.stage[DP_MAP_SLOTS];
	struct slot_key first = key_of(0), last;
	struct slot_value v;
	int fd = slots_map(2 * STAGE_HOLD);
	uint32_t hold;

	(void)state;
	engine_staging(&eng, fd);
	hold = (uint32_t)s->hold;
	last = key_of(hold);
	for (uint32_t i = 0; i <= hold; i++) {
		struct slot_key k = key_of(i);

		v = value_of(i);
		assert_int_equal(wr_put(&eng, DP_MAP_SLOTS, &k, &v), 0);
	}
	assert_int_equal(bpf_map_lookup_elem(fd, &first, &v), 0);
	wr_del(&eng, DP_MAP_SLOTS, &first);
	wr_del(&eng, DP_MAP_SLOTS, &last);
	assert_int_equal(s->n, 0);
	assert_int_equal(stage_flush(s, fd_sink, &fd), 0);
	assert_int_not_equal(bpf_map_lookup_elem(fd, &first, &v), 0);
	assert_int_not_equal(bpf_map_lookup_elem(fd, &last, &v), 0);
	assert_int_equal(map_count(fd), hold - 1);
	close(fd);
}

/* A map too small: the write stops at its capacity, keeps the rest staged
 * and holds; the final flush fails and says so, and once there is room
 * (a larger map) everything kept goes in. */
static void test_failed_write_kept(void **state)
{
	struct sync_engine eng;
	struct stage *s = &eng.stage[DP_MAP_SLOTS];
	struct stage probe;
	uint32_t hold;
	size_t written;
	int small, big;

	(void)state;
	stage_init(&probe, sizeof(struct slot_key), sizeof(struct slot_value));
	hold = (uint32_t)probe.hold;
	small = slots_map(hold / 2);
	big = slots_map(2 * STAGE_HOLD);
	engine_staging(&eng, small);
	for (uint32_t i = 0; i < hold + 10; i++) {
		struct slot_key k = key_of(i);
		struct slot_value v = value_of(i);

		assert_int_equal(wr_put(&eng, DP_MAP_SLOTS, &k, &v), 0);
	}
	/* The write is split over two threads, and a non-preallocated hash
	 * checks its element count apart from the insert: each writer can
	 * pass the check once at the last free entry, so the kernel may take
	 * one entry over max_entries. Whatever it took is not staged again. */
	written = map_count(small);
	assert_in_range(written, hold / 2, hold / 2 + 1);
	assert_int_equal(s->n, hold + 10 - written);
	assert_true(s->held);
	assert_false(stage_full(s));
	assert_int_equal(stage_flush(s, fd_sink, &small), -E2BIG);
	assert_int_equal(s->n, hold + 10 - written);
	assert_int_equal(stage_flush(s, fd_sink, &big), 0);
	assert_int_equal(map_count(big), hold + 10 - written);
	{
		struct slot_key k = key_of(hold + 9);
		struct slot_value v;

		assert_int_equal(bpf_map_lookup_elem(big, &k, &v), 0);
		assert_int_equal(v.backend_id, hold + 10);
	}
	close(small);
	close(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stage_written_when_full),
		cmocka_unit_test(test_undo_after_write),
		cmocka_unit_test(test_failed_write_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
