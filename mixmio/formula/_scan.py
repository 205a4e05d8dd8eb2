"""Low-level scanning of formula text: top-level splitting and error display."""

from __future__ import annotations

from mixmio.errors import FormulaError  # noqa: F401  (defined in mixmio.errors)

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}

_QUOTES = "'\"`"


def _unquoted(text: str) -> tuple[list[bool], int]:
    """Which characters are outside quotes (quote characters themselves are not), and the
    position of a quote that is never closed (-1 if none).

    Quotes are ``'``, ``"`` (Python strings, with backslash escapes) and backticks (formulaic
    and lme4 quoted names)."""
    outside = [False] * len(text)
    quote, qpos, escaped = "", -1, False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote != "`":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in _QUOTES:
            quote, qpos = ch, i
        else:
            outside[i] = True
    return outside, (qpos if quote else -1)


def walk(text: str):
    """Yield ``(i, ch, depth)`` for every character of ``text`` outside quotes.

    ``depth`` is the bracket depth before ``ch`` (an opening bracket is yielded at the outer
    depth, a closing one at the inner depth).  Every scanner of formula text goes through
    here, so ``|``, ``~``, ``+``, ``/`` and ``:`` inside a quoted name never act as operators.
    """
    depth = 0
    outside, _ = _unquoted(text)
    for i, ch in enumerate(text):
        if not outside[i]:
            continue
        if ch in _CLOSE:
            depth -= 1
        yield i, ch, depth
        if ch in _OPEN:
            depth += 1


def open_quote(text: str) -> int:
    """Position of a quote that is never closed, or -1."""
    return _unquoted(text)[1]


def check_brackets(text: str, formula: str, offset: int) -> None:
    """Raise at the first unbalanced bracket or unterminated quote."""
    qpos = open_quote(text)
    if qpos >= 0:
        raise FormulaError("unterminated quote", formula, offset + qpos)
    stack: list[tuple[str, int]] = []
    for i, ch, _ in walk(text):
        if ch in _OPEN:
            stack.append((ch, i))
        elif ch in _CLOSE:
            if not stack or stack[-1][0] != _CLOSE[ch]:
                raise FormulaError(f"unmatched '{ch}'", formula, offset + i)
            stack.pop()
    if stack:
        raise FormulaError(f"'{stack[-1][0]}' is never closed", formula, offset + stack[-1][1])


def split_top_level(text: str, formula: str, offset: int) -> list[tuple[str, str, int]]:
    """Split ``text`` at top-level ``+``/``-`` into ``(sign, term, position)`` triples.

    ``position`` is the index of the term in ``formula``.  Operators inside brackets or
    quotes, and the ``-`` of an exponent such as ``1e-5``, do not split.
    """
    check_brackets(text, formula, offset)
    out: list[tuple[str, str, int]] = []
    sign = "+"
    start = 0
    for i, ch, depth in walk(text):
        if ch in "+-" and depth == 0 and not _is_exponent(text, i) and not _is_power(text, i):
            _emit(out, sign, text, start, i, formula, offset, leading_ok=(i == 0 or
                  not text[start:i].strip() and not out and start == 0))
            sign = ch
            start = i + 1
    _emit(out, sign, text, start, len(text), formula, offset, leading_ok=False)
    return out


def find_top_level(text: str, chars: str) -> list[int]:
    """Positions of ``chars`` at bracket depth 0 and outside quotes."""
    return [i for i, ch, depth in walk(text) if depth == 0 and ch in chars]


def split_names(text: str, sep: str) -> list[str]:
    """Split at top-level ``sep`` (one character) outside quotes; parts are stripped."""
    cuts = find_top_level(text, sep)
    bounds = [-1, *cuts, len(text)]
    return [text[a + 1 : b].strip() for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def unquote(name: str) -> str:
    """A column name without its backticks (```my col``` -> ``my col``)."""
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == "`":
        return name[1:-1]
    return name


def _emit(out, sign, text, start, end, formula, offset, leading_ok) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        if leading_ok and not out:
            return  # a leading sign, as in "-1 + x"
        raise FormulaError("a term is missing here", formula,
                           offset + start + len(piece) - len(piece.lstrip()))
    out.append((sign, stripped, offset + start + len(piece) - len(piece.lstrip())))


def _is_exponent(text: str, i: int) -> bool:
    """True for the sign in a float literal such as ``1e-5``."""
    if i < 2 or text[i - 1] not in "eE" or not text[i - 2].isdigit():
        return False
    j = i - 2
    while j >= 0 and (text[j].isdigit() or text[j] == "."):
        j -= 1
    return j < 0 or not (text[j].isalnum() or text[j] == "_")


def _is_power(text: str, i: int) -> bool:
    """True for the sign after ``**`` or ``^`` (``x**-1``)."""
    before = text[:i].rstrip()
    return before.endswith("**") or before.endswith("^")


def strip_outer_parens(text: str) -> str | None:
    """The inside of ``text`` when it is one parenthesised group, else None."""
    if not (text.startswith("(") and text.endswith(")")):
        return None
    for i, ch, depth in walk(text):
        if ch == ")" and depth == 0 and i != len(text) - 1:
            return None
    return text[1:-1]
