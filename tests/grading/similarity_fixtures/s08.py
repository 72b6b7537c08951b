"""Student 08: the sum of the logits over the batch; a generator of perturbed images."""

import torch

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    x = X.detach()
    x.requires_grad_(True)
    scores = model(x)[:, c]
    grads = torch.autograd.grad(scores.sum(), x)[0]
    return x.detach() * grads


# %% Conv
class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        self.pconv = utils.newlayer(conv, lambda t: t + gamma * torch.clamp(t, min=0))

    def forward(self, a):
        z = self.conv.forward(a)
        zplus = self.pconv.forward(a)
        return zplus * (z / zplus).detach()


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
    R = torch.zeros_like(X)
    for t in [X, L, H]:
        R = R + t.grad * t
    return R


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    x = X.detach()
    x.requires_grad_(True)
    scores = model(x)[:, c]
    grads = torch.autograd.grad(scores.sum(), x)[0]
    return x.detach() * grads


# %% perturbation_curve
def perturbed(X, noise, corners, size):
    x = X.detach().clone()
    yield x.clone()
    for top, left in corners:
        x[:, :, top : top + size, left : left + size] = noise[:, :, top : top + size, left : left + size]
        yield x.clone()


def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    h, w = X.shape[-2:]
    corners = [(top, left) for top in range(0, h, size) for left in range(0, w, size)]
    relevance = [R[..., t : t + size, s : s + size].sum().item() for t, s in corners]
    ranked = sorted(range(len(corners)), key=lambda i: relevance[i], reverse=True)
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(X.shape, generator=gen, dtype=X.dtype)
    L, H = utils.bounds(X)
    noise = L + u * (H - L)
    chosen = [corners[i] for i in ranked[:steps]]
    with torch.no_grad():
        return torch.cat([model(x)[:, c] for x in perturbed(X, noise, chosen, size)])
