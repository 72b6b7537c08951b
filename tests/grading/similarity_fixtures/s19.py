"""Student 19: torch.func.vjp; Conv copies via newlayer for both parts; recursion for steps."""

import torch

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    logit, pullback = torch.func.vjp(lambda x: model(x)[0, c], X)
    (dX,) = pullback(torch.ones_like(logit))
    return dX * X


# %% Conv
class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = utils.newlayer(conv, lambda p: p)
        self.pconv = utils.newlayer(conv, lambda p: (1 + gamma) * p.clamp(min=0) + p.clamp(max=0))

    def forward(self, X):
        z = self.conv(X)
        zp = self.pconv(X)
        return zp * (z / zp).detach()


# %% lrp_relevance
def lrp_relevance(lrpmodel, X, c):
    """Extended Gradient x Input through the LRP model: R = X dX + L dL + H dH, shaped like X."""
    L, H = utils.bounds(X)
    inputs = [X.detach().requires_grad_(True), L.requires_grad_(True), H.requires_grad_(True)]
    f = lrpmodel.forward(tuple(inputs))[0, c]
    grads = torch.autograd.grad(f, inputs)
    return sum(i * g for i, g in zip(inputs, grads))


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    logit, pullback = torch.func.vjp(lambda x: model(x)[0, c], X)
    (dX,) = pullback(torch.ones_like(logit))
    return dX * X


# %% perturbation_curve
def replace_regions(image, noise, regions, size, per_row):
    if not regions:
        return [image]
    previous = replace_regions(image, noise, regions[:-1], size, per_row)
    last = previous[-1].clone()
    top, left = (regions[-1] // per_row) * size, (regions[-1] % per_row) * size
    last[..., top : top + size, left : left + size] = noise[..., top : top + size, left : left + size]
    return previous + [last]


def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    per_row = X.shape[3] // size
    summed = R.detach().sum(axis=1).squeeze(0)
    cells = summed.reshape(-1, size, per_row, size).transpose(1, 2).sum(axis=(2, 3)).flatten()
    regions = cells.argsort(descending=True, stable=True)[:steps].tolist()
    L, H = utils.bounds(X)
    u = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    images = replace_regions(X.detach(), L + u * (H - L), regions, size, per_row)
    with torch.no_grad():
        return torch.stack([model(img)[0, c] for img in images])
