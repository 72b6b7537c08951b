"""Planted copy of s09 (one of two): names changed, the helper Function renamed."""

import torch

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    jac = torch.autograd.functional.jacobian(lambda inp: model(inp)[0, c], X)
    return jac * X


# %% Conv
class RescaledGradient(torch.autograd.Function):
    """Forward: z. Backward: the gradient of zp scaled by z / zp."""

    @staticmethod
    def forward(ctx, out, out_plus):
        ctx.save_for_backward(out, out_plus)
        return out.clone()

    @staticmethod
    def backward(ctx, upstream):
        out, out_plus = ctx.saved_tensors
        return None, upstream * out / out_plus


class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        self.pconv = utils.newlayer(conv, lambda weight: weight + gamma * weight.relu())

    def forward(self, X):
        return RescaledGradient.apply(self.conv(X).detach(), self.pconv(X))


# %% lrp_relevance
def lrp_relevance(lrpmodel, X, c):
    """Extended Gradient x Input through the LRP model: R = X dX + L dL + H dH, shaped like X."""
    # Prepare data and lower/upper bounds
    L, H = utils.bounds(X)
    X = X.detach().requires_grad_(True)  # a fresh leaf, so X.grad starts empty
    L.requires_grad_(True)
    H.requires_grad_(True)

    # Apply the modified gradient x input
    lrpmodel.forward((X, L, H))[0, c].backward()
    return sum(map(lambda t: t * t.grad, (X, L, H)))


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    jac = torch.autograd.functional.jacobian(lambda inp: model(inp)[0, c], X)
    return jac * X


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    m = X.shape[-1] // size
    patches = R.detach().sum(1)[0].unfold(0, size, size).unfold(1, size, size).sum((-1, -2))
    position = torch.empty(m * m, dtype=torch.long)
    position[patches.flatten().argsort(descending=True, stable=True)] = torch.arange(m * m)
    # pixel (i, j) belongs to region (i // size) * m + j // size
    position_px = position.view(m, m).repeat_interleave(size, 0).repeat_interleave(size, 1)
    lo, hi = utils.bounds(X)
    r = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    replacement = lo + r * (hi - lo)
    step = torch.arange(steps + 1).view(-1, 1, 1, 1)
    images = torch.where(position_px < step, replacement, X.detach())
    with torch.no_grad():
        return model(images)[:, c]
