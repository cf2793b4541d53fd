"""Leaderboards from files: ``bench pack`` turns a run's cells into submission files, ``bench leaderboard check``
recomputes what they claim, ``build`` writes a static board, ``init`` the results repository that hosts one.

A results repository (or a pack's output folder) has this layout::

    protocols/<protocol id>.json               the test protocol: suite, preset, size, files' pixel hashes, settings
    submissions/<protocol id>/<method>.json    one method's numbers on it, with replicates and per-image values

Nothing in it is an image or a pickle: strict JSON only, so a board can be checked and built on any machine.
"""
