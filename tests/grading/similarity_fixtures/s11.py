"""Student 11: zeroing gradients first; a Conv with the trick written as z.detach(); while loop."""

import torch

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    X = X.detach()
    X.requires_grad = True
    model.zero_grad()
    prediction = model.forward(X)
    prediction[0][c].backward()
    return X.grad.mul(X)


# %% Conv
class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        self.pconv = utils.newlayer(conv, lambda param: param + gamma * (param + param.abs()) / 2)

    def forward(self, X):
        zp = self.pconv(X)
        # same value as z, but the gradient flows through zp, rescaled by z / zp
        return zp * (self.conv(X).detach() / zp.detach())


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
    rx = X * X.grad
    rl = L * L.grad
    rh = H * H.grad
    return rx + rl + rh


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    X = X.detach()
    X.requires_grad = True
    model.zero_grad()
    prediction = model.forward(X)
    prediction[0][c].backward()
    return X.grad.mul(X)


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    R = R.detach()
    nx = X.shape[3] // size
    region_scores = {}
    for y in range(X.shape[2] // size):
        for x in range(nx):
            region_scores[y * nx + x] = R[:, :, y * size : (y + 1) * size, x * size : (x + 1) * size].sum().item()
    order = sorted(region_scores, key=region_scores.get, reverse=True)
    lower, upper = utils.bounds(X)
    u = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    noise = lower + u * (upper - lower)
    image = X.clone().detach()
    curve = []
    k = 0
    while True:
        with torch.no_grad():
            curve.append(model(image)[0, c].item())
        if k == steps:
            break
        y, x = divmod(order[k], nx)
        image[:, :, y * size : (y + 1) * size, x * size : (x + 1) * size] = noise[
            :, :, y * size : (y + 1) * size, x * size : (x + 1) * size
        ]
        k += 1
    return torch.tensor(curve, dtype=X.dtype)
