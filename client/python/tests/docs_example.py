"""The Python example of docs/CLIENT.md, taken from the document itself.

The first ```python block after the "## The Python client" heading is the example, the
first after "### Shared memory" the shared memory one; tests run them as written, with
TOKENSAMPLER_SERVER pointing at their server.
"""

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def docs_example(heading: str = "## The Python client") -> str:
    """The first ```python block after `heading` (a whole line of docs/CLIENT.md)."""
    with open(os.path.join(REPO, "docs", "CLIENT.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split(f"\n{heading}\n", 1)
    assert len(section) == 2, f"docs/CLIENT.md has no {heading!r} section"
    match = re.search(r"```python\n(.*?)```", section[1], re.S)
    assert match, f"no ```python block after {heading!r} in docs/CLIENT.md"
    return match.group(1)
