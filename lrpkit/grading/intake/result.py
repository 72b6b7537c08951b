"""What intake yields: one Submission per student, and the files left out (grading intake).

``collect`` (collect.py) returns an ``Intake``: the submissions, sorted by student, the files
left out (``Unmatched``, each with its reason), notes on what was ignored, and the roster's
students without a submission; ``Intake.summary()`` is the run's account of it.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Unmatched:
    """A file left out of grading (or a note about one), with the reason."""

    path: str  # relative to the download
    reason: str
    student: str = ""  # whose it is, where known


@dataclass
class Intake:
    """What a download held: one submission per student, and what was left out."""

    submissions: list  # [Submission], sorted by student
    unmatched: list = field(default_factory=list)  # [Unmatched]: left out (exit non-zero)
    notes: list = field(default_factory=list)  # [Unmatched]: ignored, superseded, no exercise
    missing: list = field(default_factory=list)  # roster keys without a submission
    unknown: list = field(default_factory=list)  # submission keys not in the roster

    def summary(self):
        """The run's summary of the intake (lines of text)."""
        subs = [s for s in self.submissions if s.origin not in ("unmatched", "roster")]
        origins = {}
        for sub in subs:
            origins[sub.origin] = origins.get(sub.origin, 0) + 1
        kinds = ", ".join(f"{n} {origin}" for origin, n in sorted(origins.items()))
        lines = [f"intake: {len(subs)} submissions" + (f" ({kinds})" if kinds else "")]
        for title, items in (("left out", self.unmatched), ("notes", self.notes)):
            if items:
                lines.append(f"{len(items)} {title}:")
                lines += [
                    f"  {u.path}" + (f" [{u.student}]" if u.student else "") + f": {u.reason}"
                    for u in items
                ]
        if self.missing:
            lines.append(f"{len(self.missing)} in the roster without a submission: ")
            lines[-1] += ", ".join(self.missing)
        if self.unknown:
            lines.append(f"{len(self.unknown)} submissions not in the roster: ")
            lines[-1] += ", ".join(self.unknown)
        return lines
