"""Protected files (lrpkit.grading.run.protect): changes noticed, originals restored, copies
kept."""

from lrpkit.grading.run.protect import Watch, protected_paths


def test_watch_restores_changed_and_deleted_files(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("A")
    b.write_text("B")
    watch = Watch([a, b], quarantine=tmp_path / "q")
    assert watch.verify() == []
    a.write_text("changed")
    b.unlink()
    assert sorted(watch.verify()) == [a, b]
    assert (a.read_text(), b.read_text()) == ("A", "B")
    assert [p.read_text() for p in (tmp_path / "q").iterdir()] == ["changed"]
    a.touch()  # same content: not a change
    assert watch.verify() == []


def test_big_files_are_remade_not_kept(tmp_path, monkeypatch):
    big = tmp_path / "big.pt"
    big.write_bytes(b"weights")
    monkeypatch.setattr(Watch, "BIG", 3)
    remade = []
    watch = Watch([big], restore_big=lambda path: remade.append(path) or path.write_bytes(b"new"))
    assert watch.items[big].data is None
    big.write_bytes(b"changed")
    assert watch.verify() == [big] and remade == [big]
    assert watch.verify() == []


def test_protected_paths_cover_kit_solutions_references_and_submissions(tiny, tmp_path):
    subs = tmp_path / "subs"
    (subs / "ann").mkdir(parents=True)
    (subs / "ann" / "ex3.ipynb").write_text("{}")
    names = {
        p.relative_to(tiny).as_posix() for p in protected_paths(tiny, subs) if tiny in p.parents
    }
    assert {
        "lrpkit/selfcheck/checks.py",
        "data/reference/tiny.json",
        "notebooks/solutions/ex4_lrp.ipynb",
    } <= names
    assert subs / "ann" / "ex3.ipynb" in protected_paths(tiny, subs)
