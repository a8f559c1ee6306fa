"""The Python example of docs/CLIENT.md, taken from the document itself.

The first ```python block after the "## The Python client" heading is the example; tests
run it as written, with TOKENSAMPLER_SERVER pointing at their server.
"""

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def docs_example() -> str:
    with open(os.path.join(REPO, "docs", "CLIENT.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("\n## The Python client", 1)
    assert len(section) == 2, "docs/CLIENT.md has no '## The Python client' section"
    match = re.search(r"```python\n(.*?)```", section[1], re.S)
    assert match, "no ```python block in docs/CLIENT.md's Python section"
    return match.group(1)
