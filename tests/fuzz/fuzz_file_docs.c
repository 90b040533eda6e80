/* The file source's loader on any file content: read as a *.yaml and as a
 * *.json file (file_docs_read), each document decoded (file_objects_doc),
 * and the second read merged over the first, as when a file changes. */
#include "fuzz.h"

#include "common/log.h"
#include "source/file_priv.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_DEBUG);
	return 0;
}

static void fuzz_read(const char *name, const uint8_t *data, size_t size, struct file_read *rd)
{
	char *path = fuzz_file(name, data, size);

	*rd = (struct file_read){ .path = path };
	if (file_docs_read(path, file_objects_doc, rd) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct file_read yaml, json;

	fuzz_read("docs.yaml", data, size, &yaml);
	if (file_merge(&yaml, &(struct model_objects){ 0 }) < 0)
		abort();
	fuzz_read("docs.json", data, size, &json);
	file_merge(&json, &yaml.objs);
	free((char *)yaml.path);
	free((char *)json.path);
	file_read_free(&yaml);
	file_read_free(&json);
	return 0;
}
