"""Planted copy of s11: comments and docstrings rewritten, removed and added."""

import torch

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    # compute gradient times input for the castle class
    X = X.detach()
    X.requires_grad = True  # we need the gradient w.r.t. the input
    model.zero_grad()  # clear old gradients
    prediction = model.forward(X)
    # backpropagate from the logit of class c
    prediction[0][c].backward()
    return X.grad.mul(X)  # elementwise product


# %% Conv
class Conv(torch.nn.Module):
    """LRP-gamma for a convolution (my implementation)."""

    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        # positive part is (w + |w|) / 2
        self.pconv = utils.newlayer(conv, lambda param: param + gamma * (param + param.abs()) / 2)

    def forward(self, X):
        zp = self.pconv(X)
        # trick from the slides
        return zp * (self.conv(X).detach() / zp.detach())


# %% lrp_relevance
def lrp_relevance(lrpmodel, X, c):
    """Relevance of the pixels and of the bounds."""
    # bounds
    L, H = utils.bounds(X)
    X = X.detach().requires_grad_(True)
    L.requires_grad_(True)
    H.requires_grad_(True)

    # forward + backward
    lrpmodel.forward((X, L, H))[0, c].backward()
    rx = X * X.grad  # pixels
    rl = L * L.grad  # lower bound
    rh = H * H.grad  # upper bound
    return rx + rl + rh


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    # same as in exercise 3
    X = X.detach()
    X.requires_grad = True  # we need the gradient w.r.t. the input
    model.zero_grad()  # clear old gradients
    prediction = model.forward(X)
    # backpropagate from the logit of class c
    prediction[0][c].backward()
    return X.grad.mul(X)  # elementwise product


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Region perturbation: replace the most relevant regions by noise, one after the other."""
    R = R.detach()
    nx = X.shape[3] // size  # regions per row
    # relevance per region
    region_scores = {}
    for y in range(X.shape[2] // size):
        for x in range(nx):
            region_scores[y * nx + x] = R[:, :, y * size : (y + 1) * size, x * size : (x + 1) * size].sum().item()
    # most relevant first
    order = sorted(region_scores, key=region_scores.get, reverse=True)
    lower, upper = utils.bounds(X)
    # noise as on the sheet
    u = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    noise = lower + u * (upper - lower)
    image = X.clone().detach()
    curve = []
    k = 0
    while True:
        with torch.no_grad():
            curve.append(model(image)[0, c].item())
        if k == steps:  # done
            break
        y, x = divmod(order[k], nx)
        # perturb region k
        image[:, :, y * size : (y + 1) * size, x * size : (x + 1) * size] = noise[
            :, :, y * size : (y + 1) * size, x * size : (x + 1) * size
        ]
        k += 1
    return torch.tensor(curve, dtype=X.dtype)
