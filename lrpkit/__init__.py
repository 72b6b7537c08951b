"""The Gradient x Input / LRP course kit's package: instructor machinery and shipped checks.

Where things belong: ``sheet`` (the sheet's numbers) and ``layout`` (folders, what students
get, tags); the reference ``lrp``, ``references`` and ``perturbation`` (never shipped); the
checks students get (``config``, ``onepixel``, ``observe``, ``judge``, ``judge_lrp``,
``checks``, ``faithfulness_checks``) and the ``explorer``; notebooks (``solutions``,
``student``, ``course_url``); ``grading/``; benchmarks (``benchtools`` and the ``*_bench``
modules); ``demo`` and ``tasks``. Nothing here is imported by ``utils.py``; keep this file
free of imports so that the student bundle can ship single modules without the reference
solution.
"""
