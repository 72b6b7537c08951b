"""Student 13: a gradient hook; Conv with a stabiliser; a no_grad-decorated scoring helper."""

import torch

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    captured = {}
    inp = X.detach().requires_grad_(True)
    inp.register_hook(lambda g: captured.setdefault("grad", g))
    model(inp)[0, c].backward()
    return inp.detach() * captured["grad"]


# %% Conv
class Conv(torch.nn.Module):
    EPS = 1e-12

    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        self.pconv = utils.newlayer(conv, lambda p: p + gamma * p.clamp(0, None))

    def forward(self, X):
        z = self.conv(X)
        zp = self.pconv(X)
        zp_safe = zp + self.EPS * torch.where(zp >= 0, 1.0, -1.0)
        return zp_safe * (z / zp_safe).detach()


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
    return torch.sum(torch.stack([a * a.grad for a in (X, L, H)], dim=0), dim=0)


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    captured = {}
    inp = X.detach().requires_grad_(True)
    inp.register_hook(lambda g: captured.setdefault("grad", g))
    model(inp)[0, c].backward()
    return inp.detach() * captured["grad"]


# %% perturbation_curve
@torch.no_grad()
def score(model, images, c):
    return model(images)[:, c]


def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    _, _, h, w = R.shape
    sums = R.detach().sum(1).reshape(1, h // size, size, w // size, size).sum(4).sum(2).flatten()
    indices = sums.argsort(descending=True, stable=True)
    noise_u = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    L, H = utils.bounds(X)
    noise = torch.lerp(L, H, noise_u)
    current = X.detach().clone()
    images = [current.clone()]
    for step in range(steps):
        row, col = divmod(indices[step].item(), w // size)
        rows = slice(row * size, row * size + size)
        cols = slice(col * size, col * size + size)
        current[:, :, rows, cols] = noise[:, :, rows, cols]
        images.append(current.clone())
    return score(model, torch.cat(images), c)
