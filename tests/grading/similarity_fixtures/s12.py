"""Student 12: per-sample loop for Gradient x Input; Conv as a subclass holding both weights."""

import torch

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
    per_pixel = R.detach().sum(dim=1)
    pooled = torch.nn.functional.avg_pool2d(per_pixel, size, size) * size**2
    width = pooled.shape[-1]
    top = torch.argsort(pooled.flatten(), descending=True, stable=True)[:steps]

    L, H = utils.bounds(X)
    generator = torch.Generator().manual_seed(seed)
    u = torch.rand(X.shape, generator=generator, dtype=X.dtype)
    replacement = L + u * (H - L)

    keep = torch.ones(X.shape[-2:], dtype=X.dtype)
    inputs = [X.detach()]
    for index in top.tolist():
        a, b = index // width, index % width
        keep[a * size : (a + 1) * size, b * size : (b + 1) * size] = 0
        inputs.append(X.detach() * keep + replacement * (1 - keep))
    with torch.no_grad():
        logits = [model(batch)[:, c] for batch in torch.cat(inputs).split(4)]
    return torch.cat(logits)
