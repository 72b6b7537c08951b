"""Instructor machinery for the Gradient x Input / LRP course kit (not for students).

Modules: ``lrp`` (reference explanations), ``demo`` (the kit's main figure), and the
instructor tools added next to them (references, checks, notebooks, grading, benchmarks).
Nothing here is imported by ``utils.py``; keep this file free of imports so that the
student bundle can ship single modules (checks, explorer) without the reference solution.
"""
