"""The Gradient x Input / LRP course kit's package, laid out by audience.

- ``selfcheck/``: the checks students get (shipped in their bundle): ``config``, ``onepixel``,
  ``observe``, ``judge``, ``judge_lrp``, ``checks``, ``faithfulness_checks``, ``tripwire``.
- ``explorer/``: the gamma explorer (shipped): ``engine`` (its cached LRP), ``widget``.
- ``reference/``: the instructor's answers, never shipped: ``lrp``, ``references``,
  ``perturbation``.
- ``authoring/``: what makes the student material: ``solutions``, ``student``, ``course_url``.
- ``grading/``: the grader (``intake/``, ``sandbox/``, ``run/``, ``results/``).
- ``bench/``: the benchmarks; ``sheet`` (the sheet's numbers), ``layout`` (folders, what
  students get), ``demo`` and ``tasks`` (the README's two commands).

Nothing here is imported by ``utils.py``. This file imports nothing either, so the student
bundle ships without the reference solution; ``from lrpkit import checks`` (what the
notebooks write) and ``faithfulness_checks`` resolve lazily to their ``selfcheck`` modules.
"""

import importlib

_SHIPPED_ALIASES = {
    "checks": "lrpkit.selfcheck.checks",
    "faithfulness_checks": "lrpkit.selfcheck.faithfulness_checks",
}


def __getattr__(name):
    if name in _SHIPPED_ALIASES:
        return importlib.import_module(_SHIPPED_ALIASES[name])
    raise AttributeError(f"module 'lrpkit' has no attribute {name!r}")
