"""utils.py, function by function: images (good and bad files), X and its bounds, topk,
newlayer and visualize. Model loading is in test_weights.py, castle.jpg's download in
test_castle_download.py."""

import hashlib

import cv2
import numpy
import pytest
import torch
from matplotlib.figure import Figure

import utils


def write_png(path, img):
    """Write an OpenCV-ordered (BGR/BGRA) array to a PNG, failing loudly if OpenCV cannot."""
    assert cv2.imwrite(str(path), img), f"could not write {path}"
    return path


# ---------------------------------------------------------------------------
# sha256, castle.jpg
# ---------------------------------------------------------------------------


def test_sha256_matches_hashlib(tmp_path):
    data = numpy.random.default_rng(0).bytes(3 << 20)  # several 1 MiB chunks
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert utils.sha256(path) == hashlib.sha256(data).hexdigest()


def test_castle_file_is_the_pinned_one(castle_file):
    assert utils.sha256(castle_file) == utils.CASTLE_SHA256


# ---------------------------------------------------------------------------
# load_image: good files
# ---------------------------------------------------------------------------


def test_castle_loads_as_rgb_floats(castle_file, capsys):
    img = utils.load_image(castle_file)
    assert img.shape == (224, 224, 3)
    assert img.dtype == numpy.float64
    assert 0 <= img.min() and img.max() <= 1
    assert "note:" not in capsys.readouterr().out  # 224 x 224 already: no resize, no note
    # Same pixels as the sheet's own loading code, but in RGB order.
    bgr = cv2.imread(str(castle_file)) / 255.0
    numpy.testing.assert_allclose(img, bgr[..., ::-1])


def test_bgr_file_order_becomes_rgb(tmp_path):
    red = numpy.zeros((224, 224, 3), numpy.uint8)
    red[..., 2] = 255  # OpenCV writes BGR: channel 2 is red
    img = utils.load_image(write_png(tmp_path / "red.png", red))
    assert (img[..., 0] == 1).all(), "channel 0 must be red"
    assert (img[..., 1:] == 0).all()


def test_grayscale_gets_three_equal_channels(tmp_path):
    gray = numpy.random.default_rng(1).integers(0, 256, (224, 224), dtype=numpy.uint8)
    img = utils.load_image(write_png(tmp_path / "gray.png", gray))
    assert img.shape == (224, 224, 3)
    for ch in range(3):
        numpy.testing.assert_allclose(img[..., ch], gray / 255.0)


def test_rgba_is_put_on_white(tmp_path):
    bgra = numpy.zeros((224, 224, 4), numpy.uint8)
    bgra[..., 0] = 255  # pure blue in OpenCV's BGRA order
    bgra[:100, :, 3] = 255  # opaque
    bgra[100:150, :, 3] = 0  # fully transparent
    bgra[150:, :, 3] = 51  # 20 % opaque
    img = utils.load_image(write_png(tmp_path / "rgba.png", bgra))
    assert img.shape == (224, 224, 3)
    numpy.testing.assert_allclose(img[:100].reshape(-1, 3), [[0, 0, 1]] * (100 * 224))
    numpy.testing.assert_allclose(img[100:150].reshape(-1, 3), [[1, 1, 1]] * (50 * 224))
    numpy.testing.assert_allclose(img[150:].reshape(-1, 3), [[0.8, 0.8, 1]] * (74 * 224))


def test_16bit_png_keeps_its_precision(tmp_path):
    rng = numpy.random.default_rng(2)
    bgr16 = rng.integers(0, 65536, (224, 224, 3), dtype=numpy.uint16)
    img = utils.load_image(write_png(tmp_path / "deep.png", bgr16))
    numpy.testing.assert_allclose(img, bgr16[..., ::-1] / 65535.0)
    # Values between two 8-bit levels survive: the file is not squeezed to 8 bits first.
    assert len(numpy.unique(img)) > 256


def test_16bit_grayscale_with_alpha(tmp_path):
    bgra16 = numpy.full((224, 224, 4), 65535 // 2, numpy.uint16)
    bgra16[..., 3] = 0  # fully transparent: white whatever the colour
    bgra16[:10, :, 3] = 65535
    img = utils.load_image(write_png(tmp_path / "deep_rgba.png", bgra16))
    numpy.testing.assert_allclose(img[10:], 1.0)
    numpy.testing.assert_allclose(img[:10], (65535 // 2) / 65535.0)


def stripes(h, w, edge):
    """BGR image: blue left of ``edge`` columns from each side, green in the middle, red right."""
    img = numpy.zeros((h, w, 3), numpy.uint8)
    img[:, :edge, 0] = 255
    img[:, edge : w - edge, 1] = 255
    img[:, w - edge :, 2] = 255
    return img


def test_wide_image_is_centre_cropped_and_noted(tmp_path, capsys):
    # 224 high: no resize; the crop keeps the 224 middle columns, all of them green.
    path = write_png(tmp_path / "wide.png", stripes(224, 448, 112))
    img = utils.load_image(path)
    assert img.shape == (224, 224, 3)
    numpy.testing.assert_allclose(img.reshape(-1, 3), [[0, 1, 0]] * (224 * 224))
    out = capsys.readouterr().out
    assert "wide.png is 448x224" in out and "centre-cropped to 224x224" in out


def test_large_image_shorter_side_resized_to_224(tmp_path, capsys):
    # 448 x 1344 halves to 224 x 672; the middle 224 columns are the green band.
    path = write_png(tmp_path / "big.png", stripes(448, 1344, 448))
    img = utils.load_image(path)
    assert img.shape == (224, 224, 3)
    numpy.testing.assert_allclose(img.reshape(-1, 3), [[0, 1, 0]] * (224 * 224), atol=1e-6)
    assert "big.png is 1344x448" in capsys.readouterr().out


def test_tall_small_image_is_upscaled_then_cropped(tmp_path, capsys):
    gray = numpy.tile(numpy.linspace(0, 255, 300).astype(numpy.uint8)[:, None], (1, 100))
    img = utils.load_image(write_png(tmp_path / "tall.png", gray))
    assert img.shape == (224, 224, 3)
    # Upscaled by 2.24 to 224 x 672, the centre rows are the middle grey levels.
    assert img[0, 0, 0] > 0.3 and img[-1, 0, 0] < 0.7
    assert img[0, 0, 0] < img[-1, 0, 0]
    assert "tall.png is 100x300" in capsys.readouterr().out


# ---------------------------------------------------------------------------
# load_image: bad files (each error names the file and the problem)
# ---------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.jpg"
    with pytest.raises(FileNotFoundError, match="nowhere.jpg: no such image file"):
        utils.load_image(path)


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such image file"):
        utils.load_image(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.touch()
    with pytest.raises(ValueError, match="empty.jpg: the file is empty"):
        utils.load_image(path)


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.999])
def test_truncated_castle(castle_file, tmp_path, fraction):
    data = castle_file.read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ValueError, match="cut.jpg: the file is truncated or corrupt"):
        utils.load_image(path)


def test_truncated_png(tmp_path):
    full = write_png(tmp_path / "full.png", stripes(224, 224, 50)).read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(ValueError, match="cut.png: the file is truncated or corrupt"):
        utils.load_image(path)


def test_text_file_is_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    with pytest.raises(ValueError, match="notes.jpg: the file is not an image"):
        utils.load_image(path)


def test_float_pixels_are_refused(tmp_path):
    path = tmp_path / "float.tiff"
    assert cv2.imwrite(str(path), numpy.full((8, 8, 3), 0.5, numpy.float32))
    with pytest.raises(ValueError, match="float.tiff: float32 pixels are not supported"):
        utils.load_image(path)


# ---------------------------------------------------------------------------
# normalize, bounds
# ---------------------------------------------------------------------------


def test_normalize_shape_and_values(castle_img):
    X = utils.normalize(castle_img)
    assert X.shape == (1, 3, 224, 224) and X.dtype == torch.float32
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    for ch in range(3):
        expected = (castle_img[..., ch] - mean[ch]) / std[ch]
        numpy.testing.assert_allclose(X[0, ch].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_normalize_matches_the_sheet(castle_file, castle_img):
    # The sheet's own lines (Exercise 3 preamble), with its BGR file order made RGB.
    img = numpy.array(cv2.imread(str(castle_file)))[..., ::-1] / 255.0
    mean = torch.Tensor([0.485, 0.456, 0.406]).reshape(1, -1, 1, 1)
    std = torch.Tensor([0.229, 0.224, 0.225]).reshape(1, -1, 1, 1)
    X = (torch.FloatTensor(img[numpy.newaxis].transpose([0, 3, 1, 2]) * 1) - mean) / std
    torch.testing.assert_close(utils.normalize(castle_img), X)


def test_bounds_are_pixels_0_and_1(X):
    L, H = utils.bounds(X)
    assert L.shape == X.shape == H.shape and L.dtype == H.dtype == X.dtype
    zeros, ones = numpy.zeros((224, 224, 3)), numpy.ones((224, 224, 3))
    torch.testing.assert_close(L, utils.normalize(zeros))
    torch.testing.assert_close(H, utils.normalize(ones))
    assert (L <= X).all() and (X <= H).all()
    # Fresh tensors: marking them for gradients (as the sheet does) must not touch X.
    L.requires_grad_(True)
    assert not X.requires_grad


def test_bounds_follow_dtype_and_batch(X64):
    batch = X64.expand(2, -1, -1, -1)
    L, H = utils.bounds(batch)
    assert L.shape == H.shape == (2, 3, 224, 224)
    assert L.dtype == H.dtype == torch.float64
    mean, std = utils.MEAN.double().reshape(3), utils.STD.double().reshape(3)
    torch.testing.assert_close(L[1, :, 0, 0], -mean / std)
    torch.testing.assert_close(H[1, :, 5, 7], (1 - mean) / std)


# ---------------------------------------------------------------------------
# topk, CLASSES
# ---------------------------------------------------------------------------


def test_classes_are_imagenets():
    assert len(utils.CLASSES) == 1000
    assert utils.CLASSES[483] == "castle"


def test_topk_prints_sheet_style_lines(capsys):
    order = torch.randperm(1000, generator=torch.Generator().manual_seed(3))
    scores = torch.linspace(-1, 1, 1000)[order]
    scores = scores.reshape(1, 1000)
    scores[0, 483] = 11.029
    scores[0, 7] = 9.5
    scores.requires_grad_(True)  # a model output needs no detach() from the caller
    top = utils.topk(scores, k=3)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "castle (483): 11.029"
    assert lines[1] == f"{utils.CLASSES[7]} (7): 9.500"
    assert len(lines) == 3
    assert [i for i, _, _ in top] == [483, 7, int(scores[0, :].detach().argsort()[-3])]
    assert top[0][1] == "castle" and top[0][2] == pytest.approx(11.029)


def test_topk_defaults_to_five(capsys):
    top = utils.topk(torch.arange(1000.0))
    assert [i for i, _, _ in top] == [999, 998, 997, 996, 995]
    assert len(capsys.readouterr().out.splitlines()) == 5


# ---------------------------------------------------------------------------
# newlayer
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer",
    [torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(5, 2), torch.nn.Conv2d(2, 2, 1, bias=False)],
    ids=["conv", "linear", "conv-no-bias"],
)
def test_newlayer_transforms_a_copy(layer):
    torch.manual_seed(4)
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    gamma = 0.25
    new = utils.newlayer(layer, lambda p: p + gamma * p.clamp(min=0))
    assert new is not layer and type(new) is type(layer)
    for name, p in layer.named_parameters():
        q = getattr(new, name)
        assert isinstance(q, torch.nn.Parameter)
        torch.testing.assert_close(q, p + gamma * p.clamp(min=0))
        assert q.data_ptr() != p.data_ptr()
    if layer.bias is None:
        assert new.bias is None
    for k, v in layer.state_dict().items():  # the original is untouched
        assert torch.equal(v, before[k])


def test_newlayer_keeps_requires_grad():
    conv = torch.nn.Conv2d(3, 2, 3)
    conv.bias.requires_grad_(False)
    new = utils.newlayer(conv, lambda p: p.clamp(max=0))
    assert new.weight.requires_grad and not new.bias.requires_grad
    assert new.weight.grad_fn is None  # a leaf, not a view into the old graph


def test_newlayer_output_matches_transformed_conv():
    conv = torch.nn.Conv2d(3, 2, 3, padding=1)
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    new = utils.newlayer(conv, lambda p: p.clamp(min=0))
    expected = torch.nn.functional.conv2d(
        x, conv.weight.clamp(min=0), conv.bias.clamp(min=0), padding=1
    )
    torch.testing.assert_close(new(x), expected)


# ---------------------------------------------------------------------------
# visualize
# ---------------------------------------------------------------------------


def relevance(shape, seed=6):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def shown(fig):
    """The AxesImage visualize drew."""
    (ax,) = fig.axes
    (im,) = ax.get_images()
    return im


def test_visualize_accepts_grad_tensor_and_returns_figure():
    R = relevance((1, 3, 16, 16)).float().requires_grad_(True) * 2  # non-leaf, requires grad
    fig = utils.visualize(R)
    assert isinstance(fig, Figure)
    expected = R.detach().double().sum(1)[0].numpy()  # visualize sums in float64
    numpy.testing.assert_allclose(shown(fig).get_array(), expected)


@pytest.mark.parametrize("shape", [(1, 3, 12, 10), (3, 12, 10), (12, 10)])
def test_visualize_shapes(shape):
    R = relevance(shape)
    fig = utils.visualize(R.numpy())
    summed = R.sum(0) if len(shape) == 3 else R.sum(1)[0] if len(shape) == 4 else R
    numpy.testing.assert_allclose(shown(fig).get_array(), summed.numpy())


def test_visualize_symmetric_limits_white_at_zero():
    R = relevance((3, 20, 20)) + 0.7  # mostly positive: the limits must still be symmetric
    R[:, 0, 0] = 0  # one pixel of exactly zero relevance
    im = shown(utils.visualize(R))
    vmin, vmax = im.get_clim()
    assert vmin == -vmax and vmax > 0
    assert im.norm(0.0) == pytest.approx(0.5)  # zero sits at the colormap's centre
    rgba = im.to_rgba(im.get_array())[0, 0]  # the rendered colour of the zero pixel
    assert (rgba[:3] > 0.98).all(), f"zero relevance should be white, got {rgba}"
    red, blue = im.to_rgba(numpy.array([vmax, vmin]))
    assert red[0] > 0.9 and red[2] < 0.1, "positive relevance should be red"
    assert blue[2] > 0.9 and blue[0] < 0.1, "negative relevance should be blue"


def test_visualize_limits_ignore_a_few_outliers():
    R = relevance((40, 40)).numpy()
    R[0, 0] = 1e6
    vmin, vmax = shown(utils.visualize(R)).get_clim()
    assert vmax < 10  # the one huge pixel is clipped, the rest keeps its contrast
    assert vmax == pytest.approx(numpy.percentile(numpy.abs(R), 99.5))


def test_visualize_zero_and_sparse_relevance():
    im = shown(utils.visualize(numpy.zeros((8, 8))))
    assert im.get_clim() == (-1.0, 1.0)  # all white, no division by zero
    R = numpy.zeros((40, 40))
    R[3, 4] = -2.0  # fewer than 0.5 % non-zero pixels: the 99.5th percentile is 0
    assert shown(utils.visualize(R)).get_clim() == (-2.0, 2.0)


def test_visualize_draws_into_given_axes():
    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    out = utils.visualize(relevance((5, 5)), ax=ax2, title="LRP")
    assert out is fig
    assert ax2.get_title() == "LRP" and len(ax2.get_images()) == 1
    assert not ax1.get_images()


@pytest.mark.parametrize(
    "shape, message",
    [
        ((2, 3, 8, 8), "batch of 2: pass R\\[:1\\]"),
        ((8,), "got shape \\(8,\\)"),
        ((1, 1, 3, 8, 8), "got shape \\(1, 1, 3, 8, 8\\)"),
    ],
)
def test_visualize_bad_shapes(shape, message):
    with pytest.raises(ValueError, match=message):
        utils.visualize(torch.zeros(shape))


def test_the_sheets_channel_slip_is_named_with_its_fix():
    """[..., :-1] (the sheet's slip) leaves 2 channels: normalize says so and how to fix it."""
    img = numpy.random.default_rng(0).random((224, 224, 3))
    for bad in (img[..., :-1], numpy.ascontiguousarray(img[..., :-1])):
        with pytest.raises(ValueError, match=r"\[\.\.\., :-1\] drops the red.*\[\.\.\., ::-1\]"):
            utils.normalize(bad)
    with pytest.raises(ValueError, match="channels last"):
        utils.normalize(img.transpose(2, 0, 1).copy())
    assert utils.check_image(img) is img
    torch.testing.assert_close(utils.normalize(img[..., ::-1]), utils.normalize(img[..., ::-1]))
