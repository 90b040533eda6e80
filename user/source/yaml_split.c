/* Cutting a YAML stream into its documents at the markers, which YAML keeps
 * out of any content at column 0, so the cut needs no parsing. */
#include <string.h>

#include "source/yaml_doc.h"

/* Whether the line at p starts with the marker (--- or ...) followed by the
 * end of the line, a space or a tab. */
static bool yaml_split_marker(const char *p, const char *end, const char *marker)
{
	if (end - p < 3 || memcmp(p, marker, 3) != 0)
		return false;
	return end - p == 3 || p[3] == '\n' || p[3] == '\r' || p[3] == ' ' || p[3] == '\t';
}

/* A line that is not blank, a comment or a directive. */
static bool yaml_split_content(const char *p, const char *end)
{
	const char *c = p;

	while (c < end && (*c == ' ' || *c == '\t'))
		c++;
	return c < end && *c != '\n' && *c != '\r' && *c != '#' && *p != '%';
}

enum yaml_split yaml_split_line(const char *p, const char *eol, bool *content)
{
	if (*p == '-' && yaml_split_marker(p, eol, "---")) {
		if (*content)
			return YAML_SPLIT_BEFORE;
		*content = true;
		return YAML_SPLIT_IN;
	}
	if (!*content)
		*content = yaml_split_content(p, eol);
	return *p == '.' && yaml_split_marker(p, eol, "...") ? YAML_SPLIT_AFTER : YAML_SPLIT_IN;
}

bool yaml_split_next(const char *buf, size_t len, struct yaml_piece *piece)
{
	const char *start = buf + piece->next, *end = buf + len, *p = start, *eol;
	size_t line = piece->next_line ? piece->next_line : 1, at = line;
	bool content = false;
	enum yaml_split cut = YAML_SPLIT_IN;

	if (start >= end)
		return false;
	for (; p < end && cut == YAML_SPLIT_IN; at++) {
		eol = memchr(p, '\n', (size_t)(end - p));
		eol = eol ? eol + 1 : end;
		cut = yaml_split_line(p, eol, &content);
		if (cut == YAML_SPLIT_BEFORE)
			break;
		p = eol;
	}
	*piece = (struct yaml_piece){ .text = start, .len = (size_t)(p - start), .line = line,
				      .next = (size_t)(p - buf), .next_line = at };
	return true;
}
