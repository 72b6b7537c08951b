"""Slow, literal twins of the reference LRP (lrpkit.reference.lrp), for the tests.

Two independent ways to compute the same relevance, written without lrpkit.reference.lrp:

- ``explicit_lrp``: the four-step procedure of the LRP overview paper (Montavon et al. 2019,
  "Layer-wise relevance propagation: an overview"), layer by layer, with plain tensors:
  1. z_k = sum_j a_j rho(w_jk) + rho(b_k), stabilised  (forward pass with modified weights)
  2. s_k = R_k / z_k                                     (element-wise division)
  3. c_j = sum_k rho(w_jk) s_k                           (backward pass: transposed conv)
  4. R_j = a_j c_j                                       (element-wise product)
- ``zennit_lrp``: zennit 0.5.1 with the same rules (ZBox on the first convolution,
  Gamma with the block's gamma on the others).

Both start from the relevance at the output of ``model.features``: activation times
gradient of the dense head (avgpool + classifier, left intact as on the sheet), i.e.
Gradient x Input of the head. ReLU passes relevance unchanged; max-pooling sends it to
the winning input (winner takes all). Use them in float64: in float32, divisions where
z is near zero amplify rounding (two correct implementations then differ by ~1e-2).
"""

import copy

import torch
import torch.nn.functional as F

import utils

#: the sheet's gamma per conv block 1-5 (copied, not imported, to stay independent).
SHEET_GAMMAS = (1.0, 10**-0.5, 10**-1.0, 10**-1.5, 10**-2.0)
#: the same stabiliser as the reference: z + EPS * sign(z), with sign(0) = +1.
EPS = 1e-9


def stabilize(z, eps=EPS):
    """z + eps * sign(z), zero counting as positive (zennit's Stabilizer does the same)."""
    return z + eps * torch.where(z >= 0, 1.0, -1.0).to(z)


def conv_blocks(features):
    """Block number (1-5) of each convolution in ``features``: 1 + the max-pools before it."""
    blocks, pools = {}, 0
    for i, layer in enumerate(features):
        if isinstance(layer, torch.nn.MaxPool2d):
            pools += 1
        elif isinstance(layer, torch.nn.Conv2d):
            blocks[i] = pools + 1
    return blocks


def head_relevance(model, A, c):
    """Relevance at the output A of ``features``: A * d logit_c / dA through the dense head.

    c is an int or one class per sample.
    """
    if model.training:
        raise ValueError("twin: call model.eval() first (dropout must be off)")
    A = A.detach().requires_grad_(True)
    with torch.enable_grad():
        out = model.classifier(torch.flatten(model.avgpool(A), 1))
        c = torch.as_tensor(c, device=out.device).reshape(-1).expand(out.shape[0])
        (grad,) = torch.autograd.grad(out.gather(1, c[:, None]).sum(), A)
    return (A * grad).detach()


def _conv(a, W, b, conv):
    return F.conv2d(a, W, b, stride=conv.stride, padding=conv.padding)


def _conv_t(s, W, conv, like):
    """c_j = sum_k w_jk s_k: the transposed convolution, cut to the input's size."""
    c = F.conv_transpose2d(s, W, stride=conv.stride, padding=conv.padding)
    assert c.shape == like.shape, (c.shape, like.shape)
    return c


def _gamma_rule(conv, a, R, gamma, eps):
    """LRP-gamma, four steps: rho(w) = w + gamma * w^+, applied to the bias too."""

    def rho(p):
        return p + gamma * p.clamp(min=0)

    W, b = rho(conv.weight), rho(conv.bias)
    z = stabilize(_conv(a, W, b, conv), eps)  # step 1
    s = R / z  # step 2
    c = _conv_t(s, W, conv, a)  # step 3
    return a * c  # step 4


def _zB_rule(conv, X, R, eps):
    """z^B rule on pixels in [L, H]: x w - l w^+ - h w^- in place of a_j rho(w_jk)."""
    L, H = utils.bounds(X)
    W, Wp, Wn = conv.weight, conv.weight.clamp(min=0), conv.weight.clamp(max=0)
    b, bp, bn = conv.bias, conv.bias.clamp(min=0), conv.bias.clamp(max=0)
    z = _conv(X, W, b, conv) - _conv(L, Wp, bp, conv) - _conv(H, Wn, bn, conv)
    s = R / stabilize(z, eps)
    return X * _conv_t(s, W, conv, X) - L * _conv_t(s, Wp, conv, L) - H * _conv_t(s, Wn, conv, H)


def explicit_lrp(model, X, c, gammas=SHEET_GAMMAS, eps=EPS):
    """LRP of class c by the four-step procedure, layer by layer, shaped like X."""
    features = model.features
    blocks = conv_blocks(features)
    with torch.no_grad():
        # forward: keep every layer's input (and the max-pool winners)
        A, winners, a = [], {}, X
        for i, layer in enumerate(features):
            A.append(a)
            if isinstance(layer, torch.nn.ReLU):
                a = F.relu(a)  # not layer(a): VGG-16's ReLUs are in place
            elif isinstance(layer, torch.nn.MaxPool2d):
                a, winners[i] = F.max_pool2d(
                    a,
                    layer.kernel_size,
                    layer.stride,
                    layer.padding,
                    layer.dilation,
                    ceil_mode=layer.ceil_mode,
                    return_indices=True,
                )
            else:
                a = layer(a)
        R = head_relevance(model, a, c)
        # backward: relevance from the top of features down to the pixels
        for i in reversed(range(len(features))):
            layer = features[i]
            if isinstance(layer, torch.nn.ReLU):
                pass  # relevance passes unchanged
            elif isinstance(layer, torch.nn.MaxPool2d):
                R = F.max_unpool2d(
                    R,
                    winners[i],
                    layer.kernel_size,
                    layer.stride,
                    layer.padding,
                    output_size=A[i].shape[-2:],
                )
            elif isinstance(layer, torch.nn.Conv2d) and i == 0:
                R = _zB_rule(layer, A[i], R, eps)
            elif isinstance(layer, torch.nn.Conv2d):
                R = _gamma_rule(layer, A[i], R, gammas[blocks[i] - 1], eps)
            else:
                raise TypeError(f"explicit_lrp: no rule for {layer}")
    return R


def zennit_lrp(model, X, c, gammas=SHEET_GAMMAS, eps=EPS):
    """LRP of class c by zennit 0.5.1: ZBox on features[0], Gamma on the other convs.

    zennit runs on ``features`` only and is started from the dense head's activation x
    gradient; its attribution (the "gradient" at X) is the relevance.

    zennit's Gamma is the generalised rule (Andeol et al. 2021): it splits inputs and
    weights by sign and, where the unmodified output z_k is negative, uses a different
    denominator (sum of a^+ (w + gamma w^-) and a^- (w + gamma w^+)). For VGG-16 this
    changes nothing: every conv is followed by a ReLU, so (a) its inputs a_j are >= 0 and
    the a^- terms vanish, leaving a_j (w + gamma w^+) + (b + gamma b^+) as in the sheet's
    rule, and (b) R_k = 0 wherever z_k <= 0 (the ReLU output is 0 there, and the gradient
    through the ReLU is 0), so the negative branch only ever carries zero relevance.
    """
    from zennit.core import Composite
    from zennit.rules import Gamma, ZBox

    # zennit's hooks keep a module's input for the backward pass; an in-place ReLU would
    # overwrite the preceding conv's output, so work on a copy with out-of-place ReLUs.
    features = copy.deepcopy(model.features)
    for layer in features.modules():
        if isinstance(layer, torch.nn.ReLU):
            layer.inplace = False
    blocks = conv_blocks(features)
    L, H = utils.bounds(X.detach())
    low, high = L[:1, :, :1, :1], H[:1, :, :1, :1]  # per-channel bounds, 1 x 3 x 1 x 1

    def module_map(ctx, name, module):
        if not isinstance(module, torch.nn.Conv2d):
            return None  # ReLU, max-pool: plain gradient
        i = int(name)
        if i == 0:
            return ZBox(low=low, high=high, stabilizer=eps)
        return Gamma(gamma=gammas[blocks[i] - 1], stabilizer=eps)

    with torch.no_grad():
        R = head_relevance(model, features(X), c)
    X = X.detach().requires_grad_(True)
    with Composite(module_map=module_map).context(features) as hooked, torch.enable_grad():
        (relevance,) = torch.autograd.grad(hooked(X), X, grad_outputs=R)
    return relevance.detach()


def autograd_gradient_x_input(model, X, c):
    """Gradient x Input the plain way: autograd's d logit_c / dX, times X (one sample)."""
    X = X.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(model(X)[0, c], X)
    return (grad * X).detach()
