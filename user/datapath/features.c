#include "datapath/features.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
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

/* What the checks need from the kernel's BTF, taken in one parse: a parse
 * of its 5 MB costs 8-30 ms of CPU, and the start asked for three answers. */
struct vmlinux_facts {
	bool known;
	bool sock_destroy;  /* the bpf_sock_destroy kfunc */
	bool tcx;           /* BPF_TCX_INGRESS and BPF_TCX_EGRESS in enum bpf_attach_type */
};

/* Whether the kernel's enum bpf_attach_type has this value: the build's
 * UAPI headers may be older than the kernel (tcx came in 6.6). */
static bool attach_type_present(const struct btf *btf, const char *name)
{
	int id = btf__find_by_name_kind(btf, "bpf_attach_type", BTF_KIND_ENUM);
	const struct btf_type *t = id > 0 ? btf__type_by_id(btf, id) : NULL;

	for (int i = 0; t && i < btf_vlen(t); i++)
		if (strcmp(btf__name_by_offset(btf, btf_enum(t)[i].name_off), name) == 0)
			return true;
	return false;
}

static const struct vmlinux_facts *vmlinux_facts(void)
{
	static struct vmlinux_facts facts;
	struct btf *btf;

	if (facts.known)
		return &facts;
	facts.known = true;
	btf = btf__load_vmlinux_btf();
	if (!btf)
		return &facts;
	/* A kfunc is there when the kernel's BTF names it. */
	facts.sock_destroy = btf__find_by_name_kind(btf, "bpf_sock_destroy", BTF_KIND_FUNC) >= 0;
	facts.tcx = attach_type_present(btf, "BPF_TCX_INGRESS") &&
		    attach_type_present(btf, "BPF_TCX_EGRESS");
	btf__free(btf);
	return &facts;
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
	bad |= check(vmlinux_facts()->sock_destroy, "the bpf_sock_destroy kfunc (Linux 6.5)",
		     "failing connected UDP sockets whose backend was removed");
	bad |= check(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LRU_HASH, NULL) == 1,
		     "BPF_MAP_TYPE_LRU_HASH", "session affinity");
	for (size_t i = 0; i < sizeof(helpers) / sizeof(helpers[0]); i++)
		bad |= check(libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
						     helpers[i].id, NULL) == 1,
			     helpers[i].name, helpers[i].why);
	return bad ? -1 : 0;
}

int features_packet_path(char *why, size_t len)
{
	const char *missing = NULL;

	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, NULL) != 1)
		missing = "BPF_PROG_TYPE_XDP";
	else if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SCHED_CLS, NULL) != 1)
		missing = "BPF_PROG_TYPE_SCHED_CLS";
	else if (!vmlinux_facts()->tcx)
		missing = "tcx links (BPF_TCX_INGRESS/EGRESS, Linux 6.6)";
	if (missing)
		snprintf(why, len, "missing kernel feature: %s (needed for the per-packet path)",
			 missing);
	return missing ? -1 : 0;
}

/* The netdev generic netlink family (Linux 6.3; the build's headers may
 * lack it): a device's xdp-features, whose BASIC bit says the driver runs
 * XDP itself. */
#define NETDEV_CMD_DEV_GET 1
#define NETDEV_A_DEV_IFINDEX 1
#define NETDEV_A_DEV_XDP_FEATURES 3
#define NETDEV_XDP_ACT_BASIC 1

struct genl_req {
	struct nlmsghdr n;
	struct genlmsghdr g;
	char attrs[64];
};

static void genl_put(struct genl_req *r, __u16 type, const void *data, __u16 len)
{
	struct nlattr *a = (struct nlattr *)((char *)r + NLMSG_ALIGN(r->n.nlmsg_len));

	a->nla_type = type;
	a->nla_len = (__u16)(NLA_HDRLEN + len);
	memcpy((char *)a + NLA_HDRLEN, data, len);
	r->n.nlmsg_len = NLMSG_ALIGN(r->n.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

/* Send r, read one answer; the attribute of that type, or NULL. */
static const struct nlattr *genl_ask(int fd, struct genl_req *r, char *buf, size_t len,
				     __u16 type)
{
	const struct nlmsghdr *n = (const struct nlmsghdr *)buf;
	ssize_t got;
	int off;

	if (send(fd, r, r->n.nlmsg_len, 0) < 0)
		return NULL;
	got = recv(fd, buf, len, 0);
	if (got < (ssize_t)NLMSG_HDRLEN || !NLMSG_OK(n, (size_t)got) || n->nlmsg_type == NLMSG_ERROR)
		return NULL;
	for (off = NLMSG_HDRLEN + GENL_HDRLEN; off + NLA_HDRLEN <= (int)n->nlmsg_len;) {
		const struct nlattr *a = (const struct nlattr *)(buf + off);

		if (a->nla_len < NLA_HDRLEN)
			break;
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
		off += NLA_ALIGN(a->nla_len);
	}
	return NULL;
}

static void genl_init(struct genl_req *r, __u16 family, __u8 cmd)
{
	memset(r, 0, sizeof(*r));
	r->n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	r->n.nlmsg_type = family;
	r->n.nlmsg_flags = NLM_F_REQUEST;
	r->g.cmd = cmd;
	r->g.version = 1;
}

int features_xdp_native(int ifindex)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	const struct nlattr *a = NULL;
	struct genl_req r;
	__u64 features;
	char buf[4096];
	__u32 idx = (__u32)ifindex;

	if (fd < 0)
		return -1;
	genl_init(&r, GENL_ID_CTRL, CTRL_CMD_GETFAMILY);
	genl_put(&r, CTRL_ATTR_FAMILY_NAME, "netdev", sizeof("netdev"));
	a = genl_ask(fd, &r, buf, sizeof(buf), CTRL_ATTR_FAMILY_ID);
	if (a) {
		genl_init(&r, *(const __u16 *)((const char *)a + NLA_HDRLEN), NETDEV_CMD_DEV_GET);
		genl_put(&r, NETDEV_A_DEV_IFINDEX, &idx, sizeof(idx));
		a = genl_ask(fd, &r, buf, sizeof(buf), NETDEV_A_DEV_XDP_FEATURES);
	}
	close(fd);
	if (!a)
		return -1;
	memcpy(&features, (const char *)a + NLA_HDRLEN, sizeof(features));
	return (features & NETDEV_XDP_ACT_BASIC) != 0;
}
