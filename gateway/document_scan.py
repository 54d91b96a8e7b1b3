"""The first look at a query document: one linear pass over its tokens, before graphql-core parses it.

graphql-core's parser and validation are pure Python: tens of microseconds per field, and its
overlapping-fields rule compares every pair of fields that share a response name. A document inside the
size limits (``{ __typename }`` 9,000 times: 99 KB) held the event loop for a second and a half. So the
limits that protect the process are counted here first, with a regular expression doing the lexing: the
document's characters, its tokens, its fields as written, the fields sharing one response name in one
selection set (an inline fragment's merged into it), its fragment definitions, variable definitions and
directives. The pass stops at the
first limit exceeded, so a hostile document costs microseconds, not its whole length.

What this pass counts as written is never more than :mod:`gateway.document_shape` counts with fragments
expanded, after parsing: a refusal here is the same refusal, only earlier. The pass never refuses a
document for its syntax: a malformed one goes on to the parser, which reports it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.errors import QueryLimit, QueryLimitError

#: One token after any ignored characters (white space, commas, the byte order mark). Some alternative
#: matches at every position (an unterminated string runs to the end of its line, a character that starts
#: no token is ``junk``, the end is ``end``), so no attempt fails after scanning ahead and the pass is
#: linear whatever the text. A block string's end is found with ``str.find`` (see :func:`_block_end`).
_TOKEN = re.compile(
    r"""[\t\n\r ,\ufeff]*(?:
      (?P<comment>\#[^\n\r]*)
    | (?P<block>\"\"\")
    | (?P<string>"[^"\\\n\r]*(?:\\.[^"\\\n\r]*)*"?)
    | (?P<spread>\.\.\.)
    | (?P<open>[{(\[])
    | (?P<close>[})\]])
    | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
    | (?P<punctuator>[!$&:=@|])
    | (?P<number>-?[0-9][0-9.eE+-]*)
    | (?P<junk>.)
    | (?P<end>\Z)
    )""",
    re.VERBOSE | re.DOTALL,
)


def _block_end(text: str, start: int, budget: int) -> tuple[int, int]:
    """Where the block string whose content starts at ``start`` ends (after its closing quotes, or at the
    text's end: the first triple quote not escaped by a backslash), and how many escaped ones it holds
    (each counts as a token, so the search stops once more than ``budget`` are found)."""
    position, escaped = start, 0
    while True:
        found = text.find('"""', position)
        if found < 0 or escaped > budget:
            return len(text), escaped
        if text[found - 1] != "\\":
            return found + 3, escaped
        position, escaped = found + 3, escaped + 1


@dataclass(frozen=True)
class DocumentLimits:
    """The limits a document must keep before graphql-core validates it (each declared in gateway/limits.py)."""

    max_chars: int
    max_tokens: int
    max_fields: int
    max_repeated_fields: int
    max_fragments: int
    max_variables: int
    max_directives: int
    max_selections: int


def over(limit: QueryLimit, message: str) -> QueryLimitError:
    """The refusal of a document over ``limit``."""
    return QueryLimitError(message, limit=limit)


def repeated(name: str, limit: int) -> QueryLimitError:
    return over(QueryLimit.REPEATED_FIELDS, f"the field '{name}' is selected more than {limit} times in one place")


def scan(text: str, limits: DocumentLimits) -> QueryLimitError | None:
    """The first limit ``text`` exceeds, counted on its tokens as written, or ``None``."""
    if len(text) > limits.max_chars:
        return over(QueryLimit.DOCUMENT_SIZE, f"the document is longer than {limits.max_chars} characters")
    tokens = fields = fragments = variables = directives = 0
    #: The open brackets: a selection set is its fields' response names so far (an inline fragment's
    #: selection set is its parent's dict), anything else (arguments, lists, object values) is None.
    stack: list[dict[str, int] | None] = []
    in_value = 0  # open brackets that are not selection sets; inside them every { is an object value
    previous = "}"  # the token before: a definition starts after "}"
    expect = ""  # what the next name is in a selection set: "" a field, "dots" after "...", "type", "skip"
    inline = False  # the next { in a selection set opens an inline fragment
    position = 0
    while True:
        match = _TOKEN.match(text, position)
        assert match is not None  # some alternative matches everywhere
        kind, position = match.lastgroup, match.end()
        if kind == "end":
            break
        tokens += 1
        if kind == "block":
            position, escaped = _block_end(text, position, limits.max_tokens - tokens)
            tokens += escaped
        if tokens > limits.max_tokens:
            return over(QueryLimit.TOKENS, f"the document has more than {limits.max_tokens} tokens")
        if kind == "comment":
            continue
        lexeme = match.group(kind)  # type: ignore[arg-type]
        if kind == "open":
            if lexeme == "{" and not in_value:
                names = stack[-1] if inline and stack else None
                stack.append({} if names is None else names)
                expect, inline = "", False
            else:
                stack.append(None)
                in_value += 1
        elif kind == "close":
            if stack and stack.pop() is None:
                in_value -= 1
            elif not in_value:
                expect, inline = "", False
        elif lexeme == "@":
            directives += 1
            if directives > limits.max_directives:
                return over(QueryLimit.DIRECTIVES, f"the document has more than {limits.max_directives} directives")
            expect = "skip"  # the directive's name
        elif in_value:
            if lexeme == "$" and len(stack) == in_value:  # outside every selection set: a variable definition
                variables += 1
                if variables > limits.max_variables:
                    return over(
                        QueryLimit.VARIABLES, f"the document defines more than {limits.max_variables} variables"
                    )
        elif not stack:
            if kind == "name" and lexeme == "fragment" and previous == "}":
                fragments += 1
                if fragments > limits.max_fragments:
                    message = f"the document defines more than {limits.max_fragments} fragments"
                    return over(QueryLimit.FRAGMENTS, message)
        elif kind == "spread":
            expect, inline = "dots", True
        elif lexeme == ":":
            expect = "skip"  # an aliased field's name, after its alias
        elif kind == "name":
            if expect == "dots":
                expect, inline = ("type", True) if lexeme == "on" else ("", False)  # "... on T" or "...Fragment"
            elif expect:
                expect = ""  # a type condition, a directive's name or an aliased field's name
            else:
                fields += 1
                if fields > limits.max_fields:
                    return over(QueryLimit.FIELDS, f"the document has more than {limits.max_fields} fields")
                names = stack[-1]
                assert names is not None
                count = names[lexeme] = names.get(lexeme, 0) + 1  # the response name: the alias, if any
                if count > limits.max_repeated_fields:
                    return repeated(lexeme, limits.max_repeated_fields)
                inline = False
        previous = lexeme
    return None
