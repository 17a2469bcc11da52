"""Make text from run logs, plugins and hosts safe to print on a terminal.

Labels, locations, tags, host names, file names and warnings reach carbonkit from places it does
not control (a plugin, a host name, a log written by someone else). Printed as they are, an
escape sequence among them could move the cursor, rewrite what the terminal showed (``\\r``,
``ESC [ 2 K``), set the window title, or make a hyperlink (``ESC ] 8``).
:func:`printable` removes every such sequence and control character and keeps the rest.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

# Escape sequences (ECMA-48), removed whole so that no parameter bytes are left behind:
# - control strings: OSC, DCS, SOS, PM, APC (7-bit ESC ] P X ^ _ or 8-bit 0x9d 0x90 0x98 0x9e 0x9f), up to their
#   terminator (BEL, ESC \ or ST 0x9c), else to the end of the line (a stray one costs one line, not the text);
# - CSI (ESC [ or 0x9b), parameter and intermediate bytes, one final byte;
# - any other ESC with intermediate bytes and a final byte (ESC ( B, ESC 7, ESC c ...).
_SEQUENCES = re.compile(
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)
# What is left: C0 controls but tab and newline, DEL, C1 controls, and the Unicode bidirectional
# embeddings, overrides and isolates (they reorder what a reader sees: CVE-2021-42574).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_WHITESPACE = re.compile(r"[\t\n]+")


def printable(text: str, *, single_line: bool = False) -> str:
    """Return ``text`` without terminal escape sequences and control characters.

    Removed: ESC sequences whole (CSI, OSC and the other control strings), the C0 controls but
    tab and newline (so ``\\r``, backspace and BEL go), DEL, the C1 controls (0x80 to 0x9f), and
    the bidirectional overrides and isolates (U+202A to U+202E, U+2066 to U+2069). Everything
    else, any script and emoji included, is kept as it is.

    :param text: The text; anything else is converted with :func:`str` first.
    :param single_line: Also turn each run of tabs and newlines into one space (for a table cell).
    :returns: The text, safe to write to a terminal.
    """
    if not isinstance(text, str):
        text = str(text)
    if text.isprintable():  # the common case: nothing to do (tab and newline are not "printable")
        return text
    out = _CONTROLS.sub("", _SEQUENCES.sub("", text))
    if single_line:
        out = _WHITESPACE.sub(" ", out)
    return out
