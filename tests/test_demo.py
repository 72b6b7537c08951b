"""The kit's main command, ``python -m lrpkit.demo`` (``make demo``): it writes the figure with
the stand-in, and offline without weights it stops with utils' message and exit status 2."""

import os
import re
import subprocess
import sys

import cv2
import numpy
import pytest
import torch
from local_http import closed_url

import utils
from lrpkit import demo

ROOT = utils.DATA.parent


@pytest.fixture
def castle_in_data(castle_file):
    """The demo reads data/castle.jpg; without it, it would go to the internet."""
    if castle_file != utils.DATA / "castle.jpg":
        pytest.fail("data/castle.jpg is missing: run `make castle` first")
    return castle_file


def demo_env(tmp_path, **extra):
    """The current environment with every proxy pointing at a dead local port: no test
    download can reach the internet, and an attempted one fails at once, as offline."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "all_proxy")}
    dead = closed_url("").rstrip("/")
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[name] = dead
    env["TORCH_HOME"] = str(tmp_path / "torch_home")  # an empty hub cache
    env["MPLBACKEND"] = "Agg"
    env.update(extra)
    return env


def run_demo(out, env):
    return subprocess.run(
        [sys.executable, "-m", "lrpkit.demo", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_demo_with_standin_writes_figure(castle_in_data, tmp_path):
    out = tmp_path / "figures" / "castle.png"  # the folder does not exist yet
    done = run_demo(out, demo_env(tmp_path, VGG16_WEIGHTS="standin"))
    assert done.returncode == 0, done.stderr
    assert utils.STANDIN_NOTE in done.stdout
    lines = re.findall(r"^(.+) \((\d+)\): (-?\d+\.\d{3})$", done.stdout, flags=re.M)
    assert len(lines) == 5 and all(utils.CLASSES[int(i)] == name for name, i, _ in lines)
    assert f"wrote {out}" in done.stdout
    assert "Traceback" not in done.stderr
    png = cv2.imread(str(out))
    assert png is not None, "the demo did not write a readable PNG"
    h, w, _ = png.shape
    assert w > 2 * h > 600  # three panels side by side
    assert png.std() > 30  # not a blank canvas
    b, g, r = (png[..., i].astype(int) for i in range(3))
    assert ((r > 200) & (g < 80) & (b < 80)).sum() > 2000, "no red relevance or label drawn"
    assert ((b > 200) & (r < 80) & (g < 80)).sum() > 500, "no blue relevance drawn"


@pytest.mark.slow
def test_demo_offline_without_weights_fails_clearly(castle_in_data, tmp_path):
    env = demo_env(tmp_path)
    env.pop("VGG16_WEIGHTS", None)
    out = tmp_path / "castle.png"
    done = run_demo(out, env)
    assert done.returncode == 2, done.stderr
    assert "VGG16_WEIGHTS=/path/to/vgg16-397923af.pth" in done.stderr
    assert "VGG16_WEIGHTS=standin" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_demo_main_offline_in_process(castle_in_data, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("VGG16_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(utils, "VGG16_URL", closed_url(utils.VGG16_FILE))
    out = tmp_path / "castle.png"
    assert demo.main(["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "lrpkit.demo: Could not get VGG-16's ImageNet weights" in err
    assert "VGG16_WEIGHTS=/path/to/vgg16-397923af.pth" in err and "VGG16_WEIGHTS=standin" in err
    assert not out.exists()


def test_demo_reports_a_broken_weight_file(castle_in_data, tmp_path, monkeypatch, capsys):
    broken = tmp_path / utils.VGG16_FILE
    broken.write_bytes(b"not weights")
    monkeypatch.setenv("VGG16_WEIGHTS", str(broken))
    assert demo.main(["--out", str(tmp_path / "castle.png")]) == 2
    assert "sha256 differs" in capsys.readouterr().err


@pytest.mark.parametrize("value, expected", [("standin", True), ("", False), (None, False)])
def test_uses_standin_follows_the_environment(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("VGG16_WEIGHTS", raising=False)
    else:
        monkeypatch.setenv("VGG16_WEIGHTS", value)
    assert demo.uses_standin() is expected


@pytest.mark.parametrize("standin", [True, False])
def test_render_labels_the_standin(castle_img, standin):
    R = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    scores = [(483, "castle", 11.029), (1, "goldfish", 1.5)]
    fig = demo.render(numpy.asarray(castle_img), scores, R, -R, standin=standin)
    texts = [t.get_text() for t in fig.texts]
    assert any("castle (483): 11.029" in t for t in texts)  # the top-k line
    assert any("STAND-IN" in t for t in texts) is standin
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "castle.jpg" and "Gradient" in titles[1] and "LRP" in titles[2]
