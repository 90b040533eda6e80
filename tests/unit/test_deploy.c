/* Offline checks of deploy/ (issue 6): the manifests parse with ferry's own
 * YAML reader (yaml_doc_parse, as kubectl would read them) and carry what an
 * install needs: the DaemonSet's host network, node name, API server, cgroup
 * and bpffs mounts with their propagation, the runtime's network namespace
 * folder (read-only, HostToContainer, named by --netns-dirs: B21 for pods
 * without the host's PIDs), a privileged init container and
 * an agent with exactly the capabilities it needs, probes, resources,
 * tolerations and rolling update; RBAC rules that are exactly the three
 * read-only ones; a cleanup that runs `ferryd --cleanup` on every node; and
 * a two-stage Dockerfile on Debian bookworm. Each check says which field is
 * wrong. The "catches" cases break a copy on purpose, so a check that stopped
 * checking would show.
 *
 * deploy/ is found in the working directory (tests/run.sh runs from the
 * repository's top level) or at $FERRY_DEPLOY_DIR. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "source/yaml_doc.h"

#define NAMESPACE "kube-system"
#define HEALTH_PORT 10256

/* --- reading ------------------------------------------------------------- */

static const char *deploy_dir(void)
{
	const char *env = getenv("FERRY_DEPLOY_DIR");

	return env && *env ? env : "deploy";
}

/* The text of deploy/NAME, or NULL with err set. */
static char *read_deploy(const char *name, size_t *len, char *err, size_t elen)
{
	char *path, *buf = NULL;
	size_t cap = 0, n = 0, got;
	FILE *f;

	if (asprintf(&path, "%s/%s", deploy_dir(), name) < 0)
		return NULL;
	f = fopen(path, "r");
	if (!f) {
		snprintf(err, elen, "cannot read %s: %s (run from the repository's top level, "
			 "or set FERRY_DEPLOY_DIR)", path, strerror(errno));
		free(path);
		return NULL;
	}
	do {
		if (n + 4096 + 1 > cap) {
			char *more;

			cap = (n + 4096 + 1) * 2;
			more = realloc(buf, cap);
			if (!more) {
				free(buf);
				fclose(f);
				free(path);
				snprintf(err, elen, "out of memory");
				return NULL;
			}
			buf = more;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
	} while (got > 0);
	fclose(f);
	free(path);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static char *slurp(const char *name, size_t *len)
{
	char err[512];
	char *text = read_deploy(name, len, err, sizeof(err));

	if (!text)
		fail_msg("%s", err);
	return text;
}

/* The documents of a YAML text starting at line first_line of file name,
 * or NULL with err filled: "NAME: document N, line L: reason". */
static cJSON *parse_text(const char *name, const char *text, size_t len, size_t first_line,
			 char *err, size_t elen)
{
	struct yaml_doc_error e = { 0 };
	cJSON *docs = yaml_doc_parse(text, len, first_line, &e);

	if (!docs)
		snprintf(err, elen, "%s: document %d, line %zu: %s", name, e.doc, e.line, e.msg);
	return docs;
}

/* The documents of deploy/NAME, or NULL with err set. */
static cJSON *load_manifest(const char *name, char *err, size_t elen)
{
	size_t len;
	char *text = read_deploy(name, &len, err, elen);
	cJSON *docs = text ? parse_text(name, text, len, 1, err, elen) : NULL;

	free(text);
	return docs;
}

/* --- checks: each returns false and says why ----------------------------- */

static char why[1024];

static bool bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool bad(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return false;
}

#define CHECK(expr)                                                   \
	do {                                                          \
		why[0] = '\0';                                        \
		if (!(expr))                                          \
			fail_msg("%s", why[0] ? why : #expr);         \
	} while (0)

/* A check that must fail on a broken copy, naming the field. */
#define CHECK_CATCHES(expr, field)                                                  \
	do {                                                                        \
		why[0] = '\0';                                                      \
		if (expr)                                                           \
			fail_msg("%s passed on a broken copy (%s)", #expr, field);  \
		if (!strstr(why, field))                                            \
			fail_msg("%s: the reason \"%s\" does not name %s", #expr,   \
				 why, field);                                       \
	} while (0)

/* o's member at a dotted path ("spec.template.spec"), or NULL. Keys with a
 * dot (label names) are looked up with cJSON_GetObjectItemCaseSensitive. */
static cJSON *at(const cJSON *o, const char *path)
{
	char key[128];
	const char *p = path;

	while (o && *p) {
		size_t n = strcspn(p, ".");

		snprintf(key, sizeof(key), "%.*s", (int)n, p);
		o = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
		p += n;
		if (*p == '.')
			p++;
	}
	return (cJSON *)o;
}

static const char *str_at(const cJSON *o, const char *path)
{
	const cJSON *v = at(o, path);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool str_is(const char *s, const char *want)
{
	return s && strcmp(s, want) == 0;
}

/* The item of an array of objects whose "name" is name. */
static cJSON *named(const cJSON *arr, const char *name)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, arr)
		if (str_is(str_at(it, "name"), name))
			return (cJSON *)it;
	return NULL;
}

static cJSON *find_doc(const cJSON *docs, const char *kind)
{
	const cJSON *d;

	cJSON_ArrayForEach(d, docs)
		if (str_is(str_at(d, "kind"), kind))
			return (cJSON *)d;
	return NULL;
}

static int doc_index(const cJSON *docs, const char *kind)
{
	int i = 1;
	const cJSON *d;

	cJSON_ArrayForEach(d, docs) {
		if (str_is(str_at(d, "kind"), kind))
			return i;
		i++;
	}
	return 0;
}

/* Every document is an object with apiVersion, kind and metadata.name; a
 * namespaced kind is in kube-system. */
static bool check_doc_shapes(const cJSON *docs, const char *file)
{
	int i = 0;
	const cJSON *d;

	if (!cJSON_IsArray(docs) || cJSON_GetArraySize(docs) == 0)
		return bad("%s: no document", file);
	cJSON_ArrayForEach(d, docs) {
		const char *kind = str_at(d, "kind");

		i++;
		if (!cJSON_IsObject(d))
			return bad("%s: document %d is empty or not a mapping", file, i);
		if (!str_at(d, "apiVersion") || !kind || !str_at(d, "metadata.name"))
			return bad("%s: document %d lacks apiVersion, kind or metadata.name", file,
				   i);
		if (strcmp(kind, "ClusterRole") && strcmp(kind, "ClusterRoleBinding") &&
		    !str_is(str_at(d, "metadata.namespace"), NAMESPACE))
			return bad("%s: %s %s: metadata.namespace is not %s", file, kind,
				   str_at(d, "metadata.name"), NAMESPACE);
	}
	return true;
}

/* ferry.yaml holds exactly these four objects, all named ferry. */
static bool check_kinds(const cJSON *docs)
{
	static const char *const kinds[] = { "ServiceAccount", "ClusterRole",
					     "ClusterRoleBinding", "DaemonSet" };
	const cJSON *d;
	int seen[4] = { 0 };

	cJSON_ArrayForEach(d, docs) {
		const char *kind = str_at(d, "kind");
		size_t k;

		for (k = 0; k < 4 && !str_is(kind, kinds[k]); k++)
			;
		if (k == 4)
			return bad("ferry.yaml: unexpected kind %s", kind ? kind : "(none)");
		if (seen[k]++)
			return bad("ferry.yaml: more than one %s", kind);
		if (!str_is(str_at(d, "metadata.name"), "ferry"))
			return bad("ferry.yaml: %s: metadata.name is not ferry", kind);
	}
	for (size_t k = 0; k < 4; k++)
		if (!seen[k])
			return bad("ferry.yaml: no %s", kinds[k]);
	return true;
}

/* --- RBAC ------------------------------------------------------------------ */

static const struct {
	const char *group, *resource;
} wanted_rules[] = {
	{ "", "services" },
	{ "discovery.k8s.io", "endpointslices" },
	{ "", "nodes" },
};
#define N_RULES (sizeof(wanted_rules) / sizeof(wanted_rules[0]))

/* The one string of a one-item list, or NULL with why set. */
static const char *only_item(const cJSON *rule, int i, const char *key)
{
	const cJSON *list = at(rule, key);

	if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) != 1 ||
	    !cJSON_IsString(cJSON_GetArrayItem(list, 0))) {
		bad("ClusterRole ferry: rules[%d].%s must hold exactly one name", i, key);
		return NULL;
	}
	return cJSON_GetArrayItem(list, 0)->valuestring;
}

/* Exactly three rules: get, list and watch on services, endpointslices and
 * nodes. No other verb, resource, group or field; no wildcard. */
static bool check_rbac_rules(const cJSON *role)
{
	const cJSON *rules = at(role, "rules"), *rule, *field, *verb;
	int i = 0, seen[N_RULES] = { 0 };

	if (at(role, "aggregationRule"))
		return bad("ClusterRole ferry: aggregationRule would add rules");
	if (!cJSON_IsArray(rules) || cJSON_GetArraySize(rules) != (int)N_RULES)
		return bad("ClusterRole ferry: rules: want exactly %zu rules, have %d", N_RULES,
			   cJSON_IsArray(rules) ? cJSON_GetArraySize(rules) : 0);
	cJSON_ArrayForEach(rule, rules) {
		const char *group, *resource;
		int get = 0, list = 0, watch = 0;
		size_t k;

		cJSON_ArrayForEach(field, rule)
			if (strcmp(field->string, "apiGroups") && strcmp(field->string, "resources") &&
			    strcmp(field->string, "verbs"))
				return bad("ClusterRole ferry: rules[%d].%s: only apiGroups, "
					   "resources and verbs are expected", i, field->string);
		if (!(group = only_item(rule, i, "apiGroups")) ||
		    !(resource = only_item(rule, i, "resources")))
			return false;
		if (strchr(group, '*') || strchr(resource, '*'))
			return bad("ClusterRole ferry: rules[%d]: wildcard in apiGroups or resources",
				   i);
		for (k = 0; k < N_RULES; k++)
			if (!strcmp(group, wanted_rules[k].group) &&
			    !strcmp(resource, wanted_rules[k].resource))
				break;
		if (k == N_RULES)
			return bad("ClusterRole ferry: rules[%d].resources: %s in group \"%s\" is "
				   "not services, endpointslices or nodes", i, resource, group);
		if (seen[k]++)
			return bad("ClusterRole ferry: rules[%d].resources: %s twice", i, resource);
		if (!cJSON_IsArray(at(rule, "verbs")))
			return bad("ClusterRole ferry: rules[%d].verbs missing", i);
		cJSON_ArrayForEach(verb, at(rule, "verbs")) {
			const char *v = cJSON_IsString(verb) ? verb->valuestring : "(not a string)";

			if (!strcmp(v, "get"))
				get++;
			else if (!strcmp(v, "list"))
				list++;
			else if (!strcmp(v, "watch"))
				watch++;
			else
				return bad("ClusterRole ferry: rules[%d].verbs: \"%s\" is not get, "
					   "list or watch", i, v);
		}
		if (get != 1 || list != 1 || watch != 1)
			return bad("ClusterRole ferry: rules[%d].verbs: want get, list and watch, "
				   "once each", i);
		i++;
	}
	return true;
}

static bool check_binding(const cJSON *binding, const cJSON *sa)
{
	const cJSON *subjects = at(binding, "subjects"), *s;

	if (!str_is(str_at(binding, "roleRef.apiGroup"), "rbac.authorization.k8s.io") ||
	    !str_is(str_at(binding, "roleRef.kind"), "ClusterRole") ||
	    !str_is(str_at(binding, "roleRef.name"), "ferry"))
		return bad("ClusterRoleBinding ferry: roleRef must be ClusterRole ferry "
			   "(rbac.authorization.k8s.io)");
	if (!cJSON_IsArray(subjects) || cJSON_GetArraySize(subjects) != 1)
		return bad("ClusterRoleBinding ferry: subjects: want exactly one");
	s = cJSON_GetArrayItem(subjects, 0);
	if (!str_is(str_at(s, "kind"), "ServiceAccount") || !str_is(str_at(s, "name"), "ferry") ||
	    !str_is(str_at(s, "namespace"), NAMESPACE))
		return bad("ClusterRoleBinding ferry: subjects[0] must be ServiceAccount "
			   "ferry in " NAMESPACE);
	if (!str_is(str_at(sa, "metadata.name"), "ferry") ||
	    !str_is(str_at(sa, "metadata.namespace"), NAMESPACE))
		return bad("ServiceAccount: metadata must be ferry in " NAMESPACE);
	return true;
}

/* --- the DaemonSet ------------------------------------------------------------ */

static cJSON *pod_spec(const cJSON *ds)
{
	return at(ds, "spec.template.spec");
}

/* The container whose command (or, without one, first arg) runs ferryd. */
static bool runs_ferryd(const cJSON *c)
{
	const cJSON *cmd = at(c, "command");
	const cJSON *first = cJSON_GetArrayItem(cJSON_IsArray(cmd) ? cmd : at(c, "args"), 0);
	const char *s = cJSON_IsString(first) ? first->valuestring : "";
	size_t n = strlen(s);

	return n >= 6 && strcmp(s + n - 6, "ferryd") == 0 && (n == 6 || s[n - 7] == '/');
}

static cJSON *agent_container(const cJSON *ds)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, at(pod_spec(ds), "containers"))
		if (runs_ferryd(c))
			return (cJSON *)c;
	return NULL;
}

/* The value of --flag in c's args, "--flag=V" or "--flag", "V"; NULL when
 * absent. */
static const char *arg_value(const cJSON *c, const char *flag)
{
	const cJSON *args = at(c, "args"), *a;
	size_t n = strlen(flag);

	cJSON_ArrayForEach(a, args) {
		const char *s = cJSON_IsString(a) ? a->valuestring : "";

		if (strncmp(s, flag, n) == 0 && s[n] == '=')
			return s + n + 1;
		if (strcmp(s, flag) == 0)
			return cJSON_IsString(a->next) ? a->next->valuestring : "";
	}
	return NULL;
}

/* The hostPath volume of the pod at path, or NULL. */
static cJSON *host_volume(const cJSON *ds, const char *path, bool prefix)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, at(pod_spec(ds), "volumes")) {
		const char *p = str_at(v, "hostPath.path");

		if (p && (prefix ? strncmp(p, path, strlen(path)) == 0 : strcmp(p, path) == 0))
			return (cJSON *)v;
	}
	return NULL;
}

static cJSON *mount_of(const cJSON *c, const char *volume)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, at(c, "volumeMounts"))
		if (str_is(str_at(m, "name"), volume))
			return (cJSON *)m;
	return NULL;
}

static bool check_pod(const cJSON *ds)
{
	const cJSON *spec = pod_spec(ds), *match = at(ds, "spec.selector.matchLabels"), *l, *t;
	const cJSON *labels = at(ds, "spec.template.metadata.labels");
	bool tolerates_all = false;

	if (!cJSON_IsObject(spec))
		return bad("DaemonSet ferry: no spec.template.spec");
	if (!cJSON_IsObject(match) || !match->child)
		return bad("DaemonSet ferry: spec.selector.matchLabels is empty");
	cJSON_ArrayForEach(l, match)
		if (!cJSON_IsString(l) ||
		    !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(labels, l->string)) ||
		    strcmp(cJSON_GetObjectItemCaseSensitive(labels, l->string)->valuestring,
			   l->valuestring))
			return bad("DaemonSet ferry: spec.template.metadata.labels lacks the "
				   "selector's %s", l->string);
	if (!cJSON_IsTrue(at(spec, "hostNetwork")))
		return bad("DaemonSet ferry: spec.template.spec.hostNetwork must be true");
	if (cJSON_IsTrue(at(spec, "hostPID")))
		return bad("DaemonSet ferry: spec.template.spec.hostPID must not be true");
	/* Cluster DNS is a ClusterIP: it works only once ferry runs. */
	if (!str_is(str_at(spec, "dnsPolicy"), "Default"))
		return bad("DaemonSet ferry: spec.template.spec.dnsPolicy must be Default (the "
			   "node's resolver: cluster DNS needs ferry running)");
	if (!str_is(str_at(spec, "serviceAccountName"), "ferry"))
		return bad("DaemonSet ferry: spec.template.spec.serviceAccountName must be ferry");
	if (!str_is(str_at(spec, "priorityClassName"), "system-node-critical"))
		return bad("DaemonSet ferry: spec.template.spec.priorityClassName must be "
			   "system-node-critical");
	if (!cJSON_IsNumber(at(spec, "terminationGracePeriodSeconds")))
		return bad("DaemonSet ferry: spec.template.spec.terminationGracePeriodSeconds "
			   "is not set");
	cJSON_ArrayForEach(t, at(spec, "tolerations"))
		if (str_is(str_at(t, "operator"), "Exists") && !at(t, "key") && !at(t, "effect"))
			tolerates_all = true;
	if (!tolerates_all)
		return bad("DaemonSet ferry: spec.template.spec.tolerations: want one with "
			   "operator Exists and no key or effect (every node)");
	return true;
}

static bool check_update_strategy(const cJSON *ds)
{
	const cJSON *u = at(ds, "spec.updateStrategy"), *max = at(u, "rollingUpdate.maxUnavailable");
	const cJSON *surge = at(u, "rollingUpdate.maxSurge");

	if (!str_is(str_at(u, "type"), "RollingUpdate"))
		return bad("DaemonSet ferry: spec.updateStrategy.type must be RollingUpdate");
	if (!cJSON_IsNumber(max) || max->valuedouble != 1)
		return bad("DaemonSet ferry: spec.updateStrategy.rollingUpdate.maxUnavailable "
			   "must be 1");
	/* Two ferryd on one node: the second would find the bpffs lock held. */
	if (surge && !(cJSON_IsNumber(surge) && surge->valuedouble == 0))
		return bad("DaemonSet ferry: spec.updateStrategy.rollingUpdate.maxSurge must "
			   "be 0");
	return true;
}

static bool check_agent_args(const cJSON *ds)
{
	const cJSON *c = agent_container(ds), *env;
	const char *v;

	if (!c)
		return bad("DaemonSet ferry: no container runs ferryd");
	if (!str_is(arg_value(c, "--source"), "k8s"))
		return bad("DaemonSet ferry: ferryd args: --source k8s missing");
	v = arg_value(c, "--apiserver");
	if (!v || strncmp(v, "https://", 8) || !v[8])
		return bad("DaemonSet ferry: ferryd args: --apiserver https://... missing (the "
			   "API server's real address)");
	env = named(at(c, "env"), "NODE_NAME");
	if (!str_is(str_at(env, "valueFrom.fieldRef.fieldPath"), "spec.nodeName"))
		return bad("DaemonSet ferry: ferryd env NODE_NAME must come from "
			   "valueFrom.fieldRef.fieldPath spec.nodeName");
	v = arg_value(c, "--node-name");
	if (v && strcmp(v, "$(NODE_NAME)"))
		return bad("DaemonSet ferry: ferryd args: --node-name must be $(NODE_NAME), not %s",
			   v);
	v = arg_value(c, "--health-addr");
	if (!v || !strstr(v, ":10256"))
		return bad("DaemonSet ferry: ferryd args: --health-addr must listen on port "
			   "10256");
	if (!arg_value(c, "--metrics-addr"))
		return bad("DaemonSet ferry: ferryd args: --metrics-addr missing");
	return true;
}

/* bpffs: the host's /sys/fs/bpf, Bidirectional in the privileged init
 * container that mounts it, HostToContainer in the agent, Bidirectional
 * nowhere else. cgroup: a hostPath under /sys/fs/cgroup, mounted in the agent
 * where --cgroup points. */
static bool check_volumes(const cJSON *ds)
{
	const cJSON *agent = agent_container(ds), *bpffs = host_volume(ds, "/sys/fs/bpf", false);
	const cJSON *cgroup = host_volume(ds, "/sys/fs/cgroup", true), *init, *m;
	const char *bpf_name, *cg_name, *cg_arg, *bpffs_arg;
	int mounters = 0;

	if (!agent)
		return bad("DaemonSet ferry: no container runs ferryd");
	if (!bpffs)
		return bad("DaemonSet ferry: spec.template.spec.volumes: no hostPath /sys/fs/bpf");
	if (!cgroup)
		return bad("DaemonSet ferry: spec.template.spec.volumes: no hostPath under "
			   "/sys/fs/cgroup");
	bpf_name = str_at(bpffs, "name");
	cg_name = str_at(cgroup, "name");
	cJSON_ArrayForEach(init, at(pod_spec(ds), "initContainers")) {
		const cJSON *cmd = at(init, "command");
		char *text = cmd ? cJSON_PrintUnformatted(cmd) : NULL;
		bool mounts = text && strstr(text, "mount -t bpf");

		free(text);
		m = mount_of(init, bpf_name);
		if (!mounts)
			continue;
		mounters++;
		if (!cJSON_IsTrue(at(init, "securityContext.privileged")))
			return bad("DaemonSet ferry: init container %s mounts bpffs: "
				   "securityContext.privileged must be true", str_at(init, "name"));
		if (!m || !str_is(str_at(m, "mountPath"), "/sys/fs/bpf") ||
		    !str_is(str_at(m, "mountPropagation"), "Bidirectional"))
			return bad("DaemonSet ferry: init container %s: volumeMounts %s must be at "
				   "/sys/fs/bpf with mountPropagation Bidirectional",
				   str_at(init, "name"), bpf_name);
		if (!str_is(str_at(init, "image"), str_at(agent, "image")))
			return bad("DaemonSet ferry: init container %s: image differs from "
				   "ferryd's (one image to set)", str_at(init, "name"));
	}
	if (mounters != 1)
		return bad("DaemonSet ferry: initContainers: want one privileged container "
			   "running `mount -t bpf`, have %d", mounters);
	m = mount_of(agent, bpf_name);
	if (!m || !str_is(str_at(m, "mountPath"), "/sys/fs/bpf") ||
	    !str_is(str_at(m, "mountPropagation"), "HostToContainer"))
		return bad("DaemonSet ferry: ferryd volumeMounts %s must be at /sys/fs/bpf with "
			   "mountPropagation HostToContainer", bpf_name);
	cJSON_ArrayForEach(m, at(pod_spec(ds), "containers")) {
		const cJSON *vm;

		cJSON_ArrayForEach(vm, at(m, "volumeMounts"))
			if (str_is(str_at(vm, "mountPropagation"), "Bidirectional"))
				return bad("DaemonSet ferry: container %s: mountPropagation "
					   "Bidirectional is for the privileged init container only",
					   str_at(m, "name"));
	}
	bpffs_arg = arg_value(agent, "--bpffs");
	if (bpffs_arg && strncmp(bpffs_arg, "/sys/fs/bpf/", 12))
		return bad("DaemonSet ferry: ferryd args: --bpffs %s is not under /sys/fs/bpf/",
			   bpffs_arg);
	cg_arg = arg_value(agent, "--cgroup");
	if (!cg_arg || !*cg_arg)
		return bad("DaemonSet ferry: ferryd args: --cgroup missing (inside a container "
			   "/proc/mounts also lists the container's own cgroup2)");
	m = mount_of(agent, cg_name);
	if (!m || !str_is(str_at(m, "mountPath"), cg_arg))
		return bad("DaemonSet ferry: ferryd volumeMounts %s must be at --cgroup's %s",
			   cg_name, cg_arg);
	return true;
}

/* c's volumeMount at path, or NULL. */
static cJSON *mount_at(const cJSON *c, const char *path)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, at(c, "volumeMounts"))
		if (str_is(str_at(m, "mountPath"), path))
			return (cJSON *)m;
	return NULL;
}

/* A folder of --netns-dirs is a read-only HostToContainer mount (pods
 * started later appear in it, removed pods' namespaces leave it) of a
 * hostPath that is created when missing (a node that has run no pod yet). */
static bool check_netns_dir(const cJSON *ds, const cJSON *agent, const char *dir)
{
	const cJSON *m = mount_at(agent, dir), *vol;

	if (!m)
		return bad("DaemonSet ferry: ferryd args: --netns-dirs names %s, which is no "
			   "volumeMounts' mountPath", dir);
	if (!cJSON_IsTrue(at(m, "readOnly")))
		return bad("DaemonSet ferry: ferryd volumeMounts at %s (--netns-dirs): readOnly "
			   "must be true", dir);
	if (!str_is(str_at(m, "mountPropagation"), "HostToContainer"))
		return bad("DaemonSet ferry: ferryd volumeMounts at %s (--netns-dirs): "
			   "mountPropagation must be HostToContainer (pods started later; a "
			   "private copy keeps removed pods' namespaces mounted)", dir);
	vol = named(at(pod_spec(ds), "volumes"), str_at(m, "name"));
	if (!str_at(vol, "hostPath.path"))
		return bad("DaemonSet ferry: volume %s (--netns-dirs %s) must be a hostPath",
			   str_at(m, "name"), dir);
	if (!str_is(str_at(vol, "hostPath.type"), "DirectoryOrCreate"))
		return bad("DaemonSet ferry: volume %s: hostPath.type must be DirectoryOrCreate (a "
			   "node that has run no pod yet has no such folder)", str_at(m, "name"));
	return true;
}

/* B21 for pods without the host's PIDs: --netns-dirs lists mounts of the
 * runtime's namespace folders, /var/run/netns (containerd, CRI-O) among
 * them. */
static bool check_netns(const cJSON *ds)
{
	const cJSON *agent = agent_container(ds), *runtime = host_volume(ds, "/var/run/netns", false);
	const char *dirs = arg_value(agent, "--netns-dirs");
	char *copy, *dir, *save = NULL;
	bool ok = true, names_runtime = false;

	if (!agent)
		return bad("DaemonSet ferry: no container runs ferryd");
	if (!dirs || !*dirs)
		return bad("DaemonSet ferry: ferryd args: --netns-dirs missing (pods' connected UDP "
			   "sockets, B21)");
	if (!runtime)
		return bad("DaemonSet ferry: spec.template.spec.volumes: no hostPath /var/run/netns "
			   "(where containerd and CRI-O pin pods' network namespaces)");
	copy = strdup(dirs);
	assert_non_null(copy);
	for (dir = strtok_r(copy, ",", &save); ok && dir; dir = strtok_r(NULL, ",", &save)) {
		ok = check_netns_dir(ds, agent, dir);
		if (ok && str_is(str_at(mount_at(agent, dir), "name"), str_at(runtime, "name")))
			names_runtime = true;
	}
	free(copy);
	if (ok && !names_runtime)
		return bad("DaemonSet ferry: ferryd args: --netns-dirs does not name the mount of "
			   "volume %s (/var/run/netns)", str_at(runtime, "name"));
	return ok;
}

/* "CAP_BPF" and "bpf" both mean BPF. */
static void cap_name(const char *in, char *out, size_t len)
{
	size_t i = 0;

	if (strncasecmp(in, "CAP_", 4) == 0)
		in += 4;
	for (; *in && i + 1 < len; in++)
		out[i++] = (char)toupper((unsigned char)*in);
	out[i] = '\0';
}

static const char *const agent_caps[] = { "BPF", "NET_ADMIN", "PERFMON", "SYS_ADMIN" };
#define N_CAPS (sizeof(agent_caps) / sizeof(agent_caps[0]))

static bool check_agent_security(const cJSON *ds)
{
	const cJSON *c = agent_container(ds), *sc = at(c, "securityContext"), *cap;
	const cJSON *drop = at(sc, "capabilities.drop"), *add = at(sc, "capabilities.add");
	int seen[N_CAPS] = { 0 };
	bool drops_all = false;
	char name[64];

	if (!c)
		return bad("DaemonSet ferry: no container runs ferryd");
	if (cJSON_IsTrue(at(sc, "privileged")))
		return bad("DaemonSet ferry: ferryd securityContext.privileged must not be true");
	if (!cJSON_IsFalse(at(sc, "allowPrivilegeEscalation")))
		return bad("DaemonSet ferry: ferryd securityContext.allowPrivilegeEscalation "
			   "must be false");
	if (!cJSON_IsTrue(at(sc, "readOnlyRootFilesystem")))
		return bad("DaemonSet ferry: ferryd securityContext.readOnlyRootFilesystem must "
			   "be true");
	cJSON_ArrayForEach(cap, drop)
		if (cJSON_IsString(cap) && !strcasecmp(cap->valuestring, "ALL"))
			drops_all = true;
	if (!drops_all)
		return bad("DaemonSet ferry: ferryd securityContext.capabilities.drop must hold "
			   "ALL");
	cJSON_ArrayForEach(cap, add) {
		size_t k;

		cap_name(cJSON_IsString(cap) ? cap->valuestring : "?", name, sizeof(name));
		for (k = 0; k < N_CAPS && strcmp(name, agent_caps[k]); k++)
			;
		if (k == N_CAPS)
			return bad("DaemonSet ferry: ferryd securityContext.capabilities.add: %s is "
				   "not one ferryd needs (BPF, NET_ADMIN, PERFMON, SYS_ADMIN)", name);
		if (seen[k]++)
			return bad("DaemonSet ferry: ferryd securityContext.capabilities.add: %s "
				   "twice", name);
	}
	for (size_t k = 0; k < N_CAPS; k++)
		if (!seen[k])
			return bad("DaemonSet ferry: ferryd securityContext.capabilities.add lacks "
				   "%s", agent_caps[k]);
	return true;
}

/* A probe's port: a number, or the name of one of c's ports. */
static int probe_port(const cJSON *c, const cJSON *port)
{
	const cJSON *p;

	if (cJSON_IsNumber(port))
		return port->valueint;
	if (!cJSON_IsString(port))
		return -1;
	p = named(at(c, "ports"), port->valuestring);
	return cJSON_IsNumber(at(p, "containerPort")) ? at(p, "containerPort")->valueint : -1;
}

static bool check_probe(const cJSON *c, const char *probe, const char *path)
{
	char key[64];
	const cJSON *get;

	snprintf(key, sizeof(key), "%s.httpGet", probe);
	get = at(c, key);
	if (!str_is(str_at(get, "path"), path) || probe_port(c, at(get, "port")) != HEALTH_PORT)
		return bad("DaemonSet ferry: ferryd %s.httpGet must be %s on port %d", probe, path,
			   HEALTH_PORT);
	return true;
}

static bool check_probes_and_resources(const cJSON *ds)
{
	const cJSON *c = agent_container(ds);

	if (!c)
		return bad("DaemonSet ferry: no container runs ferryd");
	if (!check_probe(c, "livenessProbe", "/livez") ||
	    !check_probe(c, "readinessProbe", "/healthz"))
		return false;
	if (!str_at(c, "resources.requests.cpu") || !str_at(c, "resources.requests.memory"))
		return bad("DaemonSet ferry: ferryd resources.requests must give cpu and memory");
	if (!str_at(c, "resources.limits.memory"))
		return bad("DaemonSet ferry: ferryd resources.limits.memory missing (ferryd holds "
			   "the cluster's Services in memory)");
	return true;
}

/* --- the cleanup -------------------------------------------------------------- */

/* A DaemonSet in kube-system (one pod per node) whose container runs
 * `ferryd --cleanup` with the host's /sys/fs/bpf (HostToContainer), without
 * privileges, on every node, with the image ferry.yaml uses. */
static bool check_cleanup(const cJSON *docs, const char *image)
{
	const cJSON *ds = find_doc(docs, "DaemonSet"), *spec = pod_spec(ds), *bpffs, *c, *t;
	const char *lists[] = { "initContainers", "containers" };
	const cJSON *runner = NULL;
	bool tolerates_all = false;

	if (!ds || cJSON_GetArraySize(docs) != 1)
		return bad("cleanup-job.yaml: want exactly one document, a DaemonSet (one pod per "
			   "node)");
	bpffs = host_volume(ds, "/sys/fs/bpf", false);
	if (!bpffs)
		return bad("cleanup-job.yaml: spec.template.spec.volumes: no hostPath /sys/fs/bpf");
	for (size_t l = 0; l < 2; l++)
		cJSON_ArrayForEach(c, at(spec, lists[l])) {
			char *text = cJSON_PrintUnformatted(at(c, "command"));
			bool cleans = text && strstr(text, "ferryd") && strstr(text, "--cleanup");

			free(text);
			if (!str_is(str_at(c, "image"), image))
				return bad("cleanup-job.yaml: container %s: image differs from "
					   "ferry.yaml's", str_at(c, "name"));
			if (cJSON_IsTrue(at(c, "securityContext.privileged")))
				return bad("cleanup-job.yaml: container %s: securityContext."
					   "privileged must not be true", str_at(c, "name"));
			if (cleans)
				runner = c;
		}
	if (!runner)
		return bad("cleanup-job.yaml: no container runs ferryd --cleanup");
	c = mount_of(runner, str_at(bpffs, "name"));
	if (!c || !str_is(str_at(c, "mountPath"), "/sys/fs/bpf") ||
	    !str_is(str_at(c, "mountPropagation"), "HostToContainer"))
		return bad("cleanup-job.yaml: %s volumeMounts must be /sys/fs/bpf with "
			   "mountPropagation HostToContainer", str_at(runner, "name"));
	c = at(runner, "securityContext.capabilities.drop");
	if (cJSON_GetArraySize(c) != 1 || !cJSON_IsString(cJSON_GetArrayItem(c, 0)) ||
	    strcasecmp(cJSON_GetArrayItem(c, 0)->valuestring, "ALL") ||
	    at(runner, "securityContext.capabilities.add"))
		return bad("cleanup-job.yaml: %s securityContext.capabilities: drop ALL, add "
			   "nothing (unlinking pins needs no capability)", str_at(runner, "name"));
	cJSON_ArrayForEach(t, at(spec, "tolerations"))
		if (str_is(str_at(t, "operator"), "Exists") && !at(t, "key"))
			tolerates_all = true;
	if (!tolerates_all)
		return bad("cleanup-job.yaml: spec.template.spec.tolerations: want operator "
			   "Exists (every node ferry ran on)");
	return true;
}

/* --- the Dockerfile ----------------------------------------------------------- */

struct stage {
	char image[128];
	char alias[128];
	char *text; /* the stage's instructions, continuations joined */
};

/* Splits a Dockerfile into stages (at most max). Comment lines go; a line
 * ending in a backslash continues on the next. Returns the stage count. */
static int docker_stages(const char *file, struct stage *st, int max)
{
	char *copy = strdup(file), *save = NULL, *line;
	int n = 0;

	assert_non_null(copy);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *s = line + strspn(line, " \t");
		size_t len;

		if (*s == '#' || *s == '\0')
			continue;
		if (strncasecmp(s, "FROM", 4) == 0 && isspace((unsigned char)s[4])) {
			char w[3][128] = { "", "", "" };
			char *p = s + 4;
			int k = 0;

			if (n == max)
				break;
			while (k < 3 && sscanf(p, " %127s", w[k]) == 1) {
				p = strstr(p, w[k]) + strlen(w[k]);
				if (strncmp(w[k], "--", 2))
					k++;
			}
			snprintf(st[n].image, sizeof(st[n].image), "%s", w[0]);
			snprintf(st[n].alias, sizeof(st[n].alias), "%s",
				 strcasecmp(w[1], "AS") == 0 ? w[2] : "");
			st[n].text = strdup("");
			n++;
			continue;
		}
		if (n == 0)
			continue;
		len = strlen(s);
		st[n - 1].text = realloc(st[n - 1].text, strlen(st[n - 1].text) + len + 2);
		assert_non_null(st[n - 1].text);
		strcat(st[n - 1].text, s);
		if (len && s[len - 1] == '\\')
			st[n - 1].text[strlen(st[n - 1].text) - 1] = ' ';
		else
			strcat(st[n - 1].text, "\n");
	}
	free(copy);
	return n;
}

static void free_stages(struct stage *st, int n)
{
	for (int i = 0; i < n; i++)
		free(st[i].text);
}

/* The first word of a build toolchain in text (a compiler, make, bpftool,
 * a -dev package), which the runtime stage must not install; or NULL. */
static const char *toolchain_word(const char *text)
{
	static const char *const words[] = { "clang", "llvm", "gcc", "g++", "cc", "make",
					     "build-essential", "bpftool", "binutils",
					     "pkg-config" };
	static const char *const prefixes[] = { "clang-", "llvm-", "gcc-", "g++-" };
	static const char sep[] = " \t\n;&|\\\"'=";
	static char word[128];
	const char *p = text;

	while (*p) {
		size_t n;

		p += strspn(p, sep);
		n = strcspn(p, sep);
		if (!n)
			break;
		snprintf(word, sizeof(word), "%.*s", (int)(n < 127 ? n : 127), p);
		p += n;
		n = strlen(word);
		if (n > 4 && !strcmp(word + n - 4, "-dev"))
			return word;
		for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
			if (!strcmp(word, words[i]))
				return word;
		for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
			if (!strncmp(word, prefixes[i], strlen(prefixes[i])))
				return word;
	}
	return NULL;
}

/* Does one of the stage's COPY --from=build lines copy a file named name? */
static bool copies_from(const struct stage *rt, const struct stage *build, int build_idx,
			const char *name)
{
	char from_alias[160], from_idx[32];
	const char *line = rt->text;

	snprintf(from_alias, sizeof(from_alias), "--from=%s", build->alias);
	snprintf(from_idx, sizeof(from_idx), "--from=%d", build_idx);
	while (line && *line) {
		const char *end = strchr(line, '\n');
		int n = end ? (int)(end - line) : (int)strlen(line);
		char pat[64], *one;

		/* the line and a space, so that the last word ends in one too */
		assert_true(asprintf(&one, "%.*s ", n, line) > 0);
		snprintf(pat, sizeof(pat), "/%s ", name);
		if (!strncasecmp(one, "COPY", 4) &&
		    ((build->alias[0] && strstr(one, from_alias)) || strstr(one, from_idx)) &&
		    strstr(one, pat)) {
			free(one);
			return true;
		}
		free(one);
		line = end ? end + 1 : NULL;
	}
	return false;
}

static bool check_dockerfile(const char *file)
{
	struct stage st[4] = { 0 };
	int n = docker_stages(file, st, 4);
	const char *word;
	bool ok = false;

	if (n != 2) {
		bad("Dockerfile: want two stages (build, runtime), have %d", n);
		goto out;
	}
	if (strncmp(st[0].image, "debian:bookworm", 15)) {
		bad("Dockerfile: the build stage is FROM %s, not debian:bookworm", st[0].image);
		goto out;
	}
	if (strcmp(st[1].image, "debian:bookworm-slim")) {
		bad("Dockerfile: the runtime stage is FROM %s, not debian:bookworm-slim",
		    st[1].image);
		goto out;
	}
	if (!strstr(st[0].text, "make all")) {
		bad("Dockerfile: the build stage does not run make all");
		goto out;
	}
	word = toolchain_word(st[1].text);
	if (word) {
		bad("Dockerfile: the runtime stage mentions %s: it must hold no toolchain", word);
		goto out;
	}
	if (!copies_from(&st[1], &st[0], 0, "ferryd") || !copies_from(&st[1], &st[0], 0, "ferryctl")) {
		bad("Dockerfile: the runtime stage must COPY --from the build stage ferryd and "
		    "ferryctl");
		goto out;
	}
	ok = true;
out:
	free_stages(st, n);
	return ok;
}

/* --- the cases ---------------------------------------------------------------- */

/* What every case reads, loaded once; a file that does not read or parse
 * fails each case that needs it, with the reason. */
/* --- what the comments refer to ------------------------------------------- */

/* The folders of the repository a comment may name a file in. */
static const char *const repo_dirs[] = { "deploy/", "docs/", "tests/", "scripts/", "user/",
					 "bpf/", "include/" };

/* rel, relative to the repository's top level (deploy/'s parent). */
static char *repo_path(const char *rel)
{
	char *path;

	assert_true(asprintf(&path, "%s/../%s", deploy_dir(), rel) > 0);
	return path;
}

/* The comments of a file (from a '#' at a line's start or after a blank to
 * the line's end), joined with single spaces: a reference cut by a line
 * break reads whole. */
static char *comment_text(const char *text)
{
	char *out = malloc(strlen(text) + 2), *o = out;

	assert_non_null(out);
	for (const char *p = text, *eol; *p; p = *eol ? eol + 1 : eol) {
		const char *c = p;

		eol = strchrnul(p, '\n');
		while (c < eol && !(*c == '#' && (c == p || isspace((unsigned char)c[-1]))))
			c++;
		for (c++; c < eol; c++)
			if (!isspace((unsigned char)*c))
				*o++ = *c;
			else if (o > out && o[-1] != ' ')
				*o++ = ' ';
		if (o > out && o[-1] != ' ')
			*o++ = ' ';
	}
	*o = '\0';
	return out;
}

/* Whether the Markdown file at rel has a heading whose text is title. */
static bool has_heading(const char *rel, const char *title)
{
	char *path = repo_path(rel), line[512];
	FILE *f = fopen(path, "r");
	bool found = false;
	size_t n;

	free(path);
	while (f && !found && fgets(line, sizeof(line), f)) {
		const char *t = line + strspn(line, "#");

		if (t == line)
			continue;
		t += strspn(t, " ");
		n = strcspn(t, "\r\n");
		found = n == strlen(title) && strncmp(t, title, n) == 0;
	}
	if (f)
		fclose(f);
	return found;
}

static bool path_char(char c)
{
	return isalnum((unsigned char)c) || strchr("_./-", c);
}

/* A file named in the comments must exist: a word starting with one of
 * repo_dirs, trailing punctuation dropped. */
static bool check_paths(const char *name, const char *comments, int *count)
{
	for (const char *w = comments; *w; w++) {
		char rel[256], *path;
		size_t n;
		bool exists;

		if (w > comments && path_char(w[-1]))
			continue;
		for (n = 0; n < sizeof(repo_dirs) / sizeof(repo_dirs[0]); n++)
			if (strncmp(w, repo_dirs[n], strlen(repo_dirs[n])) == 0)
				break;
		if (n == sizeof(repo_dirs) / sizeof(repo_dirs[0]))
			continue;
		for (n = 0; path_char(w[n]) && n < sizeof(rel) - 1; n++)
			rel[n] = w[n];
		while (n && strchr(".-", rel[n - 1]))
			n--;
		rel[n] = '\0';
		path = repo_path(rel);
		exists = access(path, F_OK) == 0;
		free(path);
		if (!exists)
			return bad("%s refers to %s, which does not exist", name, rel);
		(*count)++;
	}
	return true;
}

/* A section named in the comments, as `README, "Title"` or
 * `deploy/X.md, "Title"`, must be a heading of that file. */
static bool check_sections(const char *name, const char *comments, int *count)
{
	for (const char *q = strstr(comments, ", \""); q; q = strstr(q + 1, ", \"")) {
		const char *start = q, *end = strchr(q + 3, '"');
		char file[256], title[256];

		while (start > comments && path_char(start[-1]))
			start--;
		snprintf(file, sizeof(file), "%.*s", (int)(q - start), start);
		if (strcmp(file, "README") == 0)
			snprintf(file, sizeof(file), "README.md");
		else if (strlen(file) < 3 || strcmp(file + strlen(file) - 3, ".md") != 0)
			continue;
		if (!end)
			return bad("%s: the section after %s is not closed", name, file);
		snprintf(title, sizeof(title), "%.*s", (int)(end - q - 3), q + 3);
		if (!has_heading(file, title))
			return bad("%s refers to %s, \"%s\": no such heading in %s", name, file,
				   title, file);
		(*count)++;
	}
	return true;
}

/* Every file and section that deploy/NAME's comments (text) refer to
 * exists; *count says how many references there were. */
static bool check_references(const char *name, const char *text, int *count)
{
	char *comments = comment_text(text);
	bool ok;

	*count = 0;
	ok = check_paths(name, comments, count) && check_sections(name, comments, count);
	free(comments);
	return ok;
}

struct manifests {
	cJSON *ferry, *cleanup;
	char *dockerfile;
	char ferry_err[512], cleanup_err[512], dockerfile_err[512];
};

static int setup(void **state)
{
	struct manifests *m = calloc(1, sizeof(*m));
	size_t len;

	if (!m)
		return -1;
	m->ferry = load_manifest("ferry.yaml", m->ferry_err, sizeof(m->ferry_err));
	m->cleanup = load_manifest("cleanup-job.yaml", m->cleanup_err, sizeof(m->cleanup_err));
	m->dockerfile = read_deploy("Dockerfile", &len, m->dockerfile_err,
				    sizeof(m->dockerfile_err));
	*state = m;
	return 0;
}

static int teardown(void **state)
{
	struct manifests *m = *state;

	cJSON_Delete(m->ferry);
	cJSON_Delete(m->cleanup);
	free(m->dockerfile);
	free(m);
	return 0;
}

static struct manifests *loaded(void **state)
{
	struct manifests *m = *state;

	assert_non_null(m);
	if (!m->ferry)
		fail_msg("%s", m->ferry_err);
	if (!m->cleanup)
		fail_msg("%s", m->cleanup_err);
	if (!m->dockerfile)
		fail_msg("%s", m->dockerfile_err);
	return m;
}

#define M loaded(state)
#define DS find_doc(M->ferry, "DaemonSet")

/* Every document of both manifests parses on its own too (yaml_split_next
 * cuts them as ferryd's file source does), and has apiVersion, kind, name. */
static void test_manifests_parse(void **state)
{
	static const char *const files[] = { "ferry.yaml", "cleanup-job.yaml" };

	for (size_t f = 0; f < 2; f++) {
		size_t len;
		char *text = slurp(files[f], &len);
		struct yaml_piece piece = { 0 };
		int pieces = 0;

		while (yaml_split_next(text, len, &piece)) {
			char name[96];
			cJSON *docs;

			snprintf(name, sizeof(name), "%s, the piece from line %zu", files[f],
				 piece.line);
			docs = parse_text(name, piece.text, piece.len, piece.line, why,
					  sizeof(why));
			if (!docs)
				fail_msg("%s", why);
			pieces += cJSON_GetArraySize(docs);
			cJSON_Delete(docs);
		}
		free(text);
		assert_true(pieces > 0);
	}
	CHECK(check_doc_shapes(M->ferry, "ferry.yaml"));
	CHECK(check_doc_shapes(M->cleanup, "cleanup-job.yaml"));
}

static void test_kinds(void **state)
{
	CHECK(check_kinds(M->ferry));
}

static void test_rbac_rules_exactly_read_only(void **state)
{
	CHECK(check_rbac_rules(find_doc(M->ferry, "ClusterRole")));
}

static void test_binding_names_role_and_account(void **state)
{
	CHECK(check_binding(find_doc(M->ferry, "ClusterRoleBinding"),
			    find_doc(M->ferry, "ServiceAccount")));
}

static void test_daemonset_pod(void **state)
{
	CHECK(check_pod(DS));
	CHECK(check_update_strategy(DS));
}

static void test_daemonset_agent_args(void **state)
{
	CHECK(check_agent_args(DS));
}

static void test_daemonset_mounts(void **state)
{
	CHECK(check_volumes(DS));
}

static void test_agent_capabilities(void **state)
{
	CHECK(check_agent_security(DS));
}

static void test_pod_network_namespaces(void **state)
{
	CHECK(check_netns(DS));
}

static void test_agent_probes_and_resources(void **state)
{
	CHECK(check_probes_and_resources(DS));
}

static void test_cleanup(void **state)
{
	CHECK(check_cleanup(M->cleanup, str_at(agent_container(DS), "image")));
}

static void test_dockerfile(void **state)
{
	CHECK(check_dockerfile(M->dockerfile));
}

/* A broken DaemonSet document fails the parse, which names its document. */
static void test_catches_broken_yaml(void **state)
{
	size_t len;
	char *text = slurp("ferry.yaml", &len), *broken, *at_line;
	const char *anchor = "      hostNetwork: true\n";
	cJSON *docs;

	(void)state;
	at_line = strstr(text, anchor);
	assert_non_null(at_line);
	assert_true(asprintf(&broken, "%.*s%s    - [unclosed\n%s", (int)(at_line - text), text,
			     anchor, at_line + strlen(anchor)) > 0);
	docs = parse_text("ferry.yaml (broken)", broken, strlen(broken), 1, why, sizeof(why));
	assert_null(docs);
	{
		char expect[64];

		snprintf(expect, sizeof(expect), "document %d,", doc_index(M->ferry, "DaemonSet"));
		if (!strstr(why, expect))
			fail_msg("the error \"%s\" does not name %s", why, expect);
	}
	free(broken);
	free(text);
}

/* Each widening of the ClusterRole is refused, naming the field. */
static void test_catches_rbac_widening(void **state)
{
	const cJSON *role = find_doc(M->ferry, "ClusterRole");
	cJSON *r;

	CHECK(check_rbac_rules(role)); /* each copy below breaks a good one */

	r = cJSON_Duplicate(role, 1);
	cJSON_AddItemToArray(at(cJSON_GetArrayItem(at(r, "rules"), 0), "verbs"),
			     cJSON_CreateString("create"));
	CHECK_CATCHES(check_rbac_rules(r), "rules[0].verbs");
	cJSON_Delete(r);

	r = cJSON_Duplicate(role, 1);
	cJSON_ReplaceItemInArray(at(cJSON_GetArrayItem(at(r, "rules"), 1), "resources"), 0,
				 cJSON_CreateString("*"));
	CHECK_CATCHES(check_rbac_rules(r), "wildcard");
	cJSON_Delete(r);

	r = cJSON_Duplicate(role, 1);
	cJSON_ReplaceItemInArray(at(cJSON_GetArrayItem(at(r, "rules"), 2), "resources"), 0,
				 cJSON_CreateString("secrets"));
	CHECK_CATCHES(check_rbac_rules(r), "rules[2].resources");
	cJSON_Delete(r);

	r = cJSON_Duplicate(role, 1);
	cJSON_AddItemToArray(at(r, "rules"), cJSON_Duplicate(cJSON_GetArrayItem(at(r, "rules"), 0), 1));
	CHECK_CATCHES(check_rbac_rules(r), "exactly 3 rules");
	cJSON_Delete(r);

	r = cJSON_Duplicate(role, 1);
	cJSON_AddItemToObject(cJSON_GetArrayItem(at(r, "rules"), 0), "nonResourceURLs",
			      cJSON_CreateStringArray((const char *const[]){ "/metrics" }, 1));
	CHECK_CATCHES(check_rbac_rules(r), "rules[0].nonResourceURLs");
	cJSON_Delete(r);
}

/* Each loosening of the agent's security context, each missing piece of
 * the pod, is refused, naming the field. */
static void test_catches_daemonset_changes(void **state)
{
	cJSON *ds, *c;

	/* each copy below breaks a good one */
	CHECK(check_pod(DS) && check_update_strategy(DS) && check_agent_args(DS) &&
	      check_volumes(DS) && check_agent_security(DS) && check_probes_and_resources(DS) &&
	      check_netns(DS));

	ds = cJSON_Duplicate(DS, 1);
	cJSON_AddItemToArray(at(agent_container(ds), "securityContext.capabilities.add"),
			     cJSON_CreateString("SYS_PTRACE"));
	CHECK_CATCHES(check_agent_security(ds), "capabilities.add: SYS_PTRACE");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	cJSON_DeleteItemFromArray(at(agent_container(ds), "securityContext.capabilities.add"), 3);
	CHECK_CATCHES(check_agent_security(ds), "capabilities.add lacks SYS_ADMIN");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	cJSON_ReplaceItemInObject(pod_spec(ds), "hostPID", cJSON_CreateTrue());
	CHECK_CATCHES(check_pod(ds), "hostPID");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	cJSON_DeleteItemFromArray(at(agent_container(ds), "securityContext.capabilities.add"), 2);
	CHECK_CATCHES(check_agent_security(ds), "capabilities.add lacks PERFMON");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	cJSON_DeleteItemFromObject(at(agent_container(ds), "securityContext.capabilities"), "drop");
	CHECK_CATCHES(check_agent_security(ds), "capabilities.drop");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	cJSON_ReplaceItemInObject(at(agent_container(ds), "securityContext"), "privileged",
				  cJSON_CreateTrue());
	CHECK_CATCHES(check_agent_security(ds), "securityContext.privileged");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	cJSON_ReplaceItemInObject(pod_spec(ds), "hostNetwork", cJSON_CreateFalse());
	CHECK_CATCHES(check_pod(ds), "hostNetwork");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	cJSON_ReplaceItemInObject(at(ds, "spec.updateStrategy.rollingUpdate"), "maxUnavailable",
				  cJSON_CreateNumber(2));
	CHECK_CATCHES(check_update_strategy(ds), "maxUnavailable");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	cJSON_ReplaceItemInObject(at(named(at(pod_spec(ds), "initContainers"), "mount-bpffs"),
				     "securityContext"), "privileged", cJSON_CreateFalse());
	CHECK_CATCHES(check_volumes(ds), "privileged");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	cJSON_ReplaceItemInObject(mount_of(agent_container(ds), "bpffs"), "mountPropagation",
				  cJSON_CreateString("Bidirectional"));
	CHECK_CATCHES(check_volumes(ds), "HostToContainer");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	c = agent_container(ds);
	cJSON_ReplaceItemInObject(at(c, "livenessProbe.httpGet"), "path",
				  cJSON_CreateString("/healthz"));
	CHECK_CATCHES(check_probes_and_resources(ds), "livenessProbe.httpGet");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	c = at(agent_container(ds), "env");
	for (int i = cJSON_GetArraySize(c) - 1; i >= 0; i--)
		if (str_is(str_at(cJSON_GetArrayItem(c, i), "name"), "NODE_NAME"))
			cJSON_DeleteItemFromArray(c, i);
	CHECK_CATCHES(check_agent_args(ds), "NODE_NAME");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	c = at(agent_container(ds), "args");
	for (int i = cJSON_GetArraySize(c) - 1; i >= 0; i--)
		if (cJSON_IsString(cJSON_GetArrayItem(c, i)) &&
		    !strncmp(cJSON_GetArrayItem(c, i)->valuestring, "--apiserver", 11))
			cJSON_DeleteItemFromArray(c, i);
	CHECK_CATCHES(check_agent_args(ds), "--apiserver");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	c = at(agent_container(ds), "args");
	for (int i = cJSON_GetArraySize(c) - 1; i >= 0; i--)
		if (cJSON_IsString(cJSON_GetArrayItem(c, i)) &&
		    !strncmp(cJSON_GetArrayItem(c, i)->valuestring, "--cgroup", 8))
			cJSON_DeleteItemFromArray(c, i);
	CHECK_CATCHES(check_volumes(ds), "--cgroup");
	cJSON_Delete(ds);
}

/* Replaces ferryd's --netns-dirs argument with arg (NULL: removes it). */
static void set_netns_arg(cJSON *ds, const char *arg)
{
	cJSON *args = at(agent_container(ds), "args");

	for (int i = cJSON_GetArraySize(args) - 1; i >= 0; i--)
		if (cJSON_IsString(cJSON_GetArrayItem(args, i)) &&
		    !strncmp(cJSON_GetArrayItem(args, i)->valuestring, "--netns-dirs", 12)) {
			if (arg)
				cJSON_ReplaceItemInArray(args, i, cJSON_CreateString(arg));
			else
				cJSON_DeleteItemFromArray(args, i);
		}
}

/* Each way of losing pods' namespaces, or of holding them too widely, is
 * refused, naming the field. */
static void test_catches_netns_changes(void **state)
{
	const char *dir;
	cJSON *ds, *m;

	CHECK(check_netns(DS)); /* each copy below breaks a good one */
	dir = arg_value(agent_container(DS), "--netns-dirs");
	assert_non_null(dir);

	ds = cJSON_Duplicate(DS, 1);
	set_netns_arg(ds, NULL);
	CHECK_CATCHES(check_netns(ds), "--netns-dirs missing");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	set_netns_arg(ds, "--netns-dirs=/run/elsewhere");
	CHECK_CATCHES(check_netns(ds), "/run/elsewhere, which is no volumeMounts' mountPath");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	m = mount_at(agent_container(ds), dir);
	cJSON_ReplaceItemInObject(m, "readOnly", cJSON_CreateFalse());
	CHECK_CATCHES(check_netns(ds), "readOnly");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	m = mount_at(agent_container(ds), dir);
	cJSON_DeleteItemFromObject(m, "mountPropagation");
	CHECK_CATCHES(check_netns(ds), "HostToContainer");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	cJSON_ReplaceItemInObject(at(host_volume(ds, "/var/run/netns", false), "hostPath"),
				  "type", cJSON_CreateString("Directory"));
	CHECK_CATCHES(check_netns(ds), "DirectoryOrCreate");
	cJSON_Delete(ds);

	ds = cJSON_Duplicate(DS, 1);
	cJSON_ReplaceItemInObject(at(host_volume(ds, "/var/run/netns", false), "hostPath"),
				  "path", cJSON_CreateString("/var/lib/netns"));
	CHECK_CATCHES(check_netns(ds), "no hostPath /var/run/netns");
	cJSON_Delete(ds);
}

/* A compiler in the runtime stage, or a single stage, is refused. */
static void test_catches_dockerfile_changes(void **state)
{
	const char *rt = strstr(M->dockerfile, "FROM debian:bookworm-slim");
	const char *copy = rt ? strstr(rt, "COPY --from=") : NULL;
	char *broken;

	CHECK(check_dockerfile(M->dockerfile)); /* each copy below breaks a good one */
	assert_non_null(copy);
	assert_true(asprintf(&broken, "%.*sRUN apt-get install -y gcc\n%s",
			     (int)(copy - M->dockerfile), M->dockerfile, copy) > 0);
	CHECK_CATCHES(check_dockerfile(broken), "gcc");
	free(broken);

	assert_true(asprintf(&broken, "%.*s", (int)(rt - M->dockerfile), M->dockerfile) > 0);
	CHECK_CATCHES(check_dockerfile(broken), "two stages");
	free(broken);
}

/* The manifests and the Dockerfile send the reader to files and sections
 * that exist (deploy/README-install.md was named before it was written). */
static void test_references_exist(void **state)
{
	static const char *const files[] = { "ferry.yaml", "cleanup-job.yaml", "Dockerfile" };
	int count, total = 0;

	(void)state;
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		size_t len;
		char *text = slurp(files[f], &len);

		CHECK(check_references(files[f], text, &count));
		total += count;
		free(text);
	}
	assert_true(total >= 8); /* the scanner sees them */
}

/* A reference to a missing file, or to a heading a file lacks, is caught;
 * one split over two comment lines is read whole. */
static void test_catches_missing_references(void **state)
{
	int count;

	(void)state;
	CHECK(check_references("x.yaml", "a: 1  # see (README, \"Kernel\n  # features\").\n",
			       &count));
	assert_int_equal(count, 1);
	CHECK_CATCHES(check_references("x.yaml", "# see deploy/README-nope.md.\n", &count),
		      "deploy/README-nope.md, which does not exist");
	CHECK_CATCHES(check_references("x.yaml", "# (README, \"No such\n# section\")\n", &count),
		      "README.md, \"No such section\": no such heading");
	CHECK_CATCHES(check_references("x.yaml", "# deploy/README-install.md, \"Gone\"\n",
				       &count), "no such heading in deploy/README-install.md");
	CHECK(check_references("x.yaml", "path: /usr/share/x.md  # not ours: user/ is not "
			       "at a word start in /usr/\n", &count));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifests_parse),
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_rbac_rules_exactly_read_only),
		cmocka_unit_test(test_binding_names_role_and_account),
		cmocka_unit_test(test_daemonset_pod),
		cmocka_unit_test(test_daemonset_agent_args),
		cmocka_unit_test(test_daemonset_mounts),
		cmocka_unit_test(test_agent_capabilities),
		cmocka_unit_test(test_pod_network_namespaces),
		cmocka_unit_test(test_agent_probes_and_resources),
		cmocka_unit_test(test_cleanup),
		cmocka_unit_test(test_dockerfile),
		cmocka_unit_test(test_catches_broken_yaml),
		cmocka_unit_test(test_catches_rbac_widening),
		cmocka_unit_test(test_catches_daemonset_changes),
		cmocka_unit_test(test_catches_netns_changes),
		cmocka_unit_test(test_catches_dockerfile_changes),
		cmocka_unit_test(test_references_exist),
		cmocka_unit_test(test_catches_missing_references),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
