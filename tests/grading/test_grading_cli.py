"""The grader's command line (lrpkit.grading.cli, ``python -m lrpkit.grading``)."""

import pytest
from crafting import good_cells, nb_bytes, read_csv, write_submissions

from lrpkit.grading.cli import main


def test_command_line(tiny, tmp_path):
    subs = tmp_path / "subs"
    write_submissions(subs, {"ann.ipynb": nb_bytes(good_cells()), "bad.ipynb": b"nope"})
    args = [
        str(subs),
        "--workers",
        "1",
        "--out",
        str(tmp_path / "o"),
        "--no-progress",
        "--cell-timeout",
        "20",
        "--timeout",
        "60",
        "--root",
        str(tiny),
    ]
    assert main(args) == 0
    rows = read_csv(tmp_path / "o" / "grades.csv")
    assert (rows["ann"]["total"], rows["bad"]["status"]) == ("50", "invalid")
    assert main([str(tmp_path / "missing"), "--root", str(tiny), "--no-progress"]) == 2


def test_no_fork_and_no_sandbox_reach_the_grader(tiny, tmp_path, monkeypatch):
    import lrpkit.grading.cli as cli

    seen = []
    monkeypatch.setattr(cli, "grade", lambda *args, **kwargs: seen.append(kwargs) or [])
    (tmp_path / "subs").mkdir()
    base = [str(tmp_path / "subs"), "--root", str(tiny), "--no-progress"]
    assert main(base) == 0
    assert main([*base, "--no-fork", "--no-sandbox"]) == 0
    assert [(k["fork"], k["sandbox"]) for k in seen] == [(True, True), (False, False)]


@pytest.mark.parametrize(
    "options, words",
    [
        (["--worker", "2"], "unrecognized arguments: --worker 2"),
        (["--workers", "0"], "argument --workers: must be 1 or more (got 0)"),
        (["--workers", "-3"], "argument --workers: must be 1 or more (got -3)"),
        (["--timeout", "0"], "argument --timeout: must be more than 0 seconds"),
        (["--shard", "3/2"], "argument --shard: --shard 3/2: there is no part 3 of 2"),
        (["--shard", "2"], "argument --shard: --shard takes K/N"),
        (["--limits", "memory=lots"], "argument --limits:"),
        (["--configs", "{tmp}/old.csv"], "argument --configs: {tmp}/old.csv does not exist"),
        (["--course", "{tmp}/c.toml"], "argument --course: {tmp}/c.toml does not exist"),
        (["--times", "{tmp}"], "argument --times: {tmp} is a folder, not a file"),
        (["--due", "friday"], "argument --due: --due 'friday' is not an ISO 8601"),
        (["--late", "10%/week"], "argument --late: --late '10%/week': not a policy"),
        (["--only", "a", "--resume"], "--only re-grades single students"),
    ],
)
def test_the_command_line_says_no_and_why(options, words, tmp_path, capsys):
    options = [o.replace("{tmp}", str(tmp_path)) for o in options]
    with pytest.raises(SystemExit) as done:
        main([str(tmp_path), *options])
    assert done.value.code == 2
    assert words.replace("{tmp}", str(tmp_path)) in capsys.readouterr().err


def test_refusals_before_grading_name_the_file_or_the_folder(tiny, tmp_path, capsys):
    subs = tmp_path / "subs"
    write_submissions(subs, {"ann.ipynb": b"{"})
    base = [str(subs), "--root", str(tiny), "--no-progress", "--out", str(tmp_path / "o")]
    assert main([*base, "--late", "10%/day"]) == 2
    assert "a late policy needs a due date: give --due" in capsys.readouterr().err
    (tmp_path / "course.toml").write_text("[exercises.ex4.checks]\ncheck_conv = 5\n")
    assert main(base) == 2
    assert f"{tmp_path / 'course.toml'}: [exercises.ex4.checks] names check_conv" in (
        capsys.readouterr().err
    )
    (tmp_path / "course.toml").unlink()
    assert main([*base, "--only", "ann"]) == 2
    assert "--only re-grades students of an earlier run" in capsys.readouterr().err
    assert main(base) == 0  # ann is invalid: no grading run
    assert main([*base, "--only", "bob"]) == 2
    assert f"--only: no submission of bob in {subs}" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main([*base, "--out", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder: give another --out" in capsys.readouterr().err
    (tmp_path / "other.toml").write_text("[exercises.ex3]\npoints = 30\n")
    assert main([*base, "--course", str(tmp_path / "other.toml")]) == 2
    assert "holds a run with other points possible" in capsys.readouterr().err
