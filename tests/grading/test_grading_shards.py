"""Grading over several machines (lrpkit.grading.results.shards): --shard K/N, then merge."""

import shutil

import pytest
from crafting import (
    CELL_TIMEOUT,
    IMPORTS,
    WRONG_GXI,
    code,
    good_cells,
    nb_bytes,
    solution_source,
    write_submissions,
)

from lrpkit.grading import cli
from lrpkit.grading.course import load_course
from lrpkit.grading.pipeline import grade
from lrpkit.grading.results import details
from lrpkit.grading.results.shards import Shard, ShardError, merge


def test_a_split_is_a_partition_whatever_the_listing_order():
    students = [f"s{n:03d}" for n in range(300)]
    parts = [[s for s in students if Shard(k, 3).owns(s)] for k in (1, 2, 3)]
    assert sorted(sum(parts, [])) == students
    assert all(60 < len(part) < 140 for part in parts), [len(p) for p in parts]
    assert [s for s in reversed(students) if Shard(2, 3).owns(s)] == parts[1][::-1]
    assert Shard.parse("2/3") == Shard(2, 3)
    for bad in ("0/3", "4/3", "2", "a/b"):
        with pytest.raises(ShardError):
            Shard.parse(bad)


@pytest.fixture(scope="module")
def sharded(tiny, tmp_path_factory):
    base = tmp_path_factory.mktemp("shards")
    course_root = base / "course"
    shutil.copytree(tiny, course_root)
    subs = {
        "ann.ipynb": nb_bytes(good_cells()),
        "bob.ipynb": nb_bytes([IMPORTS, WRONG_GXI, code(solution_source("conv"))]),
        "cy.ipynb": nb_bytes([IMPORTS, code(solution_source("gxi"))]),
        "dee.ipynb": b"{not json",
        "eve.ipynb": nb_bytes([IMPORTS, code("raise ValueError('no')"), *good_cells()[1:]]),
        "fay.ipynb": nb_bytes(good_cells()),
    }
    write_submissions(base / "subs", subs)
    course = load_course(course_root)
    options = dict(course=course, root=course_root, cell_timeout=CELL_TIMEOUT, progress=False)
    grade(base / "subs", base / "whole", workers=2, **options)
    for k in (1, 2, 3):
        grade(base / "subs", base / f"part{k}", workers=2, shard=Shard(k, 3), **options)
    return base


def test_three_shards_merged_give_the_grades_of_one_run(sharded):
    parts = [sharded / f"part{k}" for k in (3, 1, 2)]
    assert cli.main(["merge", "--out", str(sharded / "merged"), *map(str, parts)]) == 0
    for name in ("grades.csv", "canvas.csv", "configs.jsonl"):
        whole = (sharded / "whole" / name).read_bytes()
        assert (sharded / "merged" / name).read_bytes() == whole, name
    whole = (sharded / "whole" / "grades.csv").read_bytes()
    assert whole.count(b"\r\n") == 8  # header, points possible and six students
    names = sorted(p.name for p in (sharded / "whole" / "feedback").iterdir())
    assert sorted(p.name for p in (sharded / "merged" / "feedback").iterdir()) == names
    assert len([name for name in names if name.endswith(".html")]) == 6
    for name in names:
        merged = (sharded / "merged" / "feedback" / name).read_text()
        assert merged == (sharded / "whole" / "feedback" / name).read_text()
    # the class report over all parts (the seconds differ from the whole run's)
    for name in ("code.jsonl", "similarity.csv"):
        assert (sharded / "merged" / name).read_bytes() == (sharded / "whole" / name).read_bytes()
    merged = details.read_results(sharded / "merged" / "results.jsonl")
    whole = details.read_results(sharded / "whole" / "results.jsonl")
    assert {s: {**r, "seconds": 0} for s, r in merged.items()} == {
        s: {**r, "seconds": 0} for s, r in whole.items()
    }
    report = (sharded / "merged" / "report.html").read_text()
    assert report.count('<a href="feedback/') >= 6 and 'id="submissions">6<' in report


def test_merge_refuses_incomplete_or_overlapping_shards(sharded, tmp_path):
    with pytest.raises(ShardError, match="need shards 1..3"):
        merge([sharded / "part1", sharded / "part2"], tmp_path / "out")
    with pytest.raises(ShardError, match="1..3 once each"):
        merge([sharded / "part1", sharded / "part1", sharded / "part2"], tmp_path / "out")
    with pytest.raises(ShardError, match="not a finished shard"):
        merge([sharded / "whole"], tmp_path / "out")
    with pytest.raises(ShardError, match="no part 3 of 2"):
        Shard.parse("3/2")
    assert cli.main(["merge", "--out", str(tmp_path / "x"), str(sharded / "part1")]) == 2
