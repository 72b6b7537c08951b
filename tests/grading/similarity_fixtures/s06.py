"""Student 06: torch.func.grad; Conv whose forward builds the gamma weights each time."""

import torch
import torch.nn.functional as F

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    df = torch.func.grad(lambda inp: model(inp)[0, c])
    return X * df(X)


# %% Conv
class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        self.gamma = gamma

    def forward(self, X):
        w = self.conv.weight
        b = self.conv.bias
        opts = dict(stride=self.conv.stride, padding=self.conv.padding)
        z = F.conv2d(X, w, b, **opts)
        zp = F.conv2d(X, w + self.gamma * F.relu(w), b + self.gamma * F.relu(b), **opts)
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
    return torch.stack([X * X.grad, L * L.grad, H * H.grad]).sum(0)


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    df = torch.func.grad(lambda inp: model(inp)[0, c])
    return X * df(X)


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    ones = torch.ones(1, 3, size, size, dtype=R.dtype)
    region_relevance = F.conv2d(R.detach(), ones, stride=size)  # 1 x 1 x rows x cols
    ncols = region_relevance.shape[-1]
    picks = torch.sort(region_relevance.reshape(-1), descending=True, stable=True)[1][:steps]
    low, high = utils.bounds(X)
    uniform = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    noise = low + uniform * (high - low)
    perturbed = X.detach().clone()
    stack = [perturbed.clone()]
    for p in picks:
        i, j = divmod(p.item(), ncols)
        area = (..., slice(i * size, i * size + size), slice(j * size, j * size + size))
        perturbed[area] = noise[area]
        stack.append(perturbed.clone())
    with torch.no_grad():
        f = model(torch.cat(stack))
    return f[:, c]
