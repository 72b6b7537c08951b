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
