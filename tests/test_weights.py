"""utils.load_vgg16: the stand-in, a weight file named by VGG16_WEIGHTS, the torch hub cache,
the download (from a server on 127.0.0.1) and the offline error.

No real ImageNet weights are needed: the tests write VGG-16 weight files themselves and
monkeypatch utils.VGG16_SHA256 / utils.VGG16_URL to match them.
"""

import contextlib
import hashlib
import io
import os

import pytest
import torch
import torchvision
from local_http import closed_url, serve

import utils

#: sha256 over the stand-in's state dict (name, shape, dtype, bytes of each tensor, in order),
#: computed once with torch 2.14.1 / numpy 2: the stand-in must be bit-identical everywhere.
STANDIN_CHECKSUM = "f0440abf189dc065535f6308db6448dd4b7f6dbc9ca75b20e1786aecd9ed9124"


def checksum(state):
    digest = hashlib.sha256()
    for name, t in state.items():
        digest.update(name.encode())
        digest.update(str(tuple(t.shape)).encode())
        digest.update(str(t.dtype).encode())
        digest.update(t.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def same_weights(model, state):
    """True when every tensor of model's state dict equals the one in ``state``."""
    mine = model.state_dict()
    return mine.keys() == state.keys() and all(torch.equal(mine[k], state[k]) for k in state)


def vgg16_shapes():
    with torch.device("meta"):
        model = torchvision.models.vgg16(weights=None)
    return {k: v.shape for k, v in model.state_dict().items()}


def compact_state(offset=1.0, shapes=None):
    """A VGG-16 state dict whose tensors are one stored number each, broadcast to full shape.

    torch.save keeps the stride-0 views, so the file is a few KB instead of 528 MB, yet it
    loads into VGG-16 like any other weight file.
    """
    shapes = shapes or vgg16_shapes()
    return {k: torch.full((1,), offset + i).expand(s) for i, (k, s) in enumerate(shapes.items())}


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory, standin):
    """The stand-in's full weights saved as TORCH_HOME/hub/checkpoints/vgg16-397923af.pth."""
    folder = tmp_path_factory.mktemp("torch_home") / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    path = folder / utils.VGG16_FILE
    torch.save(standin.state_dict(), path)
    yield path, utils.sha256(path)
    path.unlink()  # 528 MB: do not keep it around in pytest's temp folders


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No VGG16_WEIGHTS, an empty torch hub cache, and a weights URL where nothing listens."""
    monkeypatch.delenv("VGG16_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(utils, "VGG16_URL", closed_url(utils.VGG16_FILE))
    return tmp_path / "torch_home"


# ---------------------------------------------------------------------------
# the stand-in
# ---------------------------------------------------------------------------


def test_standin_matches_stored_checksum(standin):
    assert checksum(standin.state_dict()) == STANDIN_CHECKSUM


def test_standin_is_vgg16_in_eval_mode(standin):
    assert {k: v.shape for k, v in standin.state_dict().items()} == vgg16_shapes()
    assert isinstance(standin, torchvision.models.VGG)
    assert not any(m.training for m in standin.modules())
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in standin.parameters())


def test_two_standin_loads_are_identical(standin, monkeypatch, capsys):
    monkeypatch.setenv("VGG16_WEIGHTS", "standin")
    again = utils.load_vgg16()  # chosen by the environment this time
    assert utils.STANDIN_NOTE in capsys.readouterr().out
    assert same_weights(again, standin.state_dict())
    # Not a shared object: a second load is a second model (on the same weight tensors).
    assert again is not standin and again.features[0] is not standin.features[0]


def test_standin_banner_every_time(standin, monkeypatch, capsys):
    # Reuse the fixture's tensors: this test is about the banner, not the weights.
    monkeypatch.setattr(utils, "standin_state_dict", standin.state_dict)
    monkeypatch.setenv("VGG16_WEIGHTS", "standin")
    utils.load_vgg16()
    utils.load_vgg16()
    utils.load_vgg16("standin")
    assert capsys.readouterr().out.count(utils.STANDIN_NOTE) == 3


def test_standin_is_never_chosen_silently(offline, capsys):
    with pytest.raises(RuntimeError):
        utils.load_vgg16()
    assert "STAND-IN" not in capsys.readouterr().out


# ---------------------------------------------------------------------------
# VGG16_WEIGHTS=/path/to/file
# ---------------------------------------------------------------------------


def test_named_file_with_matching_hash_loads(weights_file, standin, monkeypatch, capsys):
    path, digest = weights_file
    monkeypatch.setattr(utils, "VGG16_SHA256", digest)
    monkeypatch.setenv("VGG16_WEIGHTS", str(path))
    model = utils.load_vgg16()
    assert same_weights(model, standin.state_dict())
    assert not model.training
    assert "STAND-IN" not in capsys.readouterr().out


def test_named_file_is_checked_against_the_official_hash(weights_file, monkeypatch):
    # The real VGG16_SHA256: a file that calls itself vgg16-397923af.pth but is not.
    monkeypatch.setenv("VGG16_WEIGHTS", str(weights_file[0]))
    with pytest.raises(ValueError, match="sha256 differs from the official vgg16-397923af.pth"):
        utils.load_vgg16()


def test_corrupt_named_file_gives_clear_error(weights_file, monkeypatch, tmp_path):
    path, digest = weights_file
    monkeypatch.setattr(utils, "VGG16_SHA256", digest)
    cut = tmp_path / utils.VGG16_FILE
    with open(path, "rb") as f:
        cut.write_bytes(f.read(1 << 20))  # an interrupted download
    with pytest.raises(ValueError, match="corrupt or incomplete. Download it again from"):
        utils.load_vgg16(cut)


def test_mismatched_named_file_gives_clear_error(weights_file, monkeypatch, tmp_path):
    monkeypatch.setattr(utils, "VGG16_SHA256", weights_file[1])
    other = tmp_path / utils.VGG16_FILE
    torch.save(compact_state(), other)  # valid VGG-16 weights, but not the expected ones
    monkeypatch.setenv("VGG16_WEIGHTS", str(other))
    with pytest.raises(ValueError, match=f"{other}: sha256 differs"):
        utils.load_vgg16()


def test_file_with_another_name_loads_without_hash_check(tmp_path, monkeypatch):
    path = tmp_path / "my-finetuned-vgg16.pth"
    state = compact_state()
    torch.save(state, path)
    monkeypatch.setenv("HOME", str(tmp_path))
    model = utils.load_vgg16("~/my-finetuned-vgg16.pth")  # ~ is expanded
    assert same_weights(model, state)


def test_unreadable_file_gives_clear_error(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"<html>Not Found</html>")
    with pytest.raises(ValueError, match="weights.pth: not a readable PyTorch weight file"):
        utils.load_vgg16(path)


@pytest.mark.parametrize(
    "state",
    [
        torch.nn.Linear(3, 2).state_dict(),  # some other model
        compact_state(shapes={**vgg16_shapes(), "classifier.6.weight": (10, 4096)}),
        torch.zeros(3),  # a tensor, not a state dict
    ],
    ids=["other-model", "10-classes", "not-a-dict"],
)
def test_non_vgg16_weights_give_clear_error(tmp_path, state):
    path = tmp_path / "resnet.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match="resnet.pth: not VGG-16 weights"):
        utils.load_vgg16(path)


def test_missing_path_gives_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "nowhere" / utils.VGG16_FILE
    monkeypatch.setenv("VGG16_WEIGHTS", str(path))
    with pytest.raises(FileNotFoundError, match=f"VGG16_WEIGHTS: {path} does not exist"):
        utils.load_vgg16()


# ---------------------------------------------------------------------------
# torch hub cache, download, offline
# ---------------------------------------------------------------------------


def test_hub_cache_is_used_when_present(weights_file, standin, offline, monkeypatch):
    path, digest = weights_file
    monkeypatch.setattr(utils, "VGG16_SHA256", digest)
    monkeypatch.setenv("TORCH_HOME", str(path.parents[2]))  # .../torch_home/hub/checkpoints
    model = utils.load_vgg16()  # the URL is dead: only the cache can have served this
    assert same_weights(model, standin.state_dict())


def test_broken_hub_cache_file_gives_clear_error(offline):
    cached = offline / "hub" / "checkpoints" / utils.VGG16_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a download")
    with pytest.raises(ValueError, match="sha256 differs"):
        utils.load_vgg16()


def test_download_with_progress_bar(offline, tmp_path, monkeypatch, capsys):
    state = compact_state(offset=7.0)
    served = tmp_path / "server"
    served.mkdir()
    staged = served / "staged.pth"
    torch.save(state, staged)
    # torch hub checks the download against the hash prefix in the file's name.
    name = f"vgg16-{utils.sha256(staged)[:8]}.pth"
    os.replace(staged, served / name)
    with serve(served) as base:
        monkeypatch.setattr(utils, "VGG16_URL", f"{base}/{name}")
        model = utils.load_vgg16()
    assert same_weights(model, state)
    err = capsys.readouterr().err
    assert "100%" in err  # the progress bar ran to the end
    assert (offline / "hub" / "checkpoints" / name).is_file()  # cached for next time


def test_download_with_wrong_hash_is_refused(offline, tmp_path, monkeypatch):
    served = tmp_path / "server"
    served.mkdir()
    torch.save(compact_state(), served / "vgg16-00000000.pth")
    with serve(served) as base:
        monkeypatch.setattr(utils, "VGG16_URL", f"{base}/vgg16-00000000.pth")
        with pytest.raises(RuntimeError, match="invalid hash value"):
            utils.load_vgg16()
    checkpoints = offline / "hub" / "checkpoints"
    assert not checkpoints.exists() or not list(checkpoints.iterdir())  # nothing half-kept


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_offline_error_names_both_remedies(offline, monkeypatch, value):
    if value is not None:
        monkeypatch.setenv("VGG16_WEIGHTS", value)
    with pytest.raises(RuntimeError) as info:
        utils.load_vgg16()
    message = str(info.value)
    assert "Could not get VGG-16's ImageNet weights" in message
    assert "VGG16_WEIGHTS=/path/to/vgg16-397923af.pth" in message
    assert "VGG16_WEIGHTS=standin" in message
    assert utils.VGG16_URL in message


def test_models_of_one_source_share_their_weight_tensors_only(standin, monkeypatch):
    """The weights are made once per session and shared by the models made from them (553 MB
    once); each model has its own layers and parameters: replacing a layer, a weight or
    requires_grad in one leaves the other as it was."""
    monkeypatch.setattr(utils, "standin_state_dict", lambda: pytest.fail("made again"))
    with contextlib.redirect_stdout(io.StringIO()):
        one, two = utils.load_vgg16("standin"), utils.load_vgg16("standin")
    for p, q in zip(one.parameters(), two.parameters(), strict=True):
        assert p.data_ptr() == q.data_ptr() and p is not q
    two.features[0] = utils.newlayer(two.features[0], lambda p: p.clamp(min=0))
    two.classifier[0].weight = torch.nn.Parameter(torch.zeros_like(one.classifier[0].weight))
    two.requires_grad_(False)
    assert same_weights(one, standin.state_dict()) and not same_weights(two, standin.state_dict())
    assert all(p.requires_grad for p in one.parameters())
