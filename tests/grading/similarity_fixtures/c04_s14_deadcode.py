"""Planted copy of s14: dead code added (unused variables and helpers, debug branches)."""

import torch

import utils

# %% gradient_x_input
DEBUG = False


def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    shape = X.shape
    x = X.clone().requires_grad_(True)
    if DEBUG:
        print("input", shape)
    logit = model(x).squeeze(0)[c]
    tmp = logit.item()
    logit.backward(retain_graph=False)
    return x.grad * x.data


# %% Conv
DEBUG = False


def gamma_rule(gamma):
    def g(p):
        return p + gamma * p.clamp(min=0)

    return g


def unused_rule(p):
    return p


def lrp_pair(conv, gamma):
    return conv, utils.newlayer(conv, gamma_rule(gamma))


class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv, self.pconv = lrp_pair(conv, gamma)
        self.name = "gamma conv"

    def forward(self, X):
        out = self.conv(X)
        out_g = self.pconv(X)
        if DEBUG:
            print(out.shape, out_g.shape)
        return out_g * (out / out_g).detach()


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
    count = 3
    contributions = {"x": X * X.grad, "low": L * L.grad, "high": H * H.grad}
    return contributions["x"] + contributions["low"] + contributions["high"]


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    shape = X.shape
    x = X.clone().requires_grad_(True)
    if DEBUG:
        print("input", shape)
    logit = model(x).squeeze(0)[c]
    tmp = logit.item()
    logit.backward(retain_graph=False)
    return x.grad * x.data


# %% perturbation_curve
DEBUG = False


def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    H_px, W_px = X.shape[-2], X.shape[-1]
    n_regions = (H_px // size) * (W_px // size)
    regions = []
    for top in range(0, H_px, size):
        for left in range(0, W_px, size):
            regions.append((R[0, :, top : top + size, left : left + size].sum().item(), top, left))
    assert len(regions) == n_regions
    regions.sort(key=lambda entry: entry[0], reverse=True)
    gen = torch.Generator().manual_seed(seed)
    low, high = utils.bounds(X)
    spread = high - low
    noise = low + torch.rand(X.shape, generator=gen, dtype=X.dtype) * (high - low)
    out = torch.zeros(steps + 1, dtype=X.dtype)
    img = X.detach().clone()
    history = []
    with torch.no_grad():
        out[0] = model(img)[0, c]
        for k in range(1, steps + 1):
            _, top, left = regions[k - 1]
            if DEBUG:
                history.append((top, left))
            img[0, :, top : top + size, left : left + size] = noise[0, :, top : top + size, left : left + size]
            out[k] = model(img)[0, c]
    return out
