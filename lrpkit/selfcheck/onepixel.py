"""The checks' VGG-16 on their crops of 32-63 pixels, light: OnePixel and its float64 layers.

Students get this module with the self-checks (``lrpkit.selfcheck.checks``);
``lrpkit.selfcheck.config`` makes
the model once per kernel. On 32-63 pixels VGG-16's features end in one pixel, so its first
dense layer acts through its weights summed over the 7 x 7 positions avgpool copies that
pixel to (``OnePixel``). The other layers compute in float64 from the stand-in's float32
weights, which the notebook's models share (``Conv64``, ``Linear64``): no float64 copy of
them is kept, and none is saved for the backward pass either; where code under test is
handed layers, ``plain`` makes them ordinary float64 ``Conv2d`` layers for that check.
"""

import numpy
import torch
import torch.nn.functional as F

import utils

#: rows of a dense layer's weights converted at a time (2 MB of float64 per 64 inputs)
BLOCK = 256


class OnePixel(torch.nn.Module):
    """VGG-16 for inputs of 32-63 pixels, the checks' crops: there its features end in one
    pixel, which avgpool copies to all 7 x 7 positions, so the first dense layer acts
    through its weights summed over those positions. The same function (to rounding) with 49
    times fewer weights and multiply-adds in that layer (4096 x 512 instead of 4096 x 25088).
    ``OnePixel(model)`` shares model's layers; ``one_pixel_model`` builds one from weights."""

    def __init__(self, model):
        super().__init__()
        first = model.classifier[0]
        with torch.device(first.weight.device):
            dense = torch.nn.Linear(first.in_features // 49, first.out_features)
        dense = dense.to(first.weight.dtype)
        with torch.no_grad():
            dense.weight.copy_(first.weight.reshape(first.out_features, -1, 49).sum(2))
            dense.bias.copy_(first.bias)
        self.features = model.features
        self.avgpool = torch.nn.Identity()
        self.classifier = torch.nn.Sequential(dense, *model.classifier[1:])
        self.requires_grad_(False).eval()

    def forward(self, x):
        a = self.features(x)
        if a.shape[-2:] != (1, 1):
            raise ValueError(
                f"the checks' VGG-16 takes inputs of 32-63 pixels (the crop the check gives "
                f"your code), got {tuple(getattr(x, 'shape', ()))}: use the X you are given"
            )
        return self.classifier(torch.flatten(a, 1))


def _times_transposed(x, weight):
    """x W^T in x's dtype, W converted BLOCK rows at a time."""
    blocks = range(0, len(weight), BLOCK)
    return torch.cat([x @ weight[i : i + BLOCK].to(x.dtype).T for i in blocks], -1)


class _Dense(torch.autograd.Function):
    """x W^T + b in x's dtype, W converted BLOCK rows at a time, forward and backward. Written
    for torch.func too (setup_context, no in-place writes, a vmap rule and forward mode): code
    under test may take its gradients with torch.func.grad, vjp or jacrev."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, weight, bias):
        return _times_transposed(x, weight) + bias.to(x.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[1])
        ctx.save_for_forward(inputs[1])

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        dx = 0
        for i in range(0, len(weight), BLOCK):
            dx = dx + grad[..., i : i + BLOCK] @ weight[i : i + BLOCK].to(grad.dtype)
        return dx, None, None

    @staticmethod
    def jvp(ctx, x_t, weight_t, bias_t):
        (weight,) = ctx.saved_tensors
        return _times_transposed(x_t, weight)


class _Convolution(torch.autograd.Function):
    """conv2d (stride 1, the output as large as x) in x's dtype with the weights converted;
    the backward pass converts them again and keeps neither them nor x (the gradient with
    respect to x, a transposed convolution, needs only the weights). Written for torch.func
    too, as _Dense."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, weight, bias, padding):
        return F.conv2d(x, weight.to(x.dtype), bias.to(x.dtype), padding=padding)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[1])
        ctx.save_for_forward(inputs[1])
        ctx.padding = inputs[3]

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        dx = F.conv_transpose2d(grad, weight.to(grad.dtype), padding=ctx.padding)
        return dx, None, None, None

    @staticmethod
    def jvp(ctx, x_t, weight_t, bias_t, padding_t):
        (weight,) = ctx.saved_tensors
        return F.conv2d(x_t, weight.to(x_t.dtype), padding=ctx.padding)


class Linear64(torch.nn.Module):
    """A dense layer computed in its input's dtype from weights kept as they are: with
    float32 weights shared with the notebook's models, float64 results without a float64
    copy (134 MB for VGG-16's second dense layer). The weights are buffers, never trained."""

    def __init__(self, weight, bias):
        super().__init__()
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)

    def forward(self, x):
        return _Dense.apply(x, self.weight, self.bias)

    def plain(self, dtype=torch.float64):
        """An ordinary Linear layer with these weights in dtype (new tensors, frozen)."""
        with torch.device("meta"):
            dense = torch.nn.Linear(self.in_features, self.out_features)
        dense.weight = torch.nn.Parameter(self.weight.to(dtype, copy=True), requires_grad=False)
        dense.bias = torch.nn.Parameter(self.bias.to(dtype, copy=True), requires_grad=False)
        return dense


class Conv64(torch.nn.Module):
    """VGG-16's 3 x 3 convolution (stride 1, padding 1) computed in its input's dtype from
    weights kept as they are (buffers), like Linear64; ``plain()`` is it as a Conv2d."""

    def __init__(self, weight, bias):
        super().__init__()
        self.in_channels, self.out_channels = weight.shape[1], weight.shape[0]
        self.padding = (weight.shape[-1] // 2,) * 2
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)

    def forward(self, x):
        return _Convolution.apply(x, self.weight, self.bias, self.padding)

    def plain(self, dtype=torch.float64):
        """An ordinary Conv2d with these weights in dtype (new tensors, frozen)."""
        with torch.device("meta"):
            conv = torch.nn.Conv2d(self.in_channels, self.out_channels, 3, padding=self.padding)
        conv.weight = torch.nn.Parameter(self.weight.to(dtype, copy=True), requires_grad=False)
        conv.bias = torch.nn.Parameter(self.bias.to(dtype, copy=True), requires_grad=False)
        return conv


def one_pixel_model(state, dtype=torch.float64):
    """OnePixel from VGG-16's weights (a state dict, float32 or float64) computing in dtype,
    frozen, in eval mode: the first dense layer's weights summed over the 7 x 7 positions in
    dtype (numpy: 4 times faster than torch here, and no copy of the 400 MB layer), the
    convolutions and the other dense layers as Conv64 and Linear64 on the weights as they
    are (shared, not copied)."""
    model = OnePixel(utils._empty_vgg16())
    w = state["classifier.0.weight"].detach().numpy()
    sums = numpy.add.reduce(w.reshape(w.shape[0], -1, 49), axis=2, dtype=numpy.float64)
    model.classifier[0].weight = torch.nn.Parameter(torch.from_numpy(sums).to(dtype), False)
    model.classifier[0].bias = torch.nn.Parameter(state["classifier.0.bias"].to(dtype), False)
    for i in (3, 6):
        weight, bias = state[f"classifier.{i}.weight"], state[f"classifier.{i}.bias"]
        model.classifier[i] = Linear64(weight, bias)
    for i, layer in enumerate(model.features):
        if isinstance(layer, torch.nn.Conv2d):
            model.features[i] = Conv64(state[f"features.{i}.weight"], state[f"features.{i}.bias"])
    return model.requires_grad_(False).eval()


def light(layer, kind="Conv64"):
    """Whether layer is a Conv64 (or, with kind, a Linear64) of this module or of an earlier
    import of it: the grader's guard imports the checks afresh before every check, and they
    share the model the first import made."""
    return type(layer).__name__ == kind and callable(getattr(layer, "plain", None))


def plain(model, indices=None, dtype=torch.float64, dense=False):
    """model with its Conv64 layers at features[i] (i in indices, default: all) replaced by
    ordinary Conv2d layers in dtype, for code under test that is handed layers (model.features
    changes; the Conv64 layers it held do not); with dense, its Linear64 layers by Linear ones
    too (the grader's copy, where speed matters more than memory)."""
    for i, layer in enumerate(model.features):
        if light(layer) and (indices is None or i in indices):
            model.features[i] = layer.plain(dtype)
    for i, layer in enumerate(model.classifier if dense else ()):
        if light(layer, "Linear64"):
            model.classifier[i] = layer.plain(dtype)
    return model
