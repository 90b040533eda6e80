"""Label and field selectors as the Kubernetes API server parses them.

parse_labels(text) and parse_fields(text) return a list of terms; each term
is a function obj -> bool, and an object matches when every term does.
Both raise SelectorError (answered as 400 BadRequest) on bad input.

Label selector terms, comma-separated (commas inside parentheses belong to
the set): `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`,
`k>N`, `k<N`. As in Kubernetes, `k!=v` and `k notin (...)` also match
objects without the label k.

Field selector terms: `metadata.name` and `metadata.namespace` with `=`,
`==` or `!=`; any other field is "not supported" (400).
"""

import re

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_NAME_RE = re.compile(r"^%s$" % _NAME)
_DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

_SET_RE = re.compile(r"^([^\s!=<>(),]+)\s+(in|notin)\s*\(([^()]*)\)$")
_CMP_RE = re.compile(r"^([^\s!=<>(),]+)\s*(==|=|!=|>|<)\s*([^\s!=<>(),]*)$")
_KEY_RE = re.compile(r"^([^\s!=<>(),]+)$")

FIELDS = ("metadata.name", "metadata.namespace")


class SelectorError(ValueError):
    pass


def _check_key(key):
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN_RE.match(prefix)):
        raise SelectorError("invalid label key %r: prefix must be a DNS subdomain" % key)
    if not name or len(name) > 63 or not _NAME_RE.match(name):
        raise SelectorError("invalid label key %r: name part must be 63 characters or less, "
                            "alphanumeric, '-', '_' or '.'" % key)


def _check_value(value):
    if value and (len(value) > 63 or not _NAME_RE.match(value)):
        raise SelectorError("invalid label value: %r: must be 63 characters or less, "
                            "alphanumeric, '-', '_' or '.'" % value)


def split_terms(text):
    """Split on the commas that are not inside parentheses."""
    terms, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
            if depth > 1:
                raise SelectorError("nested parentheses in selector %r" % text)
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError("unbalanced parentheses in selector %r" % text)
        if ch == "," and depth == 0:
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise SelectorError("unbalanced parentheses in selector %r" % text)
    terms.append("".join(cur))
    return [t.strip() for t in terms]


def _labels(obj):
    return (obj.get("metadata") or {}).get("labels") or {}


def _label_term(term):
    if not term:
        raise SelectorError("found '', expected: identifier")
    if term.startswith("!"):
        key = term[1:].strip()
        if not _KEY_RE.match(key):
            raise SelectorError("found %r, expected: identifier after '!'" % term)
        _check_key(key)
        return lambda o: key not in _labels(o)
    m = _SET_RE.match(term)
    if m:
        key, op, inner = m.group(1), m.group(2), m.group(3)
        _check_key(key)
        values = [v.strip() for v in inner.split(",")]
        if inner.strip() == "":
            raise SelectorError("for 'in', 'notin' operators, values set can't be empty")
        for v in values:
            if not v and len(values) > 1:
                raise SelectorError("found '', expected: identifier in set %r" % term)
            _check_value(v)
        vs = frozenset(values)
        if op == "in":
            return lambda o: key in _labels(o) and _labels(o)[key] in vs
        return lambda o: key not in _labels(o) or _labels(o)[key] not in vs
    m = _CMP_RE.match(term)
    if m:
        key, op, value = m.groups()
        _check_key(key)
        if op in ("=", "=="):
            _check_value(value)
            return lambda o: _labels(o).get(key) == value
        if op == "!=":
            _check_value(value)
            return lambda o: _labels(o).get(key) != value
        try:
            n = int(value)
        except ValueError:
            raise SelectorError("for 'Gt', 'Lt' operators, the value must be an integer: %r" % term)
        return lambda o: _int_label(o, key, n, op)
    m = _KEY_RE.match(term)
    if m:
        _check_key(term)
        return lambda o: term in _labels(o)
    raise SelectorError("unable to parse requirement: %r" % term)


def _int_label(obj, key, n, op):
    try:
        v = int(_labels(obj)[key])
    except (KeyError, ValueError):
        return False
    return v > n if op == ">" else v < n


def parse_labels(text):
    """Terms of a labelSelector; [] (everything) for an empty one."""
    if text is None or text.strip() == "":
        return []
    return [_label_term(t) for t in split_terms(text)]


def _field_term(term):
    m = re.match(r"^([^=!]+?)\s*(==|=|!=)\s*(.*)$", term)
    if not m:
        raise SelectorError("invalid selector: %r; can't understand %r" % (term, term))
    field, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
    if field not in FIELDS:
        raise SelectorError('field label not supported: %s' % field)
    part = field.split(".", 1)[1]
    if op == "!=":
        return lambda o: (o.get("metadata") or {}).get(part, "") != value
    return lambda o: (o.get("metadata") or {}).get(part, "") == value


def parse_fields(text):
    """Terms of a fieldSelector; [] (everything) for an empty one."""
    if text is None or text.strip() == "":
        return []
    terms = text.split(",")
    if any(not t.strip() for t in terms):
        raise SelectorError("invalid selector: %r; empty term" % text)
    return [_field_term(t.strip()) for t in terms]


def matches(terms, obj):
    for t in terms:
        if not t(obj):
            return False
    return True
