# ferry: BPF objects (CO-RE, vmlinux.h from the running kernel), their
# skeletons, libferry (the code ferryd and ferryctl share), the two binaries
# and the unit tests.

BUILD   ?= build
CLANG   ?= clang
BPFTOOL ?= bpftool
CC      ?= gcc
ARCH    := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

BPF_CFLAGS := -target bpf -mcpu=v3 -O2 -g -Wall -Werror -D__TARGET_ARCH_$(ARCH) \
	-I$(BUILD) -Iinclude -Ibpf
CFLAGS  ?= -O2 -g
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo unknown)
CFLAGS  += -Wall -Wextra -Werror -std=gnu11 -Iinclude -Iuser -I$(BUILD) -DFERRY_VERSION='"$(VERSION)"' \
	$(shell pkg-config --cflags libcjson yaml-0.1 2>/dev/null)
LDLIBS  := -lbpf -lelf -lz -lcjson -lyaml -lcurl -lmicrohttpd -lm -pthread

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS     := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
LIB_SRCS  := $(wildcard user/common/*.c user/model/*.c user/source/*.c \
	user/datapath/*.c user/sync/*.c user/kube/*.c user/metrics/*.c)
LIB_OBJS  := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
LIB       := $(BUILD)/libferry.a
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
HELPER_SRCS := $(filter-out %.bpf.c,$(wildcard tests/helpers/*.c))
HELPER_BINS := $(patsubst tests/helpers/%.c,$(BUILD)/tests/%,$(HELPER_SRCS))
# The sanitizer builds: the library compiled again into its own folder, for
# the unit tests under ASan+UBSan ($(BUILD)/asan) and for libFuzzer with
# clang ($(BUILD)/fuzz: only the modules that read untrusted bytes).
# float-cast-overflow is named apart: gcc's "undefined" leaves it out, and a
# double from JSON converted out of range is the bug class it catches.
SAN_FLAGS  := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_LIB_OBJS := $(patsubst %.c,$(BUILD)/asan/%.o,$(LIB_SRCS))
ASAN_LIB   := $(BUILD)/asan/libferry.a
ASAN_UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/asan/tests/%,$(UNIT_SRCS))
FUZZ_CC    ?= clang
FUZZ_CFLAGS = $(CFLAGS) $(SAN_FLAGS) -fsanitize=fuzzer-no-link
FUZZ_LIB_OBJS := $(patsubst %.c,$(BUILD)/fuzz/%.o,\
	$(wildcard user/common/*.c user/model/*.c user/source/*.c user/kube/*.c))
FUZZ_LIB   := $(BUILD)/fuzz/libferry.a
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SEEDS := $(BUILD)/fuzz/seeds/.done
FUZZ_SECONDS ?= 60
# Parallel jobs of the builds that test and demo start (one per CPU).
JOBS ?= $(shell nproc)
FIXTURES   ?= ../shared/fixtures
BENCH_BPF   := $(patsubst tests/bench/%.bpf.c,$(BUILD)/bench/%.bpf.o,$(wildcard tests/bench/*.bpf.c))
BENCH_BINS  := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,\
	$(filter-out %.bpf.c,$(wildcard tests/bench/*.c)))

.PHONY: all deps test fuzz fuzz-tools demo bench bench-quick bench-tools clean
.SECONDARY:
all: $(BUILD)/ferryd $(BUILD)/ferryctl

deps:
	@scripts/install-deps.sh --check >/dev/null 2>&1 || scripts/install-deps.sh

$(BUILD)/vmlinux.h:
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BUILD)/vmlinux.h $(wildcard bpf/lib/*.h include/ferry/*.h)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name ferry_$* > $@.tmp && mv $@.tmp $@

$(BUILD)/user/%.o: user/%.c $(SKELS) $(wildcard include/ferry/*.h user/*/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	ar rcs $@ $^

$(BUILD)/ferryd: $(patsubst %.c,$(BUILD)/%.o,$(wildcard user/ferryd/*.c)) $(LIB)
	$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/ferryctl: $(patsubst %.c,$(BUILD)/%.o,$(wildcard user/ferryctl/*.c)) $(LIB)
	$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< $(LIB) $(LDLIBS) -lcmocka -o $@

$(BUILD)/tests/%: tests/helpers/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< -o $@

# pkt_test drives the per-packet objects through their skeletons, set up as
# ferryd does (the library's kernel probes).
$(BUILD)/tests/pkt_test: tests/helpers/pkt_test.c $(BUILD)/nodeport_xdp.skel.h \
	$(BUILD)/nodeport_tc.skel.h $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< $(LIB) $(LDLIBS) -o $@

# bpf/lib/icmp.h and crc32c.h under BPF_PROG_TEST_RUN (tests/kernel/pktlib.sh):
# a test object of their own and its driver.
$(BUILD)/tests/pktlib_test.bpf.o: tests/helpers/pktlib_test.bpf.c $(BUILD)/vmlinux.h \
		$(wildcard bpf/lib/*.h include/ferry/*.h)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/tests/pktlib_test.skel.h: $(BUILD)/tests/pktlib_test.bpf.o
	$(BPFTOOL) gen skeleton $< name pktlib_test > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/pktlib_test: tests/helpers/pktlib_test.c $(BUILD)/tests/pktlib_test.skel.h
	$(CC) $(CFLAGS) -I$(BUILD)/tests $< -lbpf -lelf -lz -o $@

$(BUILD)/asan/user/%.o: user/%.c $(SKELS) $(wildcard include/ferry/*.h user/*/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -c $< -o $@

$(ASAN_LIB): $(ASAN_LIB_OBJS)
	ar rcs $@ $^

$(BUILD)/asan/tests/test_%: tests/unit/test_%.c $(ASAN_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN_FLAGS) $< $(ASAN_LIB) $(LDLIBS) -lcmocka -o $@

$(BUILD)/fuzz/user/%.o: user/%.c $(wildcard include/ferry/*.h user/*/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	ar rcs $@ $^

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_LIB) $(LDLIBS) -o $@

# The seed corpus, from the fixtures and the tests' YAML.
$(FUZZ_SEEDS): tests/fuzz/seeds.py $(wildcard tests/kernel/*.sh) $(wildcard $(FIXTURES)/*)
	@mkdir -p $(@D)
	python3 tests/fuzz/seeds.py --fixtures $(FIXTURES) $(@D)
	touch $@

fuzz-tools: $(FUZZ_BINS) $(FUZZ_SEEDS)

# Each target for FUZZ_SECONDS (tests/fuzz/fuzz.sh); new inputs stay in
# $(BUILD)/fuzz/corpus for the next run.
fuzz: deps
	$(MAKE) fuzz-tools
	BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_CORPUS=$(abspath $(BUILD))/fuzz/corpus \
		tests/fuzz/fuzz.sh

$(BUILD)/bench/%.bpf.o: tests/bench/%.bpf.c $(BUILD)/vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/bench/%: tests/bench/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< -lm -o $@

# The one bench tool built on the library: the file source's parse.
$(BUILD)/bench/file_parse: tests/bench/file_parse.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< $(LIB) $(LDLIBS) -o $@

# ns per packet through the XDP program (BPF_PROG_TEST_RUN): on libbpf, and
# the library's kernel probes.
$(BUILD)/bench/xdp_ns: tests/bench/xdp_ns.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< $(LIB) $(LDLIBS) -o $@

bench-tools: all $(BENCH_BINS) $(BENCH_BPF)

bench: deps
	$(MAKE) bench-tools
	tests/bench/run.sh

bench-quick: deps
	$(MAKE) bench-tools
	tests/bench/run.sh --quick

test: deps
	$(MAKE) -j$(JOBS) all $(UNIT_BINS) $(HELPER_BINS) $(ASAN_UNIT_BINS) fuzz-tools
	tests/run.sh

demo: deps
	$(MAKE) -j$(JOBS) all
	scripts/demo.sh

# The kernel matrix (issue 15, scripts/kernels/matrix.sh): the kernel groups
# on this machine's kernel and on Debian's under QEMU, into docs/kernels.md.
# KERNELS chooses (host, 6.1, 6.12); TEST_GROUPS the groups; VM_SPLIT the
# guests per kernel (default 2); VM_JOBS the guests at once (default: as
# many as memory allows; matrix.sh says why).
KERNELS ?= host 6.1 6.12
.PHONY: test-kernels
test-kernels:
	@scripts/install-deps.sh --kernels --check >/dev/null 2>&1 || scripts/install-deps.sh --kernels
	$(MAKE) all $(HELPER_BINS)
	BUILD=$(BUILD) KERNELS="$(KERNELS)" scripts/kernels/matrix.sh

clean:
	rm -rf $(BUILD)
