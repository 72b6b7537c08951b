"""Student 07: a Parameter as input; Conv with copies made by hand; numpy for the ranking."""

import numpy as np
import torch

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    image = torch.nn.Parameter(X.detach().clone())
    model(image)[0, c].backward()
    return (image.grad * image).detach()


# %% Conv
class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        self.pconv = torch.nn.Conv2d(
            conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding
        ).to(conv.weight.dtype)
        self.pconv.weight = torch.nn.Parameter(conv.weight + gamma * conv.weight.clip(0))
        self.pconv.bias = torch.nn.Parameter(conv.bias + gamma * conv.bias.clip(0))

    def forward(self, X):
        z = self.conv(X)
        zp = self.pconv(X)
        s = (z / zp).detach()
        return zp * s


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
    R = X.grad * X + L.grad * L + H.grad * H
    return R


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    image = torch.nn.Parameter(X.detach().clone())
    model(image)[0, c].backward()
    return (image.grad * image).detach()


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    rel = R.detach().cpu().numpy()[0].sum(axis=0)
    H_img, W_img = rel.shape
    nr, nc = H_img // size, W_img // size
    blocks = rel.reshape(nr, size, nc, size).sum(axis=(1, 3)).ravel()
    order = np.argsort(-blocks, kind="stable")[:steps]
    low, high = utils.bounds(X)
    u = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    noise = low + (high - low) * u
    xs = X.detach().clone()
    out = []
    with torch.no_grad():
        out.append(model(xs)[0, c])
        for region in order:
            r, q = divmod(int(region), nc)
            ys, zs = r * size, q * size
            xs[0, :, ys : ys + size, zs : zs + size] = noise[0, :, ys : ys + size, zs : zs + size]
            out.append(model(xs)[0, c])
    return torch.stack(out).to(X.dtype)
