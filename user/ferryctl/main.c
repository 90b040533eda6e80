/* ferryctl: inspect the live datapath (services, backends, status) and
 * explain its choices. */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "ferryctl/ctl.h"

static const char usage[] =
	"usage: ferryctl [--bpffs DIR] COMMAND [-o json] [--maps]\n"
	"\n"
	"  service list    frontends and their backends\n"
	"  backend list    every backend with its state\n"
	"  ct list         flows of the per-packet path (NodePort, LB IPs, externalIPs)\n"
	"  status          programs (socket hooks; per-packet links by device and XDP mode),\n"
	"                  published generation, counters, maps' capacity and memory\n"
	"    --maps        also each map's entries (reads every map: slow at scale)\n"
	"  explain ADDRESS:PORT[/tcp|/udp|/sctp] [CLIENT]\n"
	"                  which backend set that frontend gives a client, and why\n"
	"    --netns PATH  a client on the node in that network namespace\n"
	"                  (/var/run/netns/NAME, /proc/PID/ns/net)\n"
	"    --pid PID     a process on the node: its network namespace and cgroup\n"
	"    --cgroup PATH a cgroup on the node: whether ferry serves it\n"
	"    --source ADDRESS[:PORT]  a client outside the node (the per-packet path)\n"
	"                  (no CLIENT: ferryctl's own network namespace and cgroup)\n"
	"\n"
	"  --bpffs DIR     where ferryd pinned its maps (default /sys/fs/bpf/ferry)\n";

void ctl_print_json(cJSON *root)
{
	char *text = cJSON_Print(root);

	if (text)
		printf("%s\n", text);
	cJSON_free(text);
	cJSON_Delete(root);
}

static int run(const char *cmd, const char *sub, const char *bpffs, bool json, bool count,
	       const struct ctl_explain_args *explain)
{
	struct dp_maps maps;
	int ret = 2;

	if (dp_maps_open_pinned(bpffs, &maps)) {
		fprintf(stderr, "ferryctl: no ferry datapath pinned under %s\n", bpffs);
		return 1;
	}
	if (strcmp(cmd, "service") == 0 && sub && strcmp(sub, "list") == 0)
		ret = ctl_service_list(&maps, json);
	else if (strcmp(cmd, "backend") == 0 && sub && strcmp(sub, "list") == 0)
		ret = ctl_backend_list(&maps, json);
	else if (strcmp(cmd, "ct") == 0 && sub && strcmp(sub, "list") == 0)
		ret = ctl_ct_list(&maps, json);
	else if (strcmp(cmd, "status") == 0)
		ret = ctl_status(&maps, bpffs, json, count);
	else if (strcmp(cmd, "explain") == 0 && sub)
		ret = ctl_explain(&maps, bpffs, explain, json);
	else
		fputs(usage, stderr);
	dp_maps_close(&maps);
	return ret;
}

int main(int argc, char **argv)
{
	const char *bpffs = "/sys/fs/bpf/ferry";
	const char *words[2] = { NULL, NULL };
	int n_words = 0;
	bool json = false, count = false;
	struct ctl_explain_args explain = { 0 };

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--bpffs") == 0 && i + 1 < argc) {
			bpffs = argv[++i];
		} else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			json = strcmp(argv[++i], "json") == 0;
		} else if (strcmp(argv[i], "--netns") == 0 && i + 1 < argc) {
			explain.netns = argv[++i];
		} else if (strcmp(argv[i], "--pid") == 0 && i + 1 < argc) {
			explain.pid = argv[++i];
		} else if (strcmp(argv[i], "--cgroup") == 0 && i + 1 < argc) {
			explain.cgroup = argv[++i];
		} else if (strcmp(argv[i], "--source") == 0 && i + 1 < argc) {
			explain.source = argv[++i];
		} else if (strcmp(argv[i], "--maps") == 0) {
			count = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (n_words < 2 && argv[i][0] != '-') {
			words[n_words++] = argv[i];
		} else {
			fputs(usage, stderr);
			return 2;
		}
	}
	if (!words[0]) {
		fputs(usage, stderr);
		return 2;
	}
	explain.frontend = words[1];
	log_set_level(LOG_WARN);
	return run(words[0], words[1], bpffs, json, count, &explain);
}
