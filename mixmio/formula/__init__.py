"""The parse stage: lme4 formula text -> :class:`FormulaSpec`.

Only the mixed-model layer is parsed here: random terms ``(expr | g)``, ``(expr || g)``,
nesting ``a/b``, interaction grouping ``a:b`` and ``offset(...)``.  The fixed part and every
term's own expression stay formulaic strings; formulaic parses and materialises them in the
design stage.

>>> spec = parse_formula("y ~ x + (1 + x || school/class)")
>>> [str(t) for t in spec.random]
['1 | school', '0 + x | school', '1 | school:class', '0 + x | school:class']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mixmio.formula._scan import (
    FormulaError,
    find_top_level,
    split_names,
    split_top_level,
    strip_outer_parens,
    unquote,
    walk,
)

__all__ = ["FormulaError", "FormulaSpec", "RandomTerm", "parse_formula"]


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(expr | group)``.

    ``expr`` is a formulaic right-hand side for the term's own columns (``"1 + x"``,
    ``"0 + f"``); ``group`` names the grouping factor, ``a:b`` for an interaction of factors.
    ``correlated`` is False for the pieces of a ``||`` term.

    Examples
    --------
    >>> from mixmio.formula import parse_formula
    >>> parse_formula("y ~ x + (1 + x | school)").random
    (RandomTerm(expr='1 + x', group='school', correlated=True),)
    >>> term = RandomTerm("1", "school:class")
    >>> str(term), term.group_vars
    ('1 | school:class', ('school', 'class'))
    """

    expr: str
    group: str
    correlated: bool = True

    @property
    def group_vars(self) -> tuple[str, ...]:
        """Column names of the grouping factor, backticks removed (``a:b`` -> ``("a", "b")``).

        Examples
        --------
        >>> RandomTerm("1", "`my school`:class").group_vars
        ('my school', 'class')
        """
        return group_columns(self.group)

    def __str__(self) -> str:
        return f"{self.expr} | {self.group}"


@dataclass(frozen=True)
class FormulaSpec:
    """A parsed mixed-model formula.

    ``formula`` is the text as given, ``response`` the left-hand side, ``fixed`` the fixed
    part's right-hand side (formulaic syntax), ``random`` the :class:`RandomTerm` pieces and
    ``offsets`` the expressions inside ``offset(...)``.  Made by :func:`parse_formula`.

    Examples
    --------
    >>> spec = parse_formula("y ~ x + offset(log(t)) + (1 + x | school)")
    >>> spec.response, spec.fixed, spec.offsets
    ('y', 'x', ('log(t)',))
    >>> [str(t) for t in spec.random]
    ['1 + x | school']
    """

    formula: str
    response: str
    fixed: str
    random: tuple[RandomTerm, ...]
    offsets: tuple[str, ...] = ()

    @property
    def fixed_formula(self) -> str:
        """The two-sided formulaic formula of the fixed part.

        Examples
        --------
        >>> parse_formula("y ~ x + (1 | g)").fixed_formula
        'y ~ x'
        """
        return f"{self.response} ~ {self.fixed}"


def parse_formula(formula: str) -> FormulaSpec:
    """Parse an lme4 formula into a :class:`FormulaSpec`.

    Raises :class:`FormulaError` (a ``ValueError``) showing the formula with a caret under
    the offending position.

    Parameters
    ----------
    formula : lme4 formula text: fixed terms in formulaic syntax, random terms
        ``(expr | g)`` / ``(expr || g)`` with nesting ``a/b`` and interactions ``a:b``, and
        ``offset(...)``.

    Returns
    -------
    FormulaSpec

    Examples
    --------
    >>> spec = parse_formula("Reaction ~ Days + (Days | Subject)")
    >>> spec.response, spec.fixed, [str(t) for t in spec.random]
    ('Reaction', 'Days', ['Days | Subject'])
    >>> try:
    ...     parse_formula("y ~ x + (1 | )")
    ... except FormulaError as err:
    ...     print(err)
    random term has no grouping factor after '|'
        y ~ x + (1 | )
                     ^
    """
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a string, got {type(formula).__name__}")
    tilde = _find_tilde(formula)
    response = formula[:tilde].strip()
    if not response:
        raise FormulaError("the formula has no response on the left of '~'", formula, 0)
    rhs_start = tilde + 1
    rhs = formula[rhs_start:]
    if not rhs.strip():
        raise FormulaError("the formula has nothing on the right of '~'", formula, len(formula))

    _refuse_dot(formula)
    fixed_parts: list[str] = []
    random: list[RandomTerm] = []
    offsets: list[str] = []
    for sign, text, pos in split_top_level(rhs, formula, rhs_start):
        body = strip_outer_parens(text)
        body_off = pos + 1  # position of body[0] in the formula
        while body is not None and not _has_bar(body):  # ((1 | g)) is (1 | g), as in lme4
            lead = len(body) - len(body.lstrip())
            inner = strip_outer_parens(body.strip())
            if inner is None:
                break
            body, body_off = inner, body_off + lead + 1
        if body is not None and _has_bar(body):
            if sign == "-":
                raise FormulaError("a random term cannot be subtracted", formula, pos)
            random.extend(_parse_random(body, formula, body_off))
        elif (m_off := _OFFSET.match(text)) and text.endswith(")"):
            if sign == "-":
                raise FormulaError("an offset cannot be subtracted", formula, pos)
            inner = text[m_off.end() : -1].strip()
            if not inner:
                raise FormulaError("offset() needs an expression", formula, pos)
            offsets.append(inner)
        else:
            bar = _first_bar(text)
            if bar >= 0:
                raise FormulaError("'|' belongs in a random term of its own, written "
                                   "(expr | group) and added with '+'", formula, pos + bar)
            fixed_parts.append(f"{sign} {text}" if fixed_parts or sign == "-" else text)
    fixed = " ".join(fixed_parts).strip() or "1"
    return FormulaSpec(formula, response, fixed, tuple(random), tuple(offsets))


_OPERATORS = "~+-*/:|^()[],"


def _refuse_dot(formula: str) -> None:
    """R's ``.`` (every other column) as a term anywhere: refused with a caret (formulaic's
    own error about it is internal)."""
    for i, ch, _ in walk(formula):
        if ch != ".":
            continue
        before = formula[:i].rstrip()
        after = formula[i + 1 :].lstrip()
        if (not before or before[-1] in _OPERATORS) and (not after or after[0] in _OPERATORS):
            raise FormulaError("'.' (every other column) is not supported; list the variables "
                               "by name", formula, i)


def group_columns(group: str) -> tuple[str, ...]:
    """Column names of a grouping factor ``a:b`` (backticks removed; a ``:`` inside
    backticks is part of a name).

    Examples
    --------
    >>> group_columns("school:`class:id`")
    ('school', 'class:id')
    """
    return tuple(unquote(v) for v in split_names(group, ":"))


def _find_tilde(formula: str) -> int:
    tildes = find_top_level(formula, "~")
    if not tildes:
        raise FormulaError("the formula needs a '~' between response and terms", formula, 0)
    if len(tildes) > 1:
        raise FormulaError("the formula has more than one '~'", formula, tildes[1])
    return tildes[0]


_OFFSET = re.compile(r"offset\s*\(")


def _first_bar(text: str) -> int:
    """Position of the first ``|`` outside quotes and backticks, or -1."""
    return next((i for i, ch, _ in walk(text) if ch == "|"), -1)


def _has_bar(body: str) -> bool:
    return _top_level_bar(body) is not None


def _top_level_bar(body: str) -> tuple[int, int] | None:
    """Position and width (1 or 2) of the first top-level ``|`` or ``||`` in ``body``."""
    bars = find_top_level(body, "|")
    if not bars:
        return None
    i = bars[0]
    return i, 2 if body[i + 1 : i + 2] == "|" else 1


def _parse_random(body: str, formula: str, offset: int) -> list[RandomTerm]:
    found = _top_level_bar(body)
    assert found is not None  # called only on a body with a top-level bar (_has_bar)
    bar, width = found
    expr = body[:bar].strip()
    raw = body[bar + width :]
    group = raw.strip()
    goff = offset + bar + width + len(raw) - len(raw.lstrip())
    if not expr:
        raise FormulaError("random term has nothing before '|'", formula, offset + bar)
    if not group:
        raise FormulaError("random term has no grouping factor after '|'", formula, goff)
    second = _top_level_bar(group)
    if second is not None:
        raise FormulaError("random term has more than one '|'", formula, goff + second[0])
    groups = _expand_groups(group, formula, goff)
    if width == 1:
        split_top_level(body[:bar], formula, offset)  # '(0 ++ x | g)': as in the fixed part
    exprs = _split_uncorrelated(expr, formula, offset) if width == 2 else [expr]
    return [RandomTerm(e, g, width == 1) for g in groups for e in exprs]


def _expand_groups(group: str, formula: str, offset: int) -> list[str]:
    """``a/b/c`` -> ``[a, a:b, a:b:c]``; ``a:b`` stays one interaction factor.  Names may be
    backtick-quoted (```school id```); operators inside backticks are part of the name."""
    for i, ch, _ in walk(group):
        if ch in "+*-()[]{}~|":
            raise FormulaError(
                f"unsupported operator '{ch}' in a grouping factor (use a/b for nesting, "
                "a:b for an interaction, or two terms (1|a) + (1|b) for crossed factors; "
                "quote unusual column names with backticks)",
                formula, offset + i)
    out: list[str] = []
    for part in split_names(group, "/"):
        names = split_names(part, ":")
        bad = next((n for n in names if not (n.isidentifier() or _is_quoted(n))), None)
        if bad is not None:
            hint = "an empty name" if not bad.strip("`") else "quote it with backticks"
            raise FormulaError(f"grouping factor '{part}' is not a column name ({hint})",
                               formula, offset + max(group.find(part), 0))
        prefix = out[-1] + ":" if out else ""
        out.append(prefix + ":".join(names))
    return out


def _is_quoted(name: str) -> bool:
    return len(name) >= 3 and name[0] == name[-1] == "`"


def _split_uncorrelated(expr: str, formula: str, offset: int) -> list[str]:
    """``x1 + x2 || g`` -> intercept (unless removed) and one ``0 + term`` per term."""
    intercept = True
    terms: list[str] = []
    for sign, text, _ in split_top_level(expr, formula, offset):
        if text in ("0", "1"):
            intercept = (text == "1") and sign == "+"
            if text == "1" and sign == "-":
                intercept = False
            continue
        if sign == "-":
            raise FormulaError("only the intercept can be removed inside a random term",
                               formula, offset)
        terms.append(text)
    out = ["1"] if intercept else []
    out.extend(f"0 + {t}" for t in terms)
    return out
