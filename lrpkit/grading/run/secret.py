"""The course secret (instructors): made once per course, kept outside the kit and the bundle.

Every submission is graded on a configuration drawn from this secret and the student id
(``lrpkit.selfcheck.checks.Config.draw``), so what students can see never equals what grading
compares
with. The secret lives in the instructor's home (``~/.config/lrpkit/course-secret`` by
default, or ``--secret PATH``), readable by its owner only; grading sandboxes never see it.
Lose it and re-grading draws new configurations: the configuration each row was graded on is
recorded in grades.csv, so any verdict can still be reproduced without it.
"""

import os
import secrets
from pathlib import Path

DEFAULT = Path("~/.config/lrpkit/course-secret")
BYTES = 32


class SecretError(RuntimeError):
    """The course secret cannot be read or made; the message says what to do."""


def default_path():
    base = os.environ.get("XDG_CONFIG_HOME")
    if base:
        return Path(base) / "lrpkit" / "course-secret"
    return DEFAULT.expanduser()


def load(path=None, create=True):
    """The course secret's bytes; made (and said so on stderr) when missing and create is set."""
    path = Path(path).expanduser() if path else default_path()
    if path.is_file():
        text = path.read_text(encoding="ascii", errors="replace").strip()
        try:
            data = bytes.fromhex(text)
        except ValueError:
            data = b""
        if len(data) < 16:
            raise SecretError(
                f"{path} is not a course secret (expected {2 * BYTES} hex digits). Restore it "
                "from your backup, or move it away to start a new one (new configurations)."
            )
        return data
    if path.exists():
        raise SecretError(f"{path} exists but is not a file; pass --secret FILE")
    if not create:
        raise SecretError(f"no course secret at {path}; grade once to make one, or pass --secret")
    path.parent.mkdir(parents=True, exist_ok=True)
    data = secrets.token_bytes(BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(data.hex() + "\n")
    import sys

    print(
        f"made a new course secret in {path}: keep it (and a backup) for this course's "
        "re-grading; never put it in the repository or the student bundle",
        file=sys.stderr,
    )
    return data


def fingerprint(secret):
    """A short public id of a secret (recorded with the grades), not the secret itself."""
    import hashlib

    return hashlib.sha256(b"lrpkit-course-secret:" + secret).hexdigest()[:12]
