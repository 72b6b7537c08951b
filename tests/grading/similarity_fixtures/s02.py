"""Student 02: torch.autograd.grad; functional conv2d with the gamma weights; images batched."""

import torch
import torch.nn.functional as F

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    X = X.detach().requires_grad_(True)
    f = model(X)[0, c]
    (grad,) = torch.autograd.grad(f, X)
    return grad * X


# %% Conv
class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        w, b = conv.weight, conv.bias
        self.wp = w + gamma * w.clamp(min=0)
        self.bp = b + gamma * b.clamp(min=0)

    def forward(self, X):
        c = self.conv
        z = F.conv2d(X, c.weight, c.bias, c.stride, c.padding, c.dilation, c.groups)
        zp = F.conv2d(X, self.wp, self.bp, c.stride, c.padding, c.dilation, c.groups)
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
    R = sum(t * t.grad for t in (X, L, H))
    return R


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    X = X.detach().requires_grad_(True)
    f = model(X)[0, c]
    (grad,) = torch.autograd.grad(f, X)
    return grad * X


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    n_rows, n_cols = X.shape[2] // size, X.shape[3] // size
    per_region = R.detach()[0].sum(0).reshape(n_rows, size, n_cols, size).sum(dim=(1, 3))
    ranking = per_region.flatten().sort(descending=True, stable=True).indices
    L, H = utils.bounds(X)
    u = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    b = L + u * (H - L)
    current = X.detach().clone()
    batch = [current.clone()]
    for r in ranking[:steps].tolist():
        top, left = (r // n_cols) * size, (r % n_cols) * size
        current[..., top : top + size, left : left + size] = b[..., top : top + size, left : left + size]
        batch.append(current.clone())
    with torch.no_grad():
        out = [model(chunk)[:, c] for chunk in torch.cat(batch).split(8)]
    return torch.cat(out)
