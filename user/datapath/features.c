#include "datapath/features.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
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
 * of its 5 MB costs 8-30 ms of CPU, and the start asks several questions. */
struct vmlinux_facts {
	bool known;
	bool btf;           /* it could be read at all */
	bool sock_destroy;  /* the bpf_sock_destroy kfunc */
	bool udp_iter;      /* UDP socket iterators (struct bpf_iter__udp) */
	bool tcx;           /* BPF_TCX_INGRESS and BPF_TCX_EGRESS in enum bpf_attach_type */
	bool cgroup_links;  /* BPF_LINK_TYPE_CGROUP in enum bpf_link_type */
	bool getpeername;   /* BPF_CGROUP_INET4_GETPEERNAME in enum bpf_attach_type */
};

/* Whether the kernel's enum has this value: the build's UAPI headers may be
 * older or newer than the kernel, and a vendor kernel may carry backports. */
static bool enum_has(const struct btf *btf, const char *type, const char *name)
{
	int id = btf__find_by_name_kind(btf, type, BTF_KIND_ENUM);
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
	facts.btf = true;
	/* A kfunc is there when the kernel's BTF names it. */
	facts.sock_destroy = btf__find_by_name_kind(btf, "bpf_sock_destroy", BTF_KIND_FUNC) >= 0;
	facts.udp_iter = btf__find_by_name_kind(btf, "bpf_iter__udp", BTF_KIND_STRUCT) >= 0;
	facts.tcx = enum_has(btf, "bpf_attach_type", "BPF_TCX_INGRESS") &&
		    enum_has(btf, "bpf_attach_type", "BPF_TCX_EGRESS");
	facts.cgroup_links = enum_has(btf, "bpf_link_type", "BPF_LINK_TYPE_CGROUP");
	facts.getpeername = enum_has(btf, "bpf_attach_type", "BPF_CGROUP_INET4_GETPEERNAME");
	btf__free(btf);
	return &facts;
}

/* Without the capabilities every probe below fails as if the kernel lacked
 * the feature: say what is really missing. A socket hook's program asks for
 * what ferry's do (CAP_BPF and CAP_NET_ADMIN); an unprivileged map would
 * not tell where kernel.unprivileged_bpf_disabled is 0. */
static int check_permitted(void)
{
	const struct bpf_insn ret1[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_CGROUP_INET4_CONNECT);
	int fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, NULL, "GPL", ret1, 2, &opts);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno != EPERM)
		return 0; /* the checks below say what is missing */
	log_error("features", "not permitted to use BPF (%s): ferryd needs CAP_BPF, CAP_NET_ADMIN "
		  "and CAP_PERFMON (or root)", strerror(errno));
	return -1;
}

/* The core: without any of these a ClusterIP does not work as it must. */
int features_check(void)
{
	const struct vmlinux_facts *f;
	char cg[256];
	int bad = 0;

	if (check_permitted())
		return -1;
	f = vmlinux_facts();
	bad |= check(access("/sys/kernel/btf/vmlinux", R_OK) == 0 && f->btf,
		     "BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)", "CO-RE programs");
	bad |= check(mounts_cgroup2_root(cg, sizeof(cg)) == 0,
		     "a mounted cgroup v2 hierarchy", "socket-level load balancing");
	bad |= check(libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, NULL) == 1,
		     "BPF_PROG_TYPE_CGROUP_SOCK_ADDR", "connect/sendmsg/recvmsg/getpeername hooks");
	/* Without BTF the two below cannot be told; its own line says so. */
	bad |= check(!f->btf || f->cgroup_links, "cgroup BPF links (Linux 5.7)",
		     "attaching the socket hooks and replacing them in place on restart");
	bad |= check(!f->btf || f->getpeername, "the getpeername hooks (Linux 5.8)",
		     "getpeername() returning the ClusterIP, not the backend");
	bad |= check(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, NULL) == 1,
		     "BPF_MAP_TYPE_SK_STORAGE", "per-socket state");
	bad |= check(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LRU_HASH, NULL) == 1,
		     "BPF_MAP_TYPE_LRU_HASH", "session affinity");
	for (size_t i = 0; i < sizeof(helpers) / sizeof(helpers[0]); i++)
		bad |= check(libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
						     helpers[i].id, NULL) == 1,
			     helpers[i].name, helpers[i].why);
	return bad ? -1 : 0;
}

const char *const feature_names[FEATURE__COUNT] = {
	[FEATURE_UDP_REAPER] = "udp_reaper",
	[FEATURE_TCX] = "tcx",
	[FEATURE_XDP_META] = "xdp_meta",
};

static bool feature_used[FEATURE__COUNT];

bool features_kernel_has(enum feature f, char *why, size_t len)
{
	const struct vmlinux_facts *v;
	const char *missing = NULL;

	/* The BTF is read only for what it answers (ferryctl status asks). */
	switch (f) {
	case FEATURE_UDP_REAPER:
		v = vmlinux_facts();
		if (!v->udp_iter)
			missing = "UDP socket iterators (Linux 5.9)";
		else if (!v->sock_destroy)
			missing = "the bpf_sock_destroy kfunc (Linux 6.5)";
		break;
	case FEATURE_TCX:
		v = vmlinux_facts();
		if (!v->tcx)
			missing = "tcx links (BPF_TCX_INGRESS/EGRESS, Linux 6.6)";
		break;
	case FEATURE_XDP_META:
		if (!features_xdp_meta())
			missing = "bpf_xdp_adjust_meta for XDP programs (Linux 4.15; this build "
				  "refuses it)";
		break;
	case FEATURE__COUNT:
		missing = "an unknown feature";
		break;
	}
	if (missing)
		snprintf(why, len, "the kernel lacks %s", missing);
	return !missing;
}

/* A query of loopback's tcx ingress: a kernel without tcx refuses the
 * attach type (EINVAL); one with it answers, with no program or with
 * some. */
bool features_tcx_query(void)
{
	__u32 count = 0;

	return bpf_prog_query(1, FEATURE_BPF_TCX_INGRESS, 0, NULL, NULL, &count) == 0 ||
	       errno != EINVAL;
}

const char *features_loss(enum feature f)
{
	switch (f) {
	case FEATURE_UDP_REAPER:
		return "connected UDP sockets to a removed backend are not failed (B21): a client "
		       "that keeps one, such as a resolver talking to a CoreDNS pod that went "
		       "away, sends into the void until it times out; use a short DNS timeout";
	case FEATURE_TCX:
		return "the per-packet path's tc programs are clsact filters (handle 0xf377, "
		       "priority 1), not pinned tcx links: a tool that deletes the clsact qdisc "
		       "or those filters takes NodePorts, LB IPs and externalIPs from outside "
		       "away until ferryd attaches again";
	case FEATURE_XDP_META:
		return "XDP cannot mark the packets whose neighbour it leaves tc ingress to "
		       "resolve, so tc ingress parses every packet XDP passes on the external "
		       "devices: more work per packet there; NodePorts, LB IPs and externalIPs "
		       "are served the same";
	case FEATURE__COUNT:
		break;
	}
	return "";
}

void features_set_used(enum feature f, bool used)
{
	feature_used[f] = used;
}

bool features_used(enum feature f)
{
	return feature_used[f];
}

int features_packet_path(char *why, size_t len)
{
	const char *missing = NULL;

	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, NULL) != 1)
		missing = "BPF_PROG_TYPE_XDP";
	else if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SCHED_CLS, NULL) != 1)
		missing = "BPF_PROG_TYPE_SCHED_CLS";
	if (missing)
		snprintf(why, len, "missing kernel feature: %s (needed for the per-packet path)",
			 missing);
	return missing ? -1 : 0;
}

/* A program that calls it, loaded: libbpf 1.1's helper probe reads only
 * "unknown func" from the verifier, and this kernel says "cannot use". */
bool features_xdp_meta(void)
{
	const struct bpf_insn prog[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_2, .imm = -4 },
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_xdp_adjust_meta },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, NULL, "GPL", prog, 4, NULL);

	if (fd < 0)
		return false;
	close(fd);
	return true;
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
