"""An edit conflict as a three-way merge: what the form was loaded from (base), what is saved
now (theirs) and what the user sent (yours). Pure functions; the edit view renders the result.

Per field: a field the user did not touch takes the newly saved value; a field only the user
changed keeps the user's value; a field both changed differently is a conflict, shown both
ways, and the form keeps the user's value until they change it. Without a base (an old form,
a script) every field that differs is a conflict: nothing is guessed.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MERGED_FIELDS = ("name", "account_identifier", "strategy", "connector", "pair", "config")
BASE_PREFIX = "base_"  # the form's hidden copies of the values it was loaded from


@dataclass(frozen=True)
class Conflict:
    theirs: str
    yours: str

    @property
    def marked(self) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
        """Both sides cut into (text, differs) pieces, so a page can mark the difference."""
        return marked_difference(self.theirs, self.yours)


@dataclass
class EditMerge:
    values: dict[str, str]  # what the form shows next
    conflicts: dict[str, Conflict] = field(default_factory=dict)
    taken: list[str] = field(default_factory=list)  # untouched fields that took new values


def form_text(name: str, value: Any) -> str:
    """A stored value as the edit form shows it."""
    if name == "config":
        return json.dumps(value, indent=2, sort_keys=True)
    return "" if value is None else str(value)


def saved_values(bot: Any) -> dict[str, str]:
    return {name: form_text(name, getattr(bot, name)) for name in MERGED_FIELDS}


def base_values(form: Mapping[str, str]) -> dict[str, str] | None:
    """The values the form was loaded from; None when it did not carry them all."""
    if not all(BASE_PREFIX + name in form for name in MERGED_FIELDS):
        return None
    return {name: form[BASE_PREFIX + name] for name in MERGED_FIELDS}


def _canonical(name: str, text: str) -> Any:
    text = (text or "").strip()
    if name == "config":
        try:
            return json.loads(text or "{}")
        except ValueError:  # not JSON (yet): compare the text
            return text
    return text.upper() if name == "pair" else text


def same(name: str, a: str, b: str) -> bool:
    return _canonical(name, a) == _canonical(name, b)


def merge_edit(theirs: Mapping[str, str], base: Mapping[str, str] | None,
               yours: Mapping[str, str]) -> EditMerge:
    merge = EditMerge(values=dict(yours))
    for name in MERGED_FIELDS:
        mine, saved = yours.get(name, ""), theirs[name]
        if same(name, mine, saved):
            continue
        if base is not None and same(name, mine, base[name]):
            merge.values[name] = saved  # untouched here: the other save wins
            merge.taken.append(name)
        elif base is not None and same(name, saved, base[name]):
            continue  # only this user changed it
        else:
            merge.conflicts[name] = Conflict(theirs=_shown(name, saved), yours=_shown(name, mine))
    return merge


def _shown(name: str, text: str) -> str:
    """Both sides in one layout (JSON pretty-printed), so only real differences are marked."""
    value = _canonical(name, text)
    return form_text(name, value) if name == "config" and isinstance(value, dict) else text


def marked_difference(a: str, b: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """Line by line for multi-line text, character by character for one line."""
    multiline = "\n" in a or "\n" in b
    left = a.splitlines(keepends=True) if multiline else list(a)
    right = b.splitlines(keepends=True) if multiline else list(b)
    pieces_a: list[tuple[str, bool]] = []
    pieces_b: list[tuple[str, bool]] = []
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        differs = tag != "equal"
        if i2 > i1:
            pieces_a.append(("".join(left[i1:i2]), differs))
        if j2 > j1:
            pieces_b.append(("".join(right[j1:j2]), differs))
    return pieces_a, pieces_b
