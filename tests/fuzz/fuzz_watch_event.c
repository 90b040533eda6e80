/* The events of a watch stream: each line of the input goes to
 * watch_event_line as the framer would hand it over, and each object to the
 * decoder as the kube source does. A line that makes the watch drop its
 * stream is followed by a new stream, as after a rewatch. */
#include "fuzz.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "kube/watch_priv.h"
#include "model/model.h"
#include "watch_object.h"

static void on_list(void *ctx, struct watch *w)
{
	(void)ctx;
	(void)w;
}

static const struct watch_handler handler = {
	.list_begin = on_list,
	.object = fuzz_watch_object,
	.list_end = on_list,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_DEBUG);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl;
	struct watch w;
	char *line;
	size_t len;

	if (watch_init(&w, "services", "Service", "/api/v1/services", "", 1 << 20, &handler,
		       NULL) < 0)
		abort();
	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		len = (size_t)(nl - p);
		if (!len)
			continue;
		/* As the framer hands it over: len bytes (NULs too), then a NUL. */
		line = malloc(len + 1);
		if (!line)
			abort();
		memcpy(line, p, len);
		line[len] = '\0';
		if (watch_event_line(line, len, &w) != 0)
			watch_reset_request(&w);
		free(line);
	}
	watch_free(&w);
	return 0;
}
