"""Planted copy of two: Exercises 3 and 4 from s12, Exercise 5 from s16, word for word."""

import torch
import torch.nn.functional as F

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    R = torch.empty_like(X)
    for n in range(len(X)):
        xn = X[n : n + 1].detach().requires_grad_(True)
        model(xn)[0, c].backward()
        R[n] = (xn * xn.grad)[0]
    return R


# %% Conv
class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        positive = lambda t: torch.where(t > 0, t, torch.zeros_like(t))
        self.pconv = utils.newlayer(conv, lambda t: t + gamma * positive(t))

    def forward(self, X):
        z = self.conv.forward(X)
        denominator = self.pconv.forward(X)
        factor = z / denominator
        return denominator * factor.detach()


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
    return torch.einsum("nchw,nchw->nchw", X, X.grad) + L * L.grad + H * H.grad


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    R = torch.empty_like(X)
    for n in range(len(X)):
        xn = X[n : n + 1].detach().requires_grad_(True)
        model(xn)[0, c].backward()
        R[n] = (xn * xn.grad)[0]
    return R


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    relmap = R.detach().sum(dim=1, keepdim=True)
    sums = F.avg_pool2d(relmap, kernel_size=size, stride=size).flatten() * (size * size)
    ncol = X.shape[-1] // size
    top = sums.topk(steps, sorted=True).indices
    lo, hi = utils.bounds(X)
    u = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    noise = lo + u * (hi - lo)
    x_k = X.detach().clone()
    all_images = [x_k]
    for t in top:
        r, q = int(t) // ncol, int(t) % ncol
        x_k = x_k.clone()
        x_k[:, :, r * size : (r + 1) * size, q * size : (q + 1) * size] = noise[:, :, r * size : (r + 1) * size, q * size : (q + 1) * size]
        all_images.append(x_k)
    with torch.no_grad():
        logits = model(torch.cat(all_images, dim=0))
    return logits[:, c]
