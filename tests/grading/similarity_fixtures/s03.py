"""Student 03: backward with a one-hot gradient; a named rho function; average pooling."""

import torch
import torch.nn.functional as F

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    inp = X.detach().clone()
    inp.requires_grad = True
    logits = model(inp)
    onehot = torch.zeros_like(logits)
    onehot[0, c] = 1.0
    logits.backward(onehot)
    relevance = inp.grad * inp.detach()
    return relevance


# %% Conv
class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv

        def rho(w):
            return w + gamma * torch.relu(w)

        self.pconv = utils.newlayer(conv, rho)

    def forward(self, X):
        out = self.conv(X)
        out_plus = self.pconv(X)
        ratio = (out / out_plus).detach()
        return out_plus * ratio


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
    relevance = X.grad * X
    relevance += L.grad * L
    relevance += H.grad * H
    return relevance


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    inp = X.detach().clone()
    inp.requires_grad = True
    logits = model(inp)
    onehot = torch.zeros_like(logits)
    onehot[0, c] = 1.0
    logits.backward(onehot)
    relevance = inp.grad * inp.detach()
    return relevance


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    # mean over each region times its area = the sum over the region
    sums = F.avg_pool2d(R.detach().sum(dim=1, keepdim=True), size) * size * size
    grid_w = sums.shape[-1]
    best = torch.topk(sums.flatten(), steps).indices
    gen = torch.Generator()
    gen.manual_seed(seed)
    u = torch.rand(X.shape, generator=gen, dtype=X.dtype)
    lo, hi = utils.bounds(X)
    noisy = lo + u * (hi - lo)
    img = X.detach().clone()
    values = []
    with torch.no_grad():
        values.append(model(img)[0, c].item())
        for idx in best:
            y0 = int(idx) // grid_w * size
            x0 = int(idx) % grid_w * size
            img[:, :, y0 : y0 + size, x0 : x0 + size] = noisy[:, :, y0 : y0 + size, x0 : x0 + size]
            values.append(model(img)[0, c].item())
    return torch.tensor(values, dtype=X.dtype)
