"""Student 17: requires_grad on a copy and grad zeroed by hand; Conv with a forward hook-free
copy via load_state_dict; region indices from meshgrid."""

import torch

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    sample = X.detach().clone().requires_grad_()
    y = model(sample)
    y[0, c].backward()
    g = sample.grad
    return torch.einsum("bchw,bchw->bchw", g, sample).detach()


# %% Conv
class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        self.pconv = utils.newlayer(conv, lambda x: x)
        state = {k: v + gamma * v.clamp(min=0) for k, v in conv.state_dict().items()}
        self.pconv.load_state_dict(state)

    def forward(self, X):
        a = self.conv(X)
        b = self.pconv(X)
        return b * (a / b).detach()


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
    parts = [X * X.grad, L * L.grad, H * H.grad]
    R = parts.pop()
    while parts:
        R = R + parts.pop()
    return R


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    sample = X.detach().clone().requires_grad_()
    y = model(sample)
    y[0, c].backward()
    g = sample.grad
    return torch.einsum("bchw,bchw->bchw", g, sample).detach()


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    height, width = X.shape[2], X.shape[3]
    ii, jj = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    region_of_pixel = (ii // size) * (width // size) + jj // size
    n_regions = (height // size) * (width // size)
    relevance = torch.zeros(n_regions, dtype=R.dtype).index_add_(
        0, region_of_pixel.flatten(), R.detach().sum(1).flatten()
    )
    ordering = relevance.argsort(descending=True, stable=True)[:steps]
    lower, upper = utils.bounds(X)
    u = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    noise = lower + u * (upper - lower)
    replaced = torch.zeros(height, width, dtype=torch.bool)
    values = []
    with torch.no_grad():
        values.append(model(X)[0, c])
        for region in ordering:
            replaced |= region_of_pixel == region
            values.append(model(torch.where(replaced, noise, X))[0, c])
    return torch.stack(values)
