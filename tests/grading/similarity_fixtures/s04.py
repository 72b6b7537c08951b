"""Student 04: autograd.grad in an enable_grad block; a deep copy with new parameters; masks."""

import copy

import torch
import torch.nn.functional as F

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    with torch.enable_grad():
        x = X.detach().requires_grad_()
        grad = torch.autograd.grad(model(x)[0][c], x)[0]
    return (x * grad).detach()


# %% Conv
class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        self.pconv = copy.deepcopy(conv)
        with torch.no_grad():
            self.pconv.weight += gamma * conv.weight.clamp(min=0)
            if conv.bias is not None:
                self.pconv.bias += gamma * conv.bias.clamp(min=0)

    def forward(self, X):
        z = self.conv(X)
        p = self.pconv(X)
        return p * (z / p).detach()


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
    return (X * X.grad).add(L * L.grad).add(H * H.grad)


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    with torch.enable_grad():
        x = X.detach().requires_grad_()
        grad = torch.autograd.grad(model(x)[0][c], x)[0]
    return (x * grad).detach()


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    heat = R.detach().sum(1, keepdim=True)
    # unfold: one column per region, its size*size pixels in the rows
    per_region = F.unfold(heat, kernel_size=size, stride=size).sum(1)[0]
    order = per_region.argsort(descending=True, stable=True)[:steps]
    u = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    L, H = utils.bounds(X)
    replacement = L + u * (H - L)
    mask = torch.zeros(1, 1, X.shape[2] // size, X.shape[3] // size, dtype=torch.bool)
    images = [X.detach()]
    for region in order:
        mask.view(-1)[region] = True
        full = mask.repeat_interleave(size, 2).repeat_interleave(size, 3)
        images.append(torch.where(full, replacement, X.detach()))
    with torch.no_grad():
        return model(torch.cat(images))[:, c]
