"""The grader's command line (lrpkit.grading.cli, ``python -m lrpkit.grading``)."""

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
