"""Reference Gradient x Input and LRP for torchvision's VGG-16 (instructors, tests, demo).

``lrp`` implements Exercise 4 by the gradient trick ``z <- zp * [z / zp].detach()``: the
z^B rule on the first convolution, LRP-gamma with one gamma per conv block on the other
convolutions, dense layers left intact. The original layers are not copied: modified
weights are computed on the fly, so explaining costs no model copy.
"""

import contextlib

import torch
import torch.nn.functional as F

import utils
from lrpkit.sheet import GAMMAS, block_of, layer_gammas, stabilize


def trick(z, zp):
    """The gradient trick: forward value z, gradient that of zp."""
    zp = stabilize(zp)
    return zp * (z / zp).detach()


@contextlib.contextmanager
def frozen(model):
    """Parameters do not require grad inside the block, so no weight gradients are computed."""
    flags = [p.requires_grad for p in model.parameters()]
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        yield model
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


def _check(model, X):
    if model.training:
        raise ValueError("the model is in training mode (dropout on): call model.eval() first")
    if X.dim() != 4 or X.shape[1] != 3:
        raise ValueError(f"X must be N x 3 x H x W; got shape {tuple(X.shape)}")


def _select(out, c):
    """Sum over the batch of each sample's logit of class c (an int or one class per sample)."""
    c = torch.as_tensor(c, device=out.device).reshape(-1).expand(out.shape[0])
    return out.gather(1, c[:, None]).sum()


def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = x_i * df_c/dx_i, a tensor shaped like X (batches welcome)."""
    _check(model, X)
    X = X.detach().requires_grad_(True)
    with frozen(model), torch.enable_grad():
        (grad,) = torch.autograd.grad(_select(model(X), c), X)
    return X.detach() * grad


def gamma_weights(p, gamma):
    """w + gamma * w^+ (LRP-gamma's weight transform; also applied to the bias)."""
    return torch.add(p, p.clamp(min=0), alpha=gamma)


def lrp_forward(model, X, L, H, gammas=GAMMAS):
    """VGG-16's forward pass with the LRP rules wired in by the gradient trick (gammas: per
    block 1-5, or {features index: gamma}).

    Every convolution and the ReLU after it return relu(z) (z: the convolution's plain
    output, computed without autograd) with the gradient of zp: the z^B rule's
    x w - l w^+ - h w^- on features[0], LRP-gamma's a (w + gamma w^+) on the others.
    Max-pooling and the dense head are left as they are. The gradient of the output with
    respect to X, L and H gives the relevance.
    """
    features = model.features
    a = X
    for i, layer in enumerate(features):
        if isinstance(layer, torch.nn.Conv2d):
            if not isinstance(features[i + 1], torch.nn.ReLU):
                raise ValueError(f"features[{i}] is not followed by a ReLU: not VGG-16")
            with torch.no_grad():
                z = layer(a)
            W, b = layer.weight, layer.bias
            if i == 0:
                # z^B as one convolution of the stacked input [X, L, H] with weights
                # [w, -w^+, -w^-] (the bias cancels: b - b^+ - b^- = 0). One, not three: on
                # CPU, the backward pass of a convolution to 3 channels is slow (~5x forward).
                W = torch.cat([W, -W.clamp(min=0), -W.clamp(max=0)], 1)
                a, b = torch.cat([X, L, H], 1), None
            else:
                gamma = gammas[i] if isinstance(gammas, dict) else gammas[block_of(i) - 1]
                W, b = gamma_weights(W, gamma), gamma_weights(b, gamma)
            zp = F.conv2d(a, W, b, stride=layer.stride, padding=layer.padding)
            # The ReLU that follows is applied here, to z: trick(relu(z), zp) has the value
            # and the gradient of relu(trick(z, zp)), at two passes over the data less.
            a = trick(z.relu_(), zp)
        elif not isinstance(layer, torch.nn.ReLU):  # ReLUs: applied with their conv
            a = layer(a)
    a = torch.flatten(model.avgpool(a), 1)
    return model.classifier(a)


def lrp(model, X, c, gammas=GAMMAS):
    """LRP relevance X*dX + L*dL + H*dH of class c, shaped like X (batches welcome).

    gammas: one gamma per conv block 1-5 (default: the sheet's), or one per LRP-gamma layer
    as {features index: gamma} (every convolution but the first).
    """
    _check(model, X)
    if isinstance(gammas, dict):
        layers = set(layer_gammas())
        if set(gammas) != layers:
            raise ValueError(f"need one gamma per LRP-gamma layer {sorted(layers)}")
    elif len(gammas) != 5:
        raise ValueError(f"need one gamma per conv block 1-5; got {len(gammas)}")
    L, H = utils.bounds(X.detach())
    X = X.detach().requires_grad_(True)
    L.requires_grad_(True)
    H.requires_grad_(True)
    with frozen(model), torch.enable_grad():
        out = lrp_forward(model, X, L, H, gammas)
        dX, dL, dH = torch.autograd.grad(_select(out, c), (X, L, H))
    return (X * dX + L * dL + H * dH).detach()
