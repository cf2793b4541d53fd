"""``bench leaderboard init DIR``: the layout of a results repository that hosts a board from git."""

from __future__ import annotations

from pathlib import Path

from bench.atomic import atomic_write_text
from bench.leaderboard.files import PROTOCOLS, SUBMISSIONS, LeaderboardError

CHECK_COMMAND = "bench leaderboard check ."

README = f"""# Leaderboard results

Submissions to an augan-bench leaderboard, one strict-JSON file per (protocol, method), checked by CI and built
into a static page.

    {PROTOCOLS}/<protocol id>.json             the test protocols (suite, preset, size, files' pixel hashes, settings)
    {SUBMISSIONS}/<protocol id>/<method>.json  one method's numbers: values, CIs, replicates, per-image values

## Submitting

1. Score your method with augan-bench: `bench run --suite SUITE --methods METHOD` (trained here), or translate
   the exported test inputs with your own code and `bench score --translations OUT --method NAME --protocol
   protocol.json` (see `bench data export`).
2. `bench pack RUN_FOLDER --method NAME --out . --description "..." --url "..."` in a clone of this repository:
   it writes your submission and, if new, its protocol file.
3. `{CHECK_COMMAND}` must pass; open a pull request with the new files.

The check recomputes every number that decomposes over test images from the per-image values, every replicate
of those on the protocol's shared resamples, every CI from its replicates, and refuses numbers made with
substitute weights, another image count, an unknown protocol or a second file for one (protocol, method).

## The board

    bench leaderboard build . --out site

writes `site/index.html` (self-contained: open it from disk or serve the folder as static pages),
`site/leaderboard.json` and `site/leaderboard.csv`. Submissions of one protocol are ranked by paired bootstrap
tests on the protocol's shared resamples; numbers reported in papers are shown beside them and never ranked.

## CI

Put this one step in the repository's CI (after `pip install augan-bench`):

    {CHECK_COMMAND}
"""

WORKFLOW = f"""name: check submissions
on: [push, pull_request]
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - run: pip install augan-bench
      - run: {CHECK_COMMAND}
"""


def init(root: Path) -> list[Path]:
    """Write the layout into ``root`` (new or empty, or one that has only a .git); return the files written."""
    root = Path(root)
    if root.exists() and any(p.name != ".git" for p in root.iterdir()):
        raise LeaderboardError(f"{root} is not empty; initialise a new folder (or a fresh `git init`)")
    files = {root / "README.md": README, root / ".github" / "workflows" / "check.yml": WORKFLOW,
             root / ".gitignore": "site/\n", root / PROTOCOLS / ".gitkeep": "", root / SUBMISSIONS / ".gitkeep": ""}
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    return list(files)
