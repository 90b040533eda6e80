/* The kubeconfig reader on any file. Its folder holds a token file and a
 * CA file (as tests/apiserver/mkkubeconfig.sh names them), so that the
 * paths a kubeconfig names can resolve. */
#include "fuzz.h"

#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "kube/config.h"

static const char ca_pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *path, *dir;

	(void)argc;
	(void)argv;
	log_set_level(LOG_DEBUG);
	free(fuzz_file("token", (const uint8_t *)"fuzz-token\n", 11));
	path = fuzz_file("ca.crt", (const uint8_t *)ca_pem, strlen(ca_pem));
	/* pki/ca.crt too */
	dir = strdup(path);
	if (!dir)
		abort();
	strcpy(strrchr(dir, '/'), "/pki");
	if (mkdir(dir, 0700) < 0)
		abort();
	free(dir);
	free(path);
	free(fuzz_file("pki/ca.crt", (const uint8_t *)ca_pem, strlen(ca_pem)));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *path = fuzz_file("kubeconfig", data, size);
	struct kube_config cfg;
	char err[1024];

	if (kube_config_from_kubeconfig(path, &cfg, err, sizeof(err)) == 0) {
		/* What config.h promises, and what ferryd does next with it. */
		char *url = kube_config_url(&cfg, "/api/v1/services");

		if (!cfg.server || !cfg.host || !*cfg.host || cfg.port < 1 || cfg.port > 65535 ||
		    !url || strncmp(url, "http", 4) != 0)
			abort();
		free(url);
		kube_token_get(&cfg, true);
		kube_config_free(&cfg);
	}
	free(path);
	return 0;
}
