/* Unit tests of the file source and its YAML reader: the shared fixtures
 * (../shared/fixtures, README.md says what each Service programs), Lists,
 * multi-document YAML, bad edits, folders and inotify. Run from the repo root. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <ftw.h>
#include <arpa/inet.h>
#include <malloc.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "desired_fmt.h"
#include "tmpdir.h"
#include "model/model.h"
#include "source/file_source.h"
#include "source/kube_priv.h"
#include "source/yaml_doc.h"

#define FIXTURES "../shared/fixtures/"

static void write_file(const char *name, const char *content)
{
	char *path = tmp_path(name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(content, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	free(path);
}

static void remove_file(const char *name)
{
	char *path = tmp_path(name);

	assert_int_equal(remove(path), 0);
	free(path);
}

static void rename_file(const char *from, const char *to)
{
	char *a = tmp_path(from), *b = tmp_path(to);

	assert_int_equal(rename(a, b), 0);
	free(a);
	free(b);
}

/* What a load logs (stderr), echoed so that it still shows. */
static void load_logged(struct file_source *src, char *log, size_t len)
{
	struct capture c;

	capture_begin(&c);
	assert_int_equal(file_source_load(src), 0);
	capture_end(&c, log, len);
}

static void assert_logged(const char *log, const char *expect)
{
	if (!strstr(log, expect))
		fail_msg("not logged: %s", expect);
}


/* Loads path through a file source; objects and stats are checked by the caller. */
static struct file_source *load_path(const char *path)
{
	struct file_source *src = file_source_open(path);

	assert_non_null(src);
	assert_int_equal(file_source_load(src), 0);
	return src;
}

/* The objects of a single file: its one set. */
static const struct model_objects *the_set(const struct file_source *src)
{
	size_t n_sets;
	const struct model_objects *sets = file_source_objects(src, &n_sets);

	assert_int_equal(n_sets, 1);
	return sets;
}

/* The Services of every set by name: "a b|c" is a file with a and b, then
 * one with c. */
static void assert_service_names(const struct file_source *src, const char *expect)
{
	size_t n_sets;
	const struct model_objects *sets = file_source_objects(src, &n_sets);
	char names[512] = "";

	for (size_t i = 0; i < n_sets; i++)
		for (size_t j = 0; j < sets[i].n_services; j++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
				 j ? " " : i ? "|" : "", sets[i].services[j].name);
	assert_string_equal(names, expect);
}

/* One line per service port (desired_fmt.h), computed for node-a (the
 * fixtures' endpoints' node). */
static void assert_desired(const struct model_objects *sets, size_t n_sets,
			   const char *const *expect, size_t n)
{
	static const struct model_node node = { .name = "node-a" };
	struct desired_state st;
	char line[512];

	assert_int_equal(model_compute(sets, n_sets, &node, 64, &st), 0);
	for (size_t i = 0; i < st.n_svcs && i < n; i++)
		assert_string_equal(fmt_desired(&st.svcs[i], line, sizeof(line)), expect[i]);
	assert_int_equal(st.n_svcs, n);
	desired_free(&st);
}

/* What ../shared/fixtures/README.md says the snapshot programs: kube-dns on
 * UDP and TCP 53 (B4, B10), web without the terminating .13 (B7, B11), api in
 * both families (B3, B6) with NodePort 30443 in both (B22), edge's ClusterIP,
 * NodePort, the one VIP-mode ingress IP (B24), its externalIP (B25) and
 * source range (B26), and with externalTrafficPolicy Local its external set
 * of local endpoints with healthCheckNodePort 30283 (B16, B28); empty with no
 * backend (B14); db (headless) and legacy (ExternalName) nothing (B1). */
static const char *const snapshot_expect[] = {
	"kube-system/kube-dns:dns-tcp/TCP/v4 TCP 10.96.0.10:53 -> 198.18.1.53:53 198.18.2.53:53",
	"kube-system/kube-dns:dns/UDP/v4 UDP 10.96.0.10:53 -> 198.18.1.53:53 198.18.2.53:53",
	"shop/api:https/TCP/v4 TCP 10.96.243.168:443 0.0.0.0:30443 -> 198.18.1.21:8443",
	"shop/api:https/TCP/v6 TCP [fd00:10:96::279f]:443 [::]:30443 -> [fd00:198:18:1::21]:8443",
	"shop/edge:http/TCP/v4 TCP 10.96.102.20:80 0.0.0.0:32752 lb:192.0.2.10:80 "
	"ext:192.0.2.50:80 ranges 203.0.113.0/24 ext-local -> 198.18.1.31:8080",
	"shop/edge:http/TCP/v4/external TCP 0.0.0.0:32752 lb:192.0.2.10:80 ext:192.0.2.50:80 "
	"ranges 203.0.113.0/24 external ext-local hc=30283 -> 198.18.1.31:8080",
	"shop/empty:http/TCP/v4 TCP 10.96.19.140:80 ->",
	"shop/web:http/TCP/v4 TCP 10.96.83.231:80 -> 198.18.1.11:8080 198.18.2.12:8080",
	"shop/web:metrics/TCP/v4 TCP 10.96.83.231:9090 -> 198.18.1.11:9090 198.18.2.12:9090",
};
#define N_SNAPSHOT (sizeof(snapshot_expect) / sizeof(snapshot_expect[0]))

static void check_snapshot(const char *path)
{
	struct file_source *src = load_path(path);
	const struct model_objects *objs = the_set(src);

	assert_int_equal(objs->n_services, 7);
	assert_int_equal(objs->n_slices, 6);
	assert_int_equal(file_source_stats(src)->parse_errors, 0);
	assert_int_equal(file_source_stats(src)->objects_skipped, 0);
	assert_desired(objs, 1, snapshot_expect, N_SNAPSHOT);
	file_source_close(src);
}

/* kubectl get -o yaml: a v1 List, flattened into its items. */
static void test_fixture_snapshot_yaml(void **state)
{
	(void)state;
	check_snapshot(FIXTURES "cluster-snapshot.yaml");
}

static void test_fixture_snapshot_json(void **state)
{
	(void)state;
	check_snapshot(FIXTURES "cluster-snapshot.json");
}

static const struct model_service *find_service(const struct model_objects *objs,
						const struct model_service *like)
{
	for (size_t i = 0; i < objs->n_services; i++) {
		const struct model_service *s = &objs->services[i];

		if (strcmp(s->ns, like->ns) == 0 && strcmp(s->name, like->name) == 0)
			return s;
	}
	fail_msg("no Service %s/%s", like->ns, like->name);
	return NULL;
}

static void swap_ext(struct model_service *a, struct model_service *b)
{
	struct model_service_ext *ext = a->ext;

	a->ext = b->ext;
	b->ext = ext;
}

/* The manifests that created the snapshot carry no cluster IPs except
 * kube-dns's (the API server allocates them): only kube-dns is programmed.
 * Given the snapshot's allocated IPs, nodePorts and load balancer status,
 * they program exactly the same. */
static void test_fixture_objects_yaml(void **state)
{
	static const char *const dns_only[] = { snapshot_expect[0], snapshot_expect[1] };
	struct file_source *src = load_path(FIXTURES "cluster-objects.yaml");
	struct file_source *snap_src = load_path(FIXTURES "cluster-snapshot.yaml");
	/* The source's own objects, patched in place below. */
	struct model_objects *objs = (struct model_objects *)the_set(src);
	const struct model_objects *snap = the_set(snap_src);

	(void)state;
	assert_int_equal(objs->n_services, 7);
	assert_int_equal(objs->n_slices, 6);
	assert_int_equal(file_source_stats(src)->objects_skipped, 0);
	assert_desired(objs, 1, dns_only, 2);
	for (size_t i = 0; i < objs->n_services; i++) {
		struct model_service *svc = &objs->services[i];
		const struct model_service *allocated = find_service(snap, svc);

		assert_int_equal(svc->type, allocated->type);
		assert_int_equal(svc->n_ports, allocated->n_ports);
		svc->n_cluster_ips = allocated->n_cluster_ips;
		memcpy(svc->cluster_ips, allocated->cluster_ips, sizeof(svc->cluster_ips));
		memcpy(svc->cluster_ip_family, allocated->cluster_ip_family,
		       sizeof(svc->cluster_ip_family));
		for (size_t p = 0; p < svc->n_ports; p++)
			svc->ports[p].node_port = allocated->ports[p].node_port;
		swap_ext(svc, (struct model_service *)allocated);
	}
	assert_desired(objs, 1, snapshot_expect, N_SNAPSHOT);
	file_source_close(src);
	file_source_close(snap_src);
}

static void test_yaml_scalar_typing_and_flow_style(void **state)
{
	static const char yaml[] =
		"a: 80\nb: -7\nc: 0x1F\nd: '80'\ne: \"true\"\nf: true\ng: True\nh: FALSE\n"
		"i: null\nj: ~\nk:\nl: 1.5\nm: yes\nn: 10.96.0.1\no: {name: http, port: 80}\n"
		"p: [x, 2, [y]]\nq: !!str 53\nr: Null\n";
	struct yaml_doc_error err;
	cJSON *docs = yaml_doc_parse(yaml, strlen(yaml), 1, &err);
	char *text;

	(void)state;
	assert_non_null(docs);
	text = cJSON_PrintUnformatted(cJSON_GetArrayItem(docs, 0));
	assert_string_equal(text,
			    "{\"a\":80,\"b\":-7,\"c\":31,\"d\":\"80\",\"e\":\"true\",\"f\":true,"
			    "\"g\":true,\"h\":false,\"i\":null,\"j\":null,\"k\":null,\"l\":\"1.5\","
			    "\"m\":\"yes\",\"n\":\"10.96.0.1\",\"o\":{\"name\":\"http\",\"port\":80},"
			    "\"p\":[\"x\",2,[\"y\"]],\"q\":\"53\",\"r\":null}");
	free(text);
	cJSON_Delete(docs);
}

/* Lines count from first_line: a piece cut from a file reports the file's. */
static void test_yaml_errors_name_document_and_line(void **state)
{
	static const struct {
		const char *yaml;
		size_t first_line;
		int doc;
		size_t line;
		const char *msg;
	} cases[] = {
		{ "a: 1\n---\nb: 2\n---\nc: [1, 2\nd: 3\n", 1, 3, 6, "" },
		{ "a: 1\n---\nb: &x 1\nc: *x\n", 1, 2, 4, "aliases (*x) are not supported" },
		{ "a: 1\na: 2\n", 1, 1, 2, "duplicate key \"a\"" },
		{ "a: 1\n  b: 2\n", 1, 1, 2, "" },
		{ "---\na: 1\na: 2\n", 40, 1, 42, "duplicate key \"a\"" },
	};
	struct yaml_doc_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_null(yaml_doc_parse(cases[i].yaml, strlen(cases[i].yaml), cases[i].first_line,
					   &err));
		assert_int_equal(err.doc, cases[i].doc);
		assert_int_equal(err.line, cases[i].line);
		assert_memory_equal(err.msg, cases[i].msg, strlen(cases[i].msg));
		assert_true(err.msg[0] != '\0');
	}
}

#define SVC_DOC(name, ip) \
	"{kind: Service, metadata: {name: " name "}, spec: {clusterIP: " ip ", ports: [{port: 80}]}}\n"

/* Multi-document YAML; empty documents and other kinds skipped. */
static void test_multi_document_yaml(void **state)
{
	struct file_source *src;
	char *path = tmp_path("all.yaml");

	(void)state;
	write_file("all.yaml", "---\n# only a comment\n---\n" SVC_DOC("a", "10.96.0.1")
		   "---\n---\n{kind: ConfigMap, metadata: {name: c}}\n---\n" SVC_DOC("b", "10.96.0.2")
		   "...\n");
	src = load_path(path);
	assert_service_names(src, "a b");
	assert_int_equal(file_source_stats(src)->objects_skipped, 0);
	file_source_close(src);
	free(path);
}

/* A List (any kind ending in List) is flattened into its items. */
static void test_list_flattened(void **state)
{
	struct file_source *src;
	char *path = tmp_path("list.yaml");

	(void)state;
	write_file("list.yaml", "kind: ServiceList\napiVersion: v1\nitems:\n- " SVC_DOC("a", "10.96.0.1")
		   "- {kind: Pod, metadata: {name: p}}\n- " SVC_DOC("b", "10.96.0.2")
		   "---\nkind: List\nitems: []\n");
	src = load_path(path);
	assert_service_names(src, "a b");
	file_source_close(src);
	free(path);
}

/* The file source reads in chunks of this size (file_docs.c). */
#define DOCS_CHUNK_BYTES 65536

/* A UTF-8 byte-order mark, as some editors write one, is not content. */
static void test_byte_order_mark_skipped(void **state)
{
	struct file_source *src;
	char *json = tmp_path("bom.json"), *yaml = tmp_path("bom.yaml");
	FILE *f;

	(void)state;
	write_file("bom.json", "\xEF\xBB\xBF{\"kind\": \"List\", \"items\": [{\"kind\": \"Service\","
		   " \"metadata\": {\"name\": \"a\"}, \"spec\": {\"clusterIP\": \"10.96.0.1\","
		   " \"ports\": [{\"port\": 80}]}}]}\n");
	src = load_path(json);
	assert_service_names(src, "a");
	assert_int_equal(file_source_stats(src)->parse_errors, 0);
	file_source_close(src);
	/* The mark, then blanks up to the end of the first read: the JSON starts
	 * right after it. */
	f = fopen(json, "w");
	assert_non_null(f);
	fputs("\xEF\xBB\xBF", f);
	for (int i = 0; i < DOCS_CHUNK_BYTES - 3; i++)
		fputc(' ', f);
	fputs("[{\"kind\": \"Service\", \"metadata\": {\"name\": \"c\"}, \"spec\": {"
	      "\"clusterIP\": \"10.96.0.3\", \"ports\": [{\"port\": 80}]}}]\n", f);
	assert_int_equal(fclose(f), 0);
	src = load_path(json);
	assert_service_names(src, "c");
	file_source_close(src);
	write_file("bom.yaml", "\xEF\xBB\xBF" SVC_DOC("b", "10.96.0.2"));
	src = load_path(yaml);
	assert_service_names(src, "b");
	file_source_close(src);
	free(json);
	free(yaml);
}

/* An invalid object is skipped and counted; the others still load. */
static void test_invalid_object_skipped(void **state)
{
	struct file_source *src;
	char *path = tmp_path("objs.json");

	(void)state;
	write_file("objs.json", "[{\"kind\": \"Service\", \"metadata\": {\"name\": \"bad\"},"
		   " \"spec\": {\"clusterIP\": \"x\"}}, \"scalar\", {\"kind\": \"Service\","
		   " \"metadata\": {\"name\": \"good\"}}]\n");
	src = load_path(path);
	assert_service_names(src, "good");
	assert_int_equal(file_source_stats(src)->objects_skipped, 2);
	assert_int_equal(file_source_stats(src)->parse_errors, 0);
	file_source_close(src);
	free(path);
}

/* Waits until the file's last change is old enough for its stat to be
 * trusted (file_load.c: 100 ms, 2.1 s on filesystems without nanoseconds). */
static void wait_settled(const char *path)
{
	struct timespec now;
	struct stat st;
	long long age;

	assert_int_equal(stat(path, &st), 0);
	do {
		usleep(10000);
		clock_gettime(CLOCK_REALTIME, &now);
		age = (long long)(now.tv_sec - st.st_ctim.tv_sec) * 1000000000LL +
		      (now.tv_nsec - st.st_ctim.tv_nsec);
	} while (age < (st.st_ctim.tv_nsec ? 200000000LL : 2200000000LL));
}

/* A file is decoded when it changed: loading it again unchanged does not
 * decode it again, so its invalid objects are logged and counted once. */
static void test_unchanged_file_not_decoded_again(void **state)
{
	struct file_source *src;
	char *path = tmp_path("svc.yaml");

	(void)state;
	write_file("svc.yaml", SVC_DOC("a", "10.96.0.1")
		   "---\n{kind: Service, metadata: {name: bad}, spec: {clusterIP: x}}\n");
	wait_settled(path);
	src = load_path(path);
	assert_int_equal(file_source_stats(src)->objects_skipped, 1);
	assert_int_equal(file_source_load(src), 0);
	assert_int_equal(file_source_load(src), 0);
	assert_int_equal(file_source_stats(src)->objects_skipped, 1);
	assert_service_names(src, "a");

	write_file("svc.yaml", SVC_DOC("b", "10.96.0.2")
		   "---\n{kind: Service, metadata: {name: bad}, spec: {clusterIP: x}}\n");
	assert_int_equal(file_source_load(src), 0);
	assert_int_equal(file_source_stats(src)->objects_skipped, 2);
	assert_service_names(src, "b");
	file_source_close(src);
	free(path);
}

/* A rewrite right after a load, with the same size and inode (and maybe the
 * same timestamps), is still seen: a fresh stat is not trusted. */
static void test_quick_same_size_rewrite_seen(void **state)
{
	struct file_source *src;
	char *path = tmp_path("svc.yaml");

	(void)state;
	write_file("svc.yaml", SVC_DOC("a", "10.96.0.1"));
	src = load_path(path);
	for (int i = 0; i < 20; i++) {
		write_file("svc.yaml", i % 2 ? SVC_DOC("a", "10.96.0.1") : SVC_DOC("b", "10.96.0.2"));
		assert_int_equal(file_source_load(src), 0);
		assert_service_names(src, i % 2 ? "a" : "b");
	}
	file_source_close(src);
	free(path);
}

/* A file that stops parsing keeps its last good content: nothing deleted. */
static void test_bad_edit_keeps_last_good_content(void **state)
{
	struct file_source *src;
	char *path = tmp_path("svc.yaml");

	(void)state;
	write_file("svc.yaml", SVC_DOC("a", "10.96.0.1") "---\n" SVC_DOC("b", "10.96.0.2"));
	src = load_path(path);
	assert_service_names(src, "a b");

	write_file("svc.yaml", SVC_DOC("a", "10.96.0.1") "---\nkind: Service\n  : [garbage\n");
	assert_int_equal(file_source_load(src), 0);
	assert_int_equal(file_source_stats(src)->parse_errors, 1);
	assert_service_names(src, "a b");

	write_file("svc.yaml", "{\"kind\": \"Service\", \"metadata\": {\"name\": \"c\"}}\n");
	assert_int_equal(file_source_load(src), 0);
	assert_service_names(src, "c");
	assert_int_equal(file_source_stats(src)->parse_errors, 1);

	write_file("svc.yaml", "{\"kind\": \"Service\",\n \"metadata\": {\n");
	assert_int_equal(file_source_load(src), 0);
	assert_int_equal(file_source_stats(src)->parse_errors, 2);
	assert_service_names(src, "c");
	file_source_close(src);
	free(path);
}

/* Documents split at their markers: comments and directives before a ---
 * stay with its document, --- with content on its line starts one, ...
 * ends one. */
static void test_yaml_split_pieces(void **state)
{
	static const char yaml[] = "# head\n%YAML 1.1\n---\na: 1\n--- {b: 2}\n...\n# tail\n---\n"
				   "---\nc: 3\n----\n";
	static const struct {
		const char *text;
		size_t line;
	} expect[] = {
		{ "# head\n%YAML 1.1\n---\na: 1\n", 1 },
		{ "--- {b: 2}\n...\n", 5 },
		{ "# tail\n---\n", 7 },
		{ "---\nc: 3\n----\n", 9 },
	};
	struct yaml_piece piece = { 0 };
	size_t n = 0;

	(void)state;
	while (yaml_split_next(yaml, strlen(yaml), &piece)) {
		assert_true(n < sizeof(expect) / sizeof(expect[0]));
		assert_int_equal(piece.len, strlen(expect[n].text));
		assert_memory_equal(piece.text, expect[n].text, piece.len);
		assert_int_equal(piece.line, expect[n].line);
		n++;
	}
	assert_int_equal(n, sizeof(expect) / sizeof(expect[0]));
}

#define BROKEN_DOC "kind: Service\n  : [garbage\n"

/* One broken document hides none of the others; while it is broken nothing
 * that came from its file is deleted; fixed, its real content and the
 * deletions apply. */
static void test_broken_document_keeps_the_others(void **state)
{
	static const char *const kept[] = {
		"default/a:/TCP/v4 TCP 10.96.0.11:80 ->",
		"default/b:/TCP/v4 TCP 10.96.0.2:80 ->",
		"default/c:/TCP/v4 TCP 10.96.0.3:80 ->",
		"default/d:/TCP/v4 TCP 10.96.0.4:80 ->",
	};
	struct file_source *src;
	char *path = tmp_path("svc.yaml"), log[4096], expect[512];

	(void)state;
	write_file("svc.yaml", SVC_DOC("a", "10.96.0.1") "---\n" BROKEN_DOC "---\n"
		   SVC_DOC("c", "10.96.0.3"));
	src = file_source_open(path);
	assert_non_null(src);
	load_logged(src, log, sizeof(log));
	assert_service_names(src, "a c");
	assert_int_equal(file_source_stats(src)->parse_errors, 1);
	snprintf(expect, sizeof(expect), "file %s document 2 (line 4): ", path);
	assert_logged(log, expect);

	write_file("svc.yaml", SVC_DOC("a", "10.96.0.1") "---\n" SVC_DOC("b", "10.96.0.2")
		   "---\n" SVC_DOC("c", "10.96.0.3"));
	assert_int_equal(file_source_load(src), 0);
	assert_service_names(src, "a b c");

	write_file("svc.yaml", "# a comment\n" SVC_DOC("a", "10.96.0.11") "---\n" BROKEN_DOC
		   "---\n" SVC_DOC("d", "10.96.0.4"));
	load_logged(src, log, sizeof(log));
	assert_service_names(src, "a d b c");
	assert_desired(the_set(src), 1, kept, 4);
	assert_int_equal(file_source_stats(src)->parse_errors, 2);
	snprintf(expect, sizeof(expect), "file %s document 2 (line 5): ", path);
	assert_logged(log, expect);
	assert_logged(log, "1 document does not parse: nothing that came from this file is "
		      "deleted until it does (objects kept from before: 2)");

	write_file("svc.yaml", SVC_DOC("a", "10.96.0.1") "---\n" SVC_DOC("b2", "10.96.0.5")
		   "---\n" SVC_DOC("d", "10.96.0.4"));
	assert_int_equal(file_source_load(src), 0);
	assert_service_names(src, "a b2 d");
	assert_int_equal(file_source_stats(src)->parse_errors, 2);
	file_source_close(src);
	free(path);
}

#define WEB_DOC(ip) \
	"{kind: Service, metadata: {name: web, namespace: shop}, spec: {clusterIP: " ip "," \
	" ports: [{name: http, port: 80}]}}\n"

/* A Service that was good and turns invalid keeps its last good version
 * until a valid edit replaces it; removed from the file, it goes. */
static void test_invalid_edit_keeps_last_good_version(void **state)
{
	static const char *const first[] = { "shop/web:http/TCP/v4 TCP 10.96.0.1:80 ->" };
	static const char *const second[] = { "shop/web:http/TCP/v4 TCP 10.96.0.2:80 ->" };
	struct file_source *src;
	char *path = tmp_path("web.yaml"), log[4096], expect[512];

	(void)state;
	write_file("web.yaml", SVC_DOC("a", "10.96.0.9") "---\n" WEB_DOC("10.96.0.1"));
	src = load_path(path);
	assert_service_names(src, "a web");

	write_file("web.yaml", SVC_DOC("a", "10.96.0.9") "---\n" WEB_DOC("10.96.0.300"));
	load_logged(src, log, sizeof(log));
	assert_service_names(src, "a web");
	assert_desired(&(struct model_objects){ .n_services = 1,
						.services = &the_set(src)->services[1] },
		       1, first, 1);
	assert_int_equal(file_source_stats(src)->objects_skipped, 1);
	assert_int_equal(file_source_stats(src)->parse_errors, 0);
	snprintf(expect, sizeof(expect), "file %s document 2: Service shop/web: spec.clusterIP: "
		 "\"10.96.0.300\" is not an IP address; keeping its last good version", path);
	assert_logged(log, expect);

	write_file("web.yaml", SVC_DOC("a", "10.96.0.9") "---\n" WEB_DOC("10.96.0.2"));
	assert_int_equal(file_source_load(src), 0);
	assert_service_names(src, "a web");
	assert_desired(&(struct model_objects){ .n_services = 1,
						.services = &the_set(src)->services[1] },
		       1, second, 1);

	write_file("web.yaml", SVC_DOC("a", "10.96.0.9"));
	assert_int_equal(file_source_load(src), 0);
	assert_service_names(src, "a");
	assert_int_equal(file_source_stats(src)->objects_skipped, 1);
	file_source_close(src);
	free(path);
}

/* The items of a List count one by one: an invalid item keeps its last good
 * version, the others change or go. */
static void test_list_item_invalid(void **state)
{
	struct file_source *src;
	char *path = tmp_path("list.yaml"), log[4096], expect[512];

	(void)state;
	write_file("list.yaml", "kind: List\nitems:\n- " SVC_DOC("a", "10.96.0.1")
		   "- " SVC_DOC("b", "10.96.0.2") "- " SVC_DOC("c", "10.96.0.3"));
	src = load_path(path);
	assert_service_names(src, "a b c");

	write_file("list.yaml", "kind: List\nitems:\n- " SVC_DOC("a2", "10.96.0.1")
		   "- {kind: Service, metadata: {name: b}, spec: {ports: [{port: 70000}]}}\n");
	load_logged(src, log, sizeof(log));
	assert_service_names(src, "a2 b");
	assert_int_equal(the_set(src)->services[1].cluster_ips[0].w[3], htonl(0x0a600002));
	assert_int_equal(file_source_stats(src)->objects_skipped, 1);
	snprintf(expect, sizeof(expect), "file %s document 1 item 2: Service default/b: "
		 "spec.ports[0].port: not a port number; keeping its last good version", path);
	assert_logged(log, expect);
	file_source_close(src);
	free(path);
}

/* An invalid object with no name could be any object of before: nothing of
 * its file is deleted until it is fixed. */
static void test_nameless_object_keeps_file(void **state)
{
	struct file_source *src;
	char *path = tmp_path("svc.yaml"), log[4096];

	(void)state;
	write_file("svc.yaml", SVC_DOC("a", "10.96.0.1") "---\n" SVC_DOC("b", "10.96.0.2"));
	src = load_path(path);
	write_file("svc.yaml", SVC_DOC("a", "10.96.0.1") "---\n"
		   "{kind: Service, metadata: {namespace: x}, spec: {clusterIP: 10.96.0.2}}\n");
	load_logged(src, log, sizeof(log));
	assert_service_names(src, "a b");
	assert_int_equal(file_source_stats(src)->objects_skipped, 1);
	assert_logged(log, "document 2: Service x/?: metadata.name: missing or not a string; "
		      "skipped, and with no name to match it by, nothing that came from this "
		      "file is deleted until it is fixed");

	write_file("svc.yaml", SVC_DOC("a", "10.96.0.1"));
	assert_int_equal(file_source_load(src), 0);
	assert_service_names(src, "a");
	file_source_close(src);
	free(path);
}

/* A folder: *.yaml, *.yml, *.json sorted by name, one set each; hidden,
 * *.tmp and others ignored; a file renamed away takes its objects with it. */
static void test_folder_source(void **state)
{
	struct file_source *src;

	(void)state;
	write_file("b.yml", SVC_DOC("b", "10.96.0.2"));
	write_file("a.yaml", SVC_DOC("a", "10.96.0.1"));
	write_file("c.json", "{\"kind\": \"Service\", \"metadata\": {\"name\": \"c\"}}");
	write_file("d.yaml.tmp", SVC_DOC("d", "10.96.0.4"));
	write_file(".e.yaml", SVC_DOC("e", "10.96.0.5"));
	write_file("f.txt", SVC_DOC("f", "10.96.0.6"));
	src = load_path(tmpdir);
	assert_service_names(src, "a|b|c");

	rename_file("d.yaml.tmp", "a.yaml");
	assert_int_equal(file_source_load(src), 0);
	assert_service_names(src, "d|b|c");

	rename_file("b.yml", "b.yml.old");
	assert_int_equal(file_source_load(src), 0);
	assert_service_names(src, "d|c");

	/* *.json is JSON only: flow-style YAML there is a parse error. */
	write_file("c.json", "{kind: Service, metadata: {name: c2}}\n");
	assert_int_equal(file_source_load(src), 0);
	assert_int_equal(file_source_stats(src)->parse_errors, 1);
	assert_service_names(src, "d|c");
	file_source_close(src);
}

#define WEB_FILE(ip, port, slice, backend) \
	"{kind: Service, metadata: {name: web, namespace: shop}, spec: {clusterIP: " ip "," \
	" ports: [{name: http, port: " port "}]}}\n---\n{kind: EndpointSlice, metadata:" \
	" {name: " slice ", namespace: shop, labels: {kubernetes.io/service-name: web}}," \
	" addressType: IPv4, ports: [{name: http, port: 8080}], endpoints: [{addresses: [" \
	backend "]}]}\n"

/* The files of a folder make one state: a Service defined again in a later
 * file replaces the earlier one (last wins), the slices of all files merge. */
static void test_folder_later_file_redefines_service(void **state)
{
	static const char *const expect[] = {
		"shop/web:http/TCP/v4 TCP 10.96.0.7:81 -> 10.0.0.1:8080 10.0.0.2:8080",
	};
	const struct model_objects *sets;
	struct file_source *src;
	size_t n_sets;

	(void)state;
	write_file("a.yaml", WEB_FILE("10.96.0.1", "80", "w1", "10.0.0.1"));
	write_file("b.yaml", WEB_FILE("10.96.0.7", "81", "w2", "10.0.0.2"));
	src = load_path(tmpdir);
	sets = file_source_objects(src, &n_sets);
	assert_int_equal(n_sets, 2);
	assert_service_names(src, "web|web");
	assert_desired(sets, n_sets, expect, 1);
	file_source_close(src);
}

/* A bad edit of one file keeps that file's objects while another file's
 * change applies. */
static void test_folder_bad_edit_keeps_that_file(void **state)
{
	static const char *const expect[] = {
		"default/a2:/TCP/v4 TCP 10.96.0.3:80 ->",
		"default/b:/TCP/v4 TCP 10.96.0.2:80 ->",
	};
	const struct model_objects *sets;
	struct file_source *src;
	size_t n_sets;

	(void)state;
	write_file("a.yaml", SVC_DOC("a", "10.96.0.1"));
	write_file("b.yaml", SVC_DOC("b", "10.96.0.2"));
	src = load_path(tmpdir);
	assert_service_names(src, "a|b");

	write_file("b.yaml", "kind: Service\n  : [garbage\n");
	write_file("a.yaml", SVC_DOC("a2", "10.96.0.3"));
	assert_int_equal(file_source_load(src), 0);
	assert_int_equal(file_source_stats(src)->parse_errors, 1);
	assert_service_names(src, "a2|b");
	sets = file_source_objects(src, &n_sets);
	assert_desired(sets, n_sets, expect, 2);

	/* Still bad: reported again, still kept. */
	assert_int_equal(file_source_load(src), 0);
	assert_int_equal(file_source_stats(src)->parse_errors, 2);
	assert_service_names(src, "a2|b");

	write_file("b.yaml", SVC_DOC("b2", "10.96.0.4"));
	assert_int_equal(file_source_load(src), 0);
	assert_service_names(src, "a2|b2");
	assert_int_equal(file_source_stats(src)->parse_errors, 2);
	file_source_close(src);
}

/* An EndpointSlice that turns invalid keeps its last good version: its
 * backends stay programmed. */
static void test_invalid_slice_keeps_backends(void **state)
{
	static const char *const expect[] = {
		"shop/web:http/TCP/v4 TCP 10.96.0.1:80 -> 10.0.0.1:8080",
	};
	struct file_source *src;
	char *path = tmp_path("web.yaml");

	(void)state;
	write_file("web.yaml", WEB_FILE("10.96.0.1", "80", "w1", "10.0.0.1"));
	src = load_path(path);
	assert_desired(the_set(src), 1, expect, 1);

	write_file("web.yaml", WEB_FILE("10.96.0.1", "80", "w1", "'fd00::1'"));
	assert_int_equal(file_source_load(src), 0);
	assert_int_equal(file_source_stats(src)->objects_skipped, 1);
	assert_desired(the_set(src), 1, expect, 1);
	file_source_close(src);
	free(path);
}

static int drain_after_poll(struct file_source *src)
{
	struct pollfd pfd = { .fd = file_source_fd(src), .events = POLLIN };

	assert_true(poll(&pfd, 1, 200) >= 0);
	return file_source_drain(src);
}

/* A single file is watched through its folder, so an editor's rename-replace
 * is seen; other names in the folder are not. */
static void test_inotify_file_rename_replace(void **state)
{
	struct file_source *src;
	char *path = tmp_path("svc.yaml");

	(void)state;
	write_file("svc.yaml", SVC_DOC("a", "10.96.0.1"));
	src = file_source_open(path);
	assert_non_null(src);
	assert_int_equal(file_source_drain(src), 0);
	write_file("other.yaml", SVC_DOC("o", "10.96.0.9"));
	write_file(".svc.yaml.swp", "x");
	assert_int_equal(drain_after_poll(src), 0);
	write_file("svc.yaml.new", SVC_DOC("b", "10.96.0.2"));
	rename_file("svc.yaml.new", "svc.yaml");
	assert_int_equal(drain_after_poll(src), 1);
	assert_int_equal(file_source_drain(src), 0);
	write_file("svc.yaml", SVC_DOC("c", "10.96.0.3"));
	assert_int_equal(drain_after_poll(src), 1);
	file_source_close(src);
	free(path);
}

/* In a folder, x.yaml.tmp is ignored until it is moved to x.yaml; the
 * kubelet's ..data swap of a mounted ConfigMap counts. */
static void test_inotify_folder_tmp_then_mv(void **state)
{
	struct file_source *src = file_source_open(tmpdir);

	(void)state;
	assert_non_null(src);
	write_file("x.yaml.tmp", SVC_DOC("x", "10.96.0.1"));
	assert_int_equal(drain_after_poll(src), 0);
	rename_file("x.yaml.tmp", "x.yaml");
	assert_int_equal(drain_after_poll(src), 1);
	rename_file("x.yaml", "x.yaml.bak");
	assert_int_equal(drain_after_poll(src), 1);
	write_file("..data_tmp", "");
	assert_int_equal(drain_after_poll(src), 0);
	rename_file("..data_tmp", "..data");
	assert_int_equal(drain_after_poll(src), 1);
	file_source_close(src);
}

/* A missing path does not open; a watched file that disappears fails the
 * load, and its objects stay. */
static void test_missing_paths(void **state)
{
	struct file_source *src;
	char *path = tmp_path("gone.yaml");

	(void)state;
	assert_null(file_source_open("/nonexistent/ferry/services.yaml"));
	write_file("gone.yaml", SVC_DOC("a", "10.96.0.1"));
	src = load_path(path);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(file_source_load(src), -1);
	assert_service_names(src, "a");
	file_source_close(src);
	free(path);
}

/* The file scripts/gen-cluster.py writes: n Services x m endpoints as a v1
 * List. Returns its size. */
static size_t write_cluster(const char *path, unsigned n, unsigned m)
{
	FILE *f = fopen(path, "w");
	long size;

	assert_non_null(f);
	fputs("{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [", f);
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "%s{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": "
			"{\"name\": \"svc-%u\", \"namespace\": \"bench\"}, \"spec\": {\"type\": "
			"\"ClusterIP\", \"clusterIP\": \"10.%u.%u.%u\", \"clusterIPs\": "
			"[\"10.%u.%u.%u\"], \"ports\": [{\"name\": \"http\", \"port\": 80, "
			"\"protocol\": \"TCP\", \"targetPort\": 8080}]}}", i ? ", " : "", i,
			96 + ((i + 1) >> 16), ((i + 1) >> 8) & 255, (i + 1) & 255,
			96 + ((i + 1) >> 16), ((i + 1) >> 8) & 255, (i + 1) & 255);
	for (unsigned i = 0; i < n; i++) {
		fprintf(f, ", {\"apiVersion\": \"discovery.k8s.io/v1\", \"kind\": "
			"\"EndpointSlice\", \"metadata\": {\"name\": \"svc-%u-1\", \"namespace\": "
			"\"bench\", \"labels\": {\"kubernetes.io/service-name\": \"svc-%u\"}}, "
			"\"addressType\": \"IPv4\", \"ports\": [{\"name\": \"http\", \"port\": 8080, "
			"\"protocol\": \"TCP\"}], \"endpoints\": [", i, i);
		for (unsigned j = 0, k = 1 + i * m; j < m; j++, k++)
			fprintf(f, "%s{\"addresses\": [\"198.%u.%u.%u\"], \"conditions\": "
				"{\"ready\": true}, \"nodeName\": \"node-a\"}", j ? ", " : "",
				18 + (k >> 16), (k >> 8) & 255, k & 255);
		fputs("]}", f);
	}
	fputs("]}", f);
	size = ftell(f);
	assert_int_equal(fclose(f), 0);
	assert_true(size > 0);
	return (size_t)size;
}

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/* A "Vm...:" figure of /proc/self/status, in bytes. */
static size_t status_bytes(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t kb = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			kb = strtoul(line + strlen(key), NULL, 10);
	fclose(f);
	return kb * 1024;
}

/* Resets VmHWM, the peak RSS, to the RSS now. */
static void peak_reset(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");

	assert_non_null(f);
	assert_true(fputs("5", f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* A big snapshot (20,000 Services x 10 endpoints, 28 MB): what the source
 * keeps after the load is its decoded objects, 1.1 times the file (two heap
 * strings per endpoint weigh most), not also the parsed documents (7.5 times
 * the file) or the text (1 time). The file is read in chunks and a List's
 * items parsed one at a time, so the load's peak is the decoded objects and
 * a little, not the text and its parsed tree as well (9.5 times the file
 * before streaming). */
static void test_big_file_keeps_only_objects(void **state)
{
	char *path = tmp_path("big.json");
	size_t size = write_cluster(path, 20000, 10), before, after, rss, peak;
	const struct model_objects *objs;
	struct file_source *src;
	struct desired_state st;

	(void)state;
	malloc_trim(0);
	before = heap_in_use();
	peak_reset();
	rss = status_bytes("VmRSS:");
	src = load_path(path);
	peak = status_bytes("VmHWM:") - rss;
	after = heap_in_use();
	objs = the_set(src);
	assert_int_equal(objs->n_services, 20000);
	assert_int_equal(objs->n_slices, 20000);
	assert_int_equal(objs->slices[19999].n_endpoints, 10);
	assert_int_equal(file_source_stats(src)->objects_skipped, 0);
	assert_int_equal(model_compute(objs, 1, NULL, 64, &st), 0);
	assert_int_equal(st.n_svcs, 20000);
	desired_free(&st);
	if (after == before) {
		print_message("heap not measurable here (valgrind?): size not checked\n");
	} else {
		print_message("%zu-byte file: %zu bytes of heap kept after the load (%.2f x)\n",
			      size, after - before, (double)(after - before) / (double)size);
		assert_true(after > before && after - before < size + size / 2);
		print_message("peak RSS during the load: %zu bytes over the RSS before (%.2f x)\n",
			      peak, (double)peak / (double)size);
		assert_true(peak < size + size / 2);
	}
	file_source_close(src);
	free(path);
}

/* kubectl's JSON has "items" before "kind": the items still count one by
 * one; a document that turns out not to be a List is one object, its
 * "items" ignored, in JSON and in YAML. */
static void test_items_before_kind(void **state)
{
	static const char *const files[][2] = {
		{ "list.json", "{\"apiVersion\": \"v1\", \"items\": [{\"kind\": \"Service\", "
			       "\"metadata\": {\"name\": \"a\"}}, {\"kind\": \"Service\", \"metadata\": "
			       "{\"name\": \"b\"}}], \"kind\": \"List\", \"metadata\": {}}" },
		{ "svc.json", "{\"items\": [{\"kind\": \"Service\", \"metadata\": {\"name\": \"x\"}}], "
			      "\"kind\": \"Service\", \"metadata\": {\"name\": \"c\"}}" },
		{ "svc.yaml", "items:\n- {kind: Service, metadata: {name: y}}\nkind: Service\n"
			      "metadata: {name: d}\n" },
		{ "zlist.yaml", "apiVersion: v1\nitems:\n- " SVC_DOC("e", "10.96.0.5")
				"- {kind: Pod, metadata: {name: p}}\nkind: List\n" },
	};
	struct file_source *src;

	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		write_file(files[i][0], files[i][1]);
	src = load_path(tmpdir);
	assert_service_names(src, "a b|c|d|e");
	assert_int_equal(file_source_stats(src)->objects_skipped, 0);
	assert_int_equal(file_source_stats(src)->parse_errors, 0);
	file_source_close(src);
}

/* A broken item breaks its document: none of its items apply, the line is
 * the item's, and nothing that came from the file is deleted; the other
 * documents apply. */
static void test_broken_item_voids_its_document(void **state)
{
	struct file_source *src;
	char *yaml = tmp_path("list.yaml"), *json = tmp_path("list.json"), log[4096], expect[512];

	(void)state;
	write_file("list.yaml", SVC_DOC("z", "10.96.0.9"));
	write_file("list.json", "[" "{\"kind\": \"Service\", \"metadata\": {\"name\": \"old\"}}" "]");
	src = load_path(tmpdir);
	assert_service_names(src, "old|z");

	write_file("list.yaml", SVC_DOC("a", "10.96.0.1") "---\nkind: List\nitems:\n- "
		   SVC_DOC("b", "10.96.0.2") "- {kind: Service, metadata: &m {name: c}, x: *m}\n- "
		   SVC_DOC("d", "10.96.0.4") "---\n" SVC_DOC("e", "10.96.0.5"));
	write_file("list.json", "{\"kind\": \"List\", \"items\": [\n"
		   "{\"kind\": \"Service\", \"metadata\": {\"name\": \"f\"}},\n"
		   "{\"kind\": \"Service\", \"metadata\": {\"name\": \"g\",}}\n]}\n");
	load_logged(src, log, sizeof(log));
	assert_service_names(src, "old|a e z");
	assert_int_equal(file_source_stats(src)->parse_errors, 2);
	snprintf(expect, sizeof(expect), "file %s document 2 (line 6): aliases (*m) are not "
		 "supported", yaml);
	assert_logged(log, expect);
	snprintf(expect, sizeof(expect), "file %s document 1 (line 3): invalid JSON", json);
	assert_logged(log, expect);

	/* an array of documents: those before the broken one apply */
	write_file("list.json", "[{\"kind\": \"Service\", \"metadata\": {\"name\": \"h\"}},\n"
		   "{\"kind\": \"Service\", \"metadata\": {\"name\": \"i\"}, },\n"
		   "{\"kind\": \"Service\", \"metadata\": {\"name\": \"j\"}}]\n");
	load_logged(src, log, sizeof(log));
	assert_service_names(src, "h old|a e z");
	snprintf(expect, sizeof(expect), "file %s document 2 (line 2): invalid JSON", json);
	assert_logged(log, expect);
	file_source_close(src);
	free(yaml);
	free(json);
}

/* A file that is not *.json and starts with { or [ but is flow-style YAML
 * is read again as YAML, from scratch: what the JSON attempt decoded of it
 * does not stay (a.yaml is one YAML sequence: not an object), nor count
 * twice (b.yaml). */
static void test_json_attempt_restarts_as_yaml(void **state)
{
	struct file_source *src;

	(void)state;
	write_file("a.yaml", "[{\"kind\": \"Service\", \"metadata\": {\"name\": \"a\"}},\n"
		   " {kind: Service, metadata: {name: b}}]\n");
	write_file("b.yaml", "{\"kind\": \"List\", \"items\": [{\"kind\": \"Service\", "
		   "\"metadata\": {\"name\": \"c\"}}, {kind: Service, metadata: {name: d}}]}\n");
	write_file("c.yaml", "{kind: List, items: [{kind: Service, metadata: {name: e}}]}\n");
	src = load_path(tmpdir);
	assert_service_names(src, "|c d|e");
	assert_int_equal(file_source_stats(src)->parse_errors, 0);
	assert_int_equal(file_source_stats(src)->objects_skipped, 1);
	file_source_close(src);
}

/* Files over the 64 KiB chunk: a YAML List, a multi-document stream with its
 * markers at every offset of the chunks, a document on one 200 KB line, and
 * the line of an error past them. */
static void test_yaml_across_chunks(void **state)
{
	char *path = tmp_path("many.yaml"), *text, log[4096], expect[512];
	size_t len, lines = 1;
	struct file_source *src;
	FILE *f;

	(void)state;
	f = open_memstream(&text, &len);
	fputs("kind: List\nitems:\n", f);
	for (int i = 0; i < 1000; i++)
		fprintf(f, "- kind: Service\n  metadata:\n    name: l%d\n  spec:\n    clusterIP: "
			"10.96.%d.%d\n    ports:\n    - port: 80\n", i, i / 250, i % 250 + 1);
	for (int i = 0; i < 1500; i++)
		fprintf(f, "---\n# %*s\nkind: Service\nmetadata: {name: m%d}\n", i % 97, "", i);
	fputs("--- {kind: Service, metadata: {name: long, labels: {", f);
	for (int i = 0; i < 10000; i++)
		fprintf(f, "%sk%05d: vvvvvvvvvv", i ? ", " : "", i);
	fputs("}}}\n---\nkind: Service\n  : [garbage\n", f);
	fclose(f);
	for (const char *p = text; (p = strchr(p, '\n')); p++)
		lines++;
	write_file("many.yaml", text);
	src = file_source_open(path);
	assert_non_null(src);
	load_logged(src, log, sizeof(log));
	assert_int_equal(the_set(src)->n_services, 2501);
	assert_string_equal(the_set(src)->services[999].name, "l999");
	assert_string_equal(the_set(src)->services[2500].name, "long");
	assert_int_equal(file_source_stats(src)->parse_errors, 1);
	snprintf(expect, sizeof(expect), "file %s document 1503 (line %zu): ", path, lines - 1);
	assert_logged(log, expect);
	file_source_close(src);
	free(text);
	free(path);
}


/* `kubectl get services,endpointslices,nodes -A -o yaml` as a file. */
#define NODES_LIST(b_addr)                                                                 \
	"apiVersion: v1\nitems:\n"                                                          \
	"- apiVersion: v1\n  kind: Service\n  metadata: {name: a, namespace: default}\n"   \
	"  spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n"                             \
	"- apiVersion: v1\n  kind: Node\n  metadata:\n    name: node-a\n"                   \
	"    labels: {topology.kubernetes.io/zone: z1}\n  status:\n    addresses:\n"        \
	"    - {type: InternalIP, address: 192.0.2.11}\n"                                   \
	"    - {type: Hostname, address: node-a}\n"                                         \
	"- apiVersion: v1\n  kind: Node\n  metadata: {name: node-b}\n  status:\n"           \
	"    addresses:\n    - {type: InternalIP, address: '" b_addr "'}\n"                 \
	"    - {type: ExternalIP, address: 192.0.2.12}\n"                                   \
	"kind: List\nmetadata: {resourceVersion: ''}\n"

/* The addresses of the Node named name in the source's sets, "" when it has
 * none, "(none)" when there is no such Node. */
static const char *node_addrs_text(const struct file_source *src, const char *name, char *buf,
				   size_t len)
{
	size_t n_sets;
	const struct model_objects *sets = file_source_objects(src, &n_sets);
	const struct model_node *node = model_objects_node(sets, n_sets, name);
	char text[ADDR_STR_LEN];

	snprintf(buf, len, "%s", node ? "" : "(none)");
	for (size_t i = 0; node && i < node->n_addrs; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? " " : "",
			 addr_format(&node->addrs[i], text));
	return buf;
}

/* B22: the file source takes Nodes from a snapshot; ferryd's node is the one
 * named --node-name (model_objects_node). A file that stops parsing keeps
 * its Nodes too; an edit changes them; one removed from the file goes. */
static void test_b22_file_source_nodes(void **state)
{
	struct file_source *src;
	char *path = tmp_path("snap.yaml"), buf[256];
	size_t n_sets;

	(void)state;
	write_file("snap.yaml", NODES_LIST("2001:db8::12"));
	src = load_path(path);
	assert_service_names(src, "a");
	assert_int_equal(file_source_stats(src)->objects_skipped, 0);
	assert_string_equal(node_addrs_text(src, "node-b", buf, sizeof(buf)),
			    "192.0.2.12 2001:db8::12");
	assert_string_equal(node_addrs_text(src, "node-a", buf, sizeof(buf)), "192.0.2.11");
	assert_string_equal(model_objects_node(file_source_objects(src, &n_sets), 1, "node-a")->zone,
			    "z1");
	assert_string_equal(node_addrs_text(src, "node-c", buf, sizeof(buf)), "(none)");

	write_file("snap.yaml", SVC_DOC("a", "10.96.0.1") "---\nkind: Node\n  : [garbage\n");
	assert_int_equal(file_source_load(src), 0);
	assert_int_equal(file_source_stats(src)->parse_errors, 1);
	assert_string_equal(node_addrs_text(src, "node-b", buf, sizeof(buf)),
			    "192.0.2.12 2001:db8::12");

	/* A Node in a later document of the file than a Service. */
	write_file("snap.yaml", SVC_DOC("a", "10.96.0.1") "---\n{kind: Node, metadata: {name: node-b},"
		   " status: {addresses: [{type: InternalIP, address: '2001:db8::99'}]}}\n");
	assert_int_equal(file_source_load(src), 0);
	assert_string_equal(node_addrs_text(src, "node-b", buf, sizeof(buf)), "2001:db8::99");
	assert_string_equal(node_addrs_text(src, "node-a", buf, sizeof(buf)), "(none)");

	write_file("snap.yaml", SVC_DOC("a", "10.96.0.1"));
	assert_int_equal(file_source_load(src), 0);
	assert_string_equal(node_addrs_text(src, "node-b", buf, sizeof(buf)), "(none)");
	file_source_close(src);
	free(path);
}

/* In a folder, a Node in a later file takes the place of an earlier one. */
static void test_b22_folder_last_node_wins(void **state)
{
	struct file_source *src;
	char buf[256];

	(void)state;
	write_file("a.yaml", NODES_LIST("2001:db8::1"));
	write_file("b.yaml", "{kind: Node, metadata: {name: node-b}, status: {addresses:"
		   " [{type: InternalIP, address: 192.0.2.99}]}}\n");
	src = load_path(tmpdir);
	assert_string_equal(node_addrs_text(src, "node-b", buf, sizeof(buf)), "192.0.2.99");
	assert_string_equal(node_addrs_text(src, "node-a", buf, sizeof(buf)), "192.0.2.11");
	file_source_close(src);
}

/* The API source's Node watch (kube_node.c): the Node's InternalIP and
 * ExternalIP addresses, as a list item without kind, go to the store, whose
 * generation tells ferryd they changed; the same Node again changes
 * nothing. */
static void test_b22_api_node_addresses_to_store(void **state)
{
	struct kube_source ks = { .node_name = "node-a" };
	const struct ferry_ip *addrs;
	char text[ADDR_STR_LEN];
	uint64_t gen0, gen1, gen2;
	cJSON *obj;
	size_t n;

	(void)state;
	ks.store = store_new(64);
	assert_non_null(ks.store);
	store_node_addrs(ks.store, &n, &gen0);
	obj = cJSON_Parse("{\"metadata\": {\"name\": \"node-a\"}, \"status\": {\"addresses\": ["
			  "{\"type\": \"Hostname\", \"address\": \"node-a\"},"
			  "{\"type\": \"ExternalIP\", \"address\": \"2001:db8::7\"},"
			  "{\"type\": \"InternalIP\", \"address\": \"192.0.2.7\"}]}}");
	assert_non_null(obj);
	kube_node_handler.object(&ks, NULL, KUBE_ADDED, obj);
	addrs = store_node_addrs(ks.store, &n, &gen1);
	assert_int_equal(n, 2);
	assert_string_equal(addr_format(&addrs[0], text), "192.0.2.7");
	assert_string_equal(addr_format(&addrs[1], text), "2001:db8::7");
	assert_true(gen1 != gen0);
	kube_node_handler.object(&ks, NULL, KUBE_MODIFIED, obj);
	store_node_addrs(ks.store, &n, &gen2);
	assert_true(gen2 == gen1);
	cJSON_Delete(obj);
	store_free(ks.store);
}

/* --- the source feeding the model store ---------------------------------- */

/* A Service "name" (ClusterIP 10.96.0.<n>) and its slice with one endpoint,
 * as two List items of `kubectl get -o json` or `-o yaml`. */
static void web_items(FILE *f, bool yaml, const char *name, int n, const char *backend)
{
	if (yaml) {
		fprintf(f, "- {apiVersion: v1, kind: Service, metadata: {name: %s, namespace: shop},"
			" spec: {clusterIP: 10.96.0.%d, ports: [{name: http, port: 80}]}}\n", name, n);
		fprintf(f, "- {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, metadata: {name:"
			" %s-1, namespace: shop, labels: {kubernetes.io/service-name: %s}},"
			" addressType: IPv4, ports: [{name: http, port: 8080}],"
			" endpoints: [{addresses: ['%s']}]}\n", name, name, backend);
		return;
	}
	fprintf(f, "{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"%s\","
		" \"namespace\": \"shop\"}, \"spec\": {\"clusterIP\": \"10.96.0.%d\", \"ports\":"
		" [{\"name\": \"http\", \"port\": 80}]}},\n", name, n);
	fprintf(f, "{\"apiVersion\": \"discovery.k8s.io/v1\", \"kind\": \"EndpointSlice\","
		" \"metadata\": {\"name\": \"%s-1\", \"namespace\": \"shop\", \"labels\":"
		" {\"kubernetes.io/service-name\": \"%s\"}}, \"addressType\": \"IPv4\", \"ports\":"
		" [{\"name\": \"http\", \"port\": 8080}], \"endpoints\": [{\"addresses\": [\"%s\"]}]}",
		name, name, backend);
}

/* A List of Services a, b and c (ClusterIPs .1, .2, .3) with their slices;
 * b's one endpoint is b_backend; `extra` (raw text) ends the items. */
static void write_abc(const char *name, const char *b_backend, const char *extra)
{
	bool yaml = !strstr(name, ".json");
	char *text;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	fputs(yaml ? "apiVersion: v1\nkind: List\nitems:\n" : "{\"apiVersion\": \"v1\", "
	      "\"kind\": \"List\", \"items\": [\n", f);
	web_items(f, yaml, "a", 1, "10.0.0.1");
	fputs(yaml ? "" : ",\n", f);
	web_items(f, yaml, "b", 2, b_backend);
	if (!strstr(extra, "no-c")) {
		fputs(yaml ? "" : ",\n", f);
		web_items(f, yaml, "c", 3, "10.0.0.3");
	}
	fputs(strstr(extra, "no-c") ? extra + 4 : extra, f);
	fputs(yaml ? "" : "]}\n", f);
	fclose(f);
	write_file(name, text);
	free(text);
}

/* The store's delta since the last flush: "ports: line; line | removed: id id". */
static char *flush_text(struct file_source *src, char *buf, size_t len)
{
	struct desired_delta delta;
	char line[512];

	assert_int_equal(store_flush(file_source_store(src), &delta), 0);
	desired_sort(&delta.set);
	snprintf(buf, len, "ports:");
	for (size_t i = 0; i < delta.set.n_svcs; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), " %s;",
			 fmt_desired(&delta.set.svcs[i], line, sizeof(line)));
	snprintf(buf + strlen(buf), len - strlen(buf), " | removed:");
	for (size_t i = 0; i < delta.n_removed; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), " %s", delta.removed[i]);
	delta_free(&delta);
	return buf;
}

static const char *svc_name_ptr(struct file_source *src, const char *name)
{
	const struct model_service *svc = store_service(file_source_store(src), "shop", name);

	assert_non_null(svc);
	return svc->name;
}

static const char *slice_name_ptr(struct file_source *src, const char *name)
{
	const struct model_slice *slice = store_slice(file_source_store(src), "shop", name);

	assert_non_null(slice);
	return slice->name;
}

#define ABC_PORTS                                                        \
	"ports: shop/a:http/TCP/v4 TCP 10.96.0.1:80 -> 10.0.0.1:8080;"      \
	" shop/b:http/TCP/v4 TCP 10.96.0.2:80 -> 10.0.0.2:8080;"            \
	" shop/c:http/TCP/v4 TCP 10.96.0.3:80 -> 10.0.0.3:8080; | removed:"

/* One changed item of a List (b's slice) marks only b's Service: the flush
 * after the load has only its service port, and the unchanged items were
 * not decoded again (the store holds the very objects of the first load).
 * JSON items are matched by their bytes, YAML ones by their parsed tree. */
static void check_one_change(const char *name)
{
	char *path = tmp_path(name), buf[1024];
	const char *a_svc, *a_slice, *c_slice, *b_slice;
	struct file_source *src;

	write_abc(name, "10.0.0.2", "");
	src = load_path(path);
	assert_string_equal(flush_text(src, buf, sizeof(buf)), ABC_PORTS);
	assert_string_equal(flush_text(src, buf, sizeof(buf)), "ports: | removed:");
	a_svc = svc_name_ptr(src, "a");
	a_slice = slice_name_ptr(src, "a-1");
	b_slice = slice_name_ptr(src, "b-1");
	c_slice = slice_name_ptr(src, "c-1");

	write_abc(name, "10.0.0.22", "");
	assert_int_equal(file_source_load(src), 0);
	assert_string_equal(flush_text(src, buf, sizeof(buf)),
			    "ports: shop/b:http/TCP/v4 TCP 10.96.0.2:80 -> 10.0.0.22:8080; | removed:");
	assert_ptr_equal(svc_name_ptr(src, "a"), a_svc);
	assert_ptr_equal(slice_name_ptr(src, "a-1"), a_slice);
	assert_ptr_equal(slice_name_ptr(src, "c-1"), c_slice);
	assert_ptr_not_equal(slice_name_ptr(src, "b-1"), b_slice);
	assert_int_equal(store_count(file_source_store(src), STORE_SERVICE), 3);
	assert_int_equal(store_count(file_source_store(src), STORE_SLICE), 3);
	file_source_close(src);
	free(path);
}

static void test_store_one_changed_item_json(void **state)
{
	(void)state;
	check_one_change("abc.json");
}

static void test_store_one_changed_item_yaml(void **state)
{
	(void)state;
	check_one_change("abc.yaml");
}

/* abc.json as first written, loaded, its first delta taken. */
static struct file_source *load_abc_flushed(const char *path, char *buf, size_t len)
{
	struct file_source *src;

	write_abc("abc.json", "10.0.0.2", "");
	src = load_path(path);
	flush_text(src, buf, len);
	return src;
}

/* Items gone from the file are deleted from the store: their service ports
 * are removed, nothing else is touched. */
static void test_store_removed_item_deletes(void **state)
{
	char *path = tmp_path("abc.json"), buf[1024];
	struct file_source *src;

	(void)state;
	src = load_abc_flushed(path, buf, sizeof(buf));
	write_abc("abc.json", "10.0.0.2", "no-c");
	assert_int_equal(file_source_load(src), 0);
	assert_string_equal(flush_text(src, buf, sizeof(buf)), "ports: | removed: shop/c:http/TCP/v4");
	assert_null(store_service(file_source_store(src), "shop", "c"));
	assert_null(store_slice(file_source_store(src), "shop", "c-1"));
	assert_int_equal(store_count(file_source_store(src), STORE_SERVICE), 2);
	file_source_close(src);
	free(path);
}

/* A broken item (not JSON) voids its List: the store keeps the last good
 * state, nothing is touched; an invalid object (a bad clusterIP) keeps its
 * last good version; fixed, the file applies, with the deletion it carries. */
static void test_store_broken_item_keeps_last_good(void **state)
{
	char *path = tmp_path("abc.json"), buf[1024];
	struct file_source *src;

	(void)state;
	src = load_abc_flushed(path, buf, sizeof(buf));
	write_abc("abc.json", "10.0.0.22", "no-c,\n{\"kind\": \"Service\", \"metadata\": }");
	assert_int_equal(file_source_load(src), 0);
	assert_int_equal(file_source_stats(src)->parse_errors, 1);
	assert_string_equal(flush_text(src, buf, sizeof(buf)), "ports: | removed:");
	assert_int_equal(store_count(file_source_store(src), STORE_SERVICE), 3);

	write_abc("abc.json", "10.0.0.2", ",\n{\"kind\": \"Service\", \"metadata\": {\"name\": \"a\","
		  " \"namespace\": \"shop\"}, \"spec\": {\"clusterIP\": \"10.96.0.300\"}}");
	assert_int_equal(file_source_load(src), 0);
	assert_int_equal(file_source_stats(src)->objects_skipped, 1);
	assert_string_equal(flush_text(src, buf, sizeof(buf)), "ports: | removed:");

	write_abc("abc.json", "10.0.0.22", "no-c");
	assert_int_equal(file_source_load(src), 0);
	assert_string_equal(flush_text(src, buf, sizeof(buf)),
			    "ports: shop/b:http/TCP/v4 TCP 10.96.0.2:80 -> 10.0.0.22:8080; | removed:"
			    " shop/c:http/TCP/v4");
	file_source_close(src);
	free(path);
}

/* Every Service and slice of the source is the store's object itself: one
 * copy of each, wherever the last load put it. */
static void assert_store_holds_the_objects(struct file_source *src)
{
	struct model_store *st = file_source_store(src);
	size_t n_sets;
	const struct model_objects *sets = file_source_objects(src, &n_sets);

	assert_int_equal(n_sets, 1);
	for (size_t i = 0; i < sets->n_services; i++)
		assert_ptr_equal(store_service(st, sets->services[i].ns, sets->services[i].name),
				 &sets->services[i]);
	for (size_t i = 0; i < sets->n_slices; i++)
		assert_ptr_equal(store_slice(st, sets->slices[i].ns, sets->slices[i].name),
				 &sets->slices[i]);
}

/* The store holds the file source's objects, not copies: it follows those a
 * load carries over or keeps (one item changed, a broken item, an invalid
 * object keeping its last good version) to where they are now. */
static void test_store_holds_the_source_objects(void **state)
{
	char *path = tmp_path("abc.json"), buf[1024];
	const struct model_service *svc;
	struct file_source *src;

	(void)state;
	src = load_abc_flushed(path, buf, sizeof(buf));
	assert_store_holds_the_objects(src);
	svc = store_service(file_source_store(src), "shop", "a");
	write_abc("abc.json", "10.0.0.22", "");
	assert_int_equal(file_source_load(src), 0);
	assert_store_holds_the_objects(src);
	/* One item changed in place: the others stay where they are (the
	 * store has nothing to follow, whatever the number of objects). */
	assert_ptr_equal(store_service(file_source_store(src), "shop", "a"), svc);
	write_abc("abc.json", "10.0.0.2", ",\n{\"kind\": \"Service\", \"metadata\": }");
	assert_int_equal(file_source_load(src), 0);
	assert_store_holds_the_objects(src);
	write_abc("abc.json", "10.0.0.2", ",\n{\"kind\": \"Service\", \"metadata\": {\"name\": \"a\","
		  " \"namespace\": \"shop\"}, \"spec\": {\"clusterIP\": \"10.96.0.300\"}}");
	assert_int_equal(file_source_load(src), 0);
	assert_store_holds_the_objects(src);
	assert_string_equal(flush_text(src, buf, sizeof(buf)),
			    "ports: shop/b:http/TCP/v4 TCP 10.96.0.2:80 -> 10.0.0.2:8080; | removed:");
	file_source_close(src);
	free(path);
}

/* A List of n Services s0..s<n-1> (no slices) in order, or reversed. */
static void write_many(const char *name, int n, bool reversed)
{
	char *text;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	fputs("{\"kind\": \"List\", \"items\": [\n", f);
	for (int k = 0; k < n; k++) {
		int i = reversed ? n - 1 - k : k;

		fprintf(f, "%s{\"kind\": \"Service\", \"metadata\": {\"name\": \"s%d\"}, "
			"\"spec\": {\"clusterIP\": \"10.96.1.%d\", \"ports\": [{\"port\": 80}]}}\n",
			k ? "," : "", i, i + 1);
	}
	fputs("]}\n", f);
	fclose(f);
	write_file(name, text);
	free(text);
}

/* Items that moved (the List reversed, more than the few places looked at
 * first) are still found by their bytes: nothing is decoded again, no
 * Service touched; the store follows the objects to their new places. */
static void test_store_moved_items_not_decoded(void **state)
{
	char *path = tmp_path("many.json"), buf[4096], name[16];
	const char *ptrs[40];
	struct file_source *src;

	(void)state;
	write_many("many.json", 40, false);
	src = load_path(path);
	flush_text(src, buf, sizeof(buf));
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		ptrs[i] = store_service(file_source_store(src), "default", name)->name;
	}
	write_many("many.json", 40, true);
	assert_int_equal(file_source_load(src), 0);
	assert_store_holds_the_objects(src);
	assert_string_equal(flush_text(src, buf, sizeof(buf)), "ports: | removed:");
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		assert_ptr_equal(store_service(file_source_store(src), "default", name)->name, ptrs[i]);
	}
	file_source_close(src);
	free(path);
}

/* A Service defined in two files of a folder: the store has the later
 * file's (with a warning); that one gone, the earlier one's takes its place;
 * that one gone too, the Service goes. */
static void test_store_folder_redefinition(void **state)
{
	struct file_source *src;
	char buf[1024], log[4096];

	(void)state;
	write_file("a.yaml", WEB_FILE("10.96.0.1", "80", "w1", "10.0.0.1"));
	write_file("b.yaml", WEB_FILE("10.96.0.7", "81", "w2", "10.0.0.2"));
	src = file_source_open(tmpdir);
	assert_non_null(src);
	load_logged(src, log, sizeof(log));
	assert_logged(log, "Service shop/web is defined more than once: the last one is used");
	assert_string_equal(flush_text(src, buf, sizeof(buf)),
			    "ports: shop/web:http/TCP/v4 TCP 10.96.0.7:81 -> 10.0.0.1:8080 "
			    "10.0.0.2:8080; | removed:");
	remove_file("b.yaml");
	assert_int_equal(file_source_load(src), 0);
	assert_string_equal(flush_text(src, buf, sizeof(buf)),
			    "ports: shop/web:http/TCP/v4 TCP 10.96.0.1:80 -> 10.0.0.1:8080; | removed:");
	remove_file("a.yaml");
	assert_int_equal(file_source_load(src), 0);
	assert_string_equal(flush_text(src, buf, sizeof(buf)), "ports: | removed: shop/web:http/TCP/v4");
	assert_int_equal(store_count(file_source_store(src), STORE_SERVICE), 0);
	assert_int_equal(store_count(file_source_store(src), STORE_SLICE), 0);
	file_source_close(src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_snapshot_yaml),
		cmocka_unit_test(test_fixture_snapshot_json),
		cmocka_unit_test(test_fixture_objects_yaml),
		cmocka_unit_test(test_yaml_scalar_typing_and_flow_style),
		cmocka_unit_test(test_yaml_errors_name_document_and_line),
		TMP_TEST(test_multi_document_yaml),
		TMP_TEST(test_list_flattened),
		TMP_TEST(test_byte_order_mark_skipped),
		TMP_TEST(test_invalid_object_skipped),
		TMP_TEST(test_unchanged_file_not_decoded_again),
		TMP_TEST(test_quick_same_size_rewrite_seen),
		TMP_TEST(test_bad_edit_keeps_last_good_content),
		cmocka_unit_test(test_yaml_split_pieces),
		TMP_TEST(test_broken_document_keeps_the_others),
		TMP_TEST(test_invalid_edit_keeps_last_good_version),
		TMP_TEST(test_list_item_invalid),
		TMP_TEST(test_nameless_object_keeps_file),
		TMP_TEST(test_invalid_slice_keeps_backends),
		TMP_TEST(test_folder_source),
		TMP_TEST(test_folder_later_file_redefines_service),
		TMP_TEST(test_folder_bad_edit_keeps_that_file),
		TMP_TEST(test_inotify_file_rename_replace),
		TMP_TEST(test_inotify_folder_tmp_then_mv),
		TMP_TEST(test_missing_paths),
		TMP_TEST(test_big_file_keeps_only_objects),
		TMP_TEST(test_items_before_kind),
		TMP_TEST(test_b22_file_source_nodes),
		TMP_TEST(test_b22_folder_last_node_wins),
		cmocka_unit_test(test_b22_api_node_addresses_to_store),
		TMP_TEST(test_broken_item_voids_its_document),
		TMP_TEST(test_json_attempt_restarts_as_yaml),
		TMP_TEST(test_yaml_across_chunks),
		TMP_TEST(test_store_one_changed_item_json),
		TMP_TEST(test_store_one_changed_item_yaml),
		TMP_TEST(test_store_removed_item_deletes),
		TMP_TEST(test_store_broken_item_keeps_last_good),
		TMP_TEST(test_store_folder_redefinition),
		TMP_TEST(test_store_moved_items_not_decoded),
		TMP_TEST(test_store_holds_the_source_objects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
