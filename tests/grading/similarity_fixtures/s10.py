"""Student 10: a vector-Jacobian product; Conv from F.conv2d on precomputed weights; permute."""

import torch
import torch.nn.functional as F

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    _, vjp = torch.autograd.functional.vjp(
        lambda inputs: model(inputs)[:, c], X, torch.ones(X.shape[0], dtype=X.dtype)
    )
    return vjp * X


# %% Conv
class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        self.register_buffer("w_gamma", conv.weight.detach() * (1 + gamma * (conv.weight > 0)))
        self.register_buffer("b_gamma", conv.bias.detach() * (1 + gamma * (conv.bias > 0)))

    def forward(self, X):
        z = self.conv(X)
        zp = F.conv2d(X, self.w_gamma, self.b_gamma, padding=self.conv.padding, stride=self.conv.stride)
        return zp * (z / zp).detach()


# %% lrp_relevance
def lrp_relevance(lrpmodel, X, c):
    """Extended Gradient x Input through the LRP model: R = X dX + L dL + H dH, shaped like X."""
    L, H = utils.bounds(X)
    X, L, H = (t.detach().requires_grad_(True) for t in (X, L, H))
    lrpmodel.forward((X, L, H))[0, c].backward()
    return X * X.grad + L * L.grad + H * H.grad


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    _, vjp = torch.autograd.functional.vjp(
        lambda inputs: model(inputs)[:, c], X, torch.ones(X.shape[0], dtype=X.dtype)
    )
    return vjp * X


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    rows, cols = X.shape[2] // size, X.shape[3] // size
    tiles = R.detach().sum(1).view(rows, size, cols, size).permute(0, 2, 1, 3)
    scores = tiles.reshape(rows * cols, size * size).sum(1)
    sequence = scores.sort(descending=True, stable=True).indices[:steps]
    L, H = utils.bounds(X)
    b = L + torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype) * (H - L)
    x = X.detach().clone()
    results = torch.empty(steps + 1, dtype=X.dtype)
    with torch.no_grad():
        results[0] = model(x)[0, c]
        for k, region in enumerate(sequence.tolist(), start=1):
            i0 = (region // cols) * size
            j0 = (region % cols) * size
            x[..., i0 : i0 + size, j0 : j0 + size] = b[..., i0 : i0 + size, j0 : j0 + size]
            results[k] = model(x)[0, c]
    return results
