"""Student 05: helper functions for the logit and its gradient; Conv keeps two copies of conv."""

import torch

import utils


# %% gradient_x_input
def logit(model, X, c):
    return model(X)[0, c]


def input_gradient(model, X, c):
    X = X.detach().requires_grad_(True)
    logit(model, X, c).backward()
    return X.grad


def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    return X * input_gradient(model, X, c)


# %% Conv
def plus(gamma):
    return lambda w: w + gamma * w.clamp(min=0)


class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        self.pconv = utils.newlayer(conv, plus(gamma))

    def forward(self, X):
        z, zp = self.conv(X), self.pconv(X)
        return zp * (z / zp).detach()


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
    terms = [v * v.grad for v in [X, L, H]]
    return terms[0] + terms[1] + terms[2]


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    return X * input_gradient(model, X, c)


# %% perturbation_curve
def region_sums(R, size):
    total = R.detach()[0].sum(0)
    rows, cols = total.shape[0] // size, total.shape[1] // size
    return [
        (float(total[r * size : (r + 1) * size, q * size : (q + 1) * size].sum()), r, q)
        for r in range(rows)
        for q in range(cols)
    ]


def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    ranked = sorted(region_sums(R, size), key=lambda t: -t[0])[:steps]
    L, H = utils.bounds(X)
    u = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    noise = L + u * (H - L)
    x = X.detach().clone()
    curve = [logit(model, x, c).detach()]
    for _, r, q in ranked:
        rs, qs = slice(r * size, (r + 1) * size), slice(q * size, (q + 1) * size)
        x[:, :, rs, qs] = noise[:, :, rs, qs]
        curve.append(logit(model, x, c).detach())
    return torch.stack(curve)
