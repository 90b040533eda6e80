#include "datapath/features.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include "common/log.h"
#include "datapath/mounts.h"

struct helper_need {
	enum bpf_func_id id;
	const char *name;
	const char *why;
};

static const struct helper_need helpers[] = {
	{ BPF_FUNC_sk_storage_get, "bpf_sk_storage_get",
	  "per-socket reverse translation (replies, getpeername)" },
	{ BPF_FUNC_set_retval, "bpf_set_retval",
	  "ECONNREFUSED for services without endpoints" },
	{ BPF_FUNC_get_prandom_u32, "bpf_get_prandom_u32", "backend selection" },
	{ BPF_FUNC_get_netns_cookie, "bpf_get_netns_cookie",
	  "session affinity (the client is its network namespace)" },
	{ BPF_FUNC_ktime_get_ns, "bpf_ktime_get_ns", "session affinity timeouts" },
};

static int check(int ok, const char *feature, const char *why)
{
	if (!ok)
		log_error("features", "missing kernel feature: %s (needed for %s)", feature, why);
	return ok ? 0 : -1;
}

/* A kfunc is there when the kernel's BTF names it. */
static bool kfunc_present(const char *name)
{
	struct btf *btf = btf__load_vmlinux_btf();
	bool found;

	if (!btf)
		return false;
	found = btf__find_by_name_kind(btf, name, BTF_KIND_FUNC) >= 0;
	btf__free(btf);
	return found;
}

int features_check(void)
{
	char cg[256];
	int bad = 0;

	bad |= check(access("/sys/kernel/btf/vmlinux", R_OK) == 0,
		     "BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)", "CO-RE programs");
	bad |= check(mounts_cgroup2_root(cg, sizeof(cg)) == 0,
		     "a mounted cgroup v2 hierarchy", "socket-level load balancing");
	bad |= check(libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, NULL) == 1,
		     "BPF_PROG_TYPE_CGROUP_SOCK_ADDR", "connect/sendmsg/recvmsg/getpeername hooks");
	bad |= check(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, NULL) == 1,
		     "BPF_MAP_TYPE_SK_STORAGE", "per-socket state");
	bad |= check(kfunc_present("bpf_sock_destroy"), "the bpf_sock_destroy kfunc (Linux 6.5)",
		     "failing connected UDP sockets whose backend was removed");
	bad |= check(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LRU_HASH, NULL) == 1,
		     "BPF_MAP_TYPE_LRU_HASH", "session affinity");
	for (size_t i = 0; i < sizeof(helpers) / sizeof(helpers[0]); i++)
		bad |= check(libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
						     helpers[i].id, NULL) == 1,
			     helpers[i].name, helpers[i].why);
	return bad ? -1 : 0;
}
