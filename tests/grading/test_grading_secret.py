"""The course secret (lrpkit.grading.run.secret): made once, kept private, refused when broken."""

import stat

import pytest

from lrpkit.grading.run import secret


def test_made_once_private_and_read_back(tmp_path, capsys):
    path = tmp_path / "course" / "secret"
    first = secret.load(path)
    assert "made a new course secret" in capsys.readouterr().err
    assert len(first) == secret.BYTES and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret.load(path) == first and capsys.readouterr().err == ""
    assert secret.fingerprint(first) != first.hex()[:12]


def test_a_broken_or_missing_secret_says_what_to_do(tmp_path):
    bad = tmp_path / "bad"
    bad.write_text("not hex")
    with pytest.raises(secret.SecretError, match="not a course secret"):
        secret.load(bad)
    with pytest.raises(secret.SecretError, match="no course secret"):
        secret.load(tmp_path / "missing", create=False)
    assert not (tmp_path / "missing").exists()
