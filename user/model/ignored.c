/* The fields the model leaves out of an object it otherwise serves, each
 * named in a log line and counted (model_fields_ignored). */
#include <stdarg.h>

#include "common/log.h"
#include "model/decode_priv.h"

static uint64_t fields_ignored;

uint64_t model_fields_ignored(void)
{
	return fields_ignored;
}

void model_field_ignored(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, "model", fmt, ap);
	va_end(ap);
	fields_ignored++;
}
