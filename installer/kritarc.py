"""Switch the Krita plug-in on in kritarc, and back to exactly what it was.

Krita loads a Python plug-in only when its settings file has `[python] enable_<name>=true`.
The edit is textual and minimal — one line, plus the `[python]` section when it is missing —
so the rest of the user's settings survive byte for byte, and `restore_enable()` undoes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SECTION = "python"
HEADER = re.compile(r"^\s*\[(?P<name>[^\]]*)\]")


@dataclass
class Change:
    """What set_enable() did, kept in the install record for the uninstall."""

    previous: str | None  # the key's old value; None when the key was absent
    section_added: bool  # True when the [python] section did not exist
    separator: str  # text inserted before an appended section ("", "\n" or "\n\n")


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _section_range(lines: list[str]) -> tuple[int, int] | None:
    """[header index, end index) of the [python] section, or None."""
    start = None
    for index, line in enumerate(lines):
        match = HEADER.match(line)
        if not match:
            continue
        if start is not None:
            return start, index
        if match.group("name").strip() == SECTION:
            start = index
    return None if start is None else (start, len(lines))


def _key_index(lines: list[str], span: tuple[int, int], key: str) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for index in range(span[0] + 1, span[1]):
        if pattern.match(lines[index]):
            return index
    return None


def _value(line: str) -> str:
    return line.split("=", 1)[1].strip()


def read_enable(text: str, key: str) -> str | None:
    """The value of `key` in the [python] section, or None."""
    lines = text.splitlines(keepends=True)
    span = _section_range(lines)
    index = None if span is None else _key_index(lines, span, key)
    return None if index is None else _value(lines[index])


def set_enable(text: str, key: str, value: str = "true") -> tuple[str, Change]:
    """Return the text with `[python] key=value` and what changed."""
    newline = _newline(text)
    lines = text.splitlines(keepends=True)
    span = _section_range(lines)
    entry = f"{key}={value}{newline}"
    if span is None:
        separator = ""
        if text and not text.endswith(("\n", "\r")):
            separator = newline
        if text.strip() and not text.endswith(f"{newline}{newline}"):
            separator += newline
        return text + separator + f"[{SECTION}]{newline}" + entry, Change(None, True, separator)
    index = _key_index(lines, span, key)
    if index is not None:
        previous = _value(lines[index])
        ending = newline if lines[index].endswith(("\n", "\r")) else ""
        lines[index] = f"{key}={value}{ending}"
        return "".join(lines), Change(previous, False, "")
    last = span[0]  # insert after the section's last non-blank line, keeping its spacing
    for index in range(span[0] + 1, span[1]):
        if lines[index].strip():
            last = index
    if not lines[last].endswith(("\n", "\r")):
        lines[last] += newline
    lines.insert(last + 1, entry)
    return "".join(lines), Change(None, False, "")


def restore_enable(text: str, key: str, change: Change) -> str:
    """Undo set_enable(): the old value back, or the line (and a section we added) removed."""
    lines = text.splitlines(keepends=True)
    span = _section_range(lines)
    index = None if span is None else _key_index(lines, span, key)
    if span is None or index is None:
        return text
    if change.previous is not None:
        ending = _newline(text) if lines[index].endswith(("\n", "\r")) else ""
        lines[index] = f"{key}={change.previous}{ending}"
        return "".join(lines)
    del lines[index]
    span = (span[0], span[1] - 1)
    section_body = [line for line in lines[span[0] + 1 : span[1]] if line.strip()]
    if not change.section_added or section_body:
        return "".join(lines)
    at_end = span[1] == len(lines)
    del lines[span[0] : span[1]]
    if at_end:
        remaining = "".join(lines)
        if change.separator and remaining.endswith(change.separator):
            remaining = remaining[: -len(change.separator)]
        return remaining
    return "".join(lines)  # Krita rewrote the file meanwhile: drop only our empty section
