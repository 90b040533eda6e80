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

bool yaml_split_next(const char *buf, size_t len, struct yaml_piece *piece)
{
	const char *start = buf + piece->next, *end = buf + len, *p = start, *eol;
	size_t line = piece->next_line ? piece->next_line : 1, at = line;
	bool content = false;

	if (start >= end)
		return false;
	for (; p < end; p = eol, at++) {
		eol = memchr(p, '\n', (size_t)(end - p));
		eol = eol ? eol + 1 : end;
		if (yaml_split_marker(p, eol, "---") && content)
			break;
		content |= yaml_split_marker(p, eol, "---") || yaml_split_content(p, eol);
		if (yaml_split_marker(p, eol, "...")) {
			p = eol;
			at++;
			break;
		}
	}
	*piece = (struct yaml_piece){ .text = start, .len = (size_t)(p - start), .line = line,
				      .next = (size_t)(p - buf), .next_line = at };
	return true;
}
