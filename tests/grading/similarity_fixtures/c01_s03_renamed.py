"""Planted copy of s03: every variable, parameter and helper renamed."""

import torch
import torch.nn.functional as F

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    img = X.detach().clone()
    img.requires_grad = True
    out = model(img)
    selector = torch.zeros_like(out)
    selector[0, c] = 1.0
    out.backward(selector)
    result = img.grad * img.detach()
    return result


# %% Conv
class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv

        def modify(param):
            return param + gamma * torch.relu(param)

        self.pconv = utils.newlayer(conv, modify)

    def forward(self, X):
        activ = self.conv(X)
        activ_g = self.pconv(X)
        frac = (activ / activ_g).detach()
        return activ_g * frac


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
    rel = X.grad * X
    rel += L.grad * L
    rel += H.grad * H
    return rel


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    img = X.detach().clone()
    img.requires_grad = True
    out = model(img)
    selector = torch.zeros_like(out)
    selector[0, c] = 1.0
    out.backward(selector)
    result = img.grad * img.detach()
    return result


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    # mean over each region times its area = the sum over the region
    region_total = F.avg_pool2d(R.detach().sum(dim=1, keepdim=True), size) * size * size
    n_across = region_total.shape[-1]
    chosen = torch.topk(region_total.flatten(), steps).indices
    rng = torch.Generator()
    rng.manual_seed(seed)
    rand01 = torch.rand(X.shape, generator=rng, dtype=X.dtype)
    lower, upper = utils.bounds(X)
    randimg = lower + rand01 * (upper - lower)
    pic = X.detach().clone()
    logit_list = []
    with torch.no_grad():
        logit_list.append(model(pic)[0, c].item())
        for which in chosen:
            row0 = int(which) // n_across * size
            col0 = int(which) % n_across * size
            pic[:, :, row0 : row0 + size, col0 : col0 + size] = randimg[:, :, row0 : row0 + size, col0 : col0 + size]
            logit_list.append(model(pic)[0, c].item())
    return torch.tensor(logit_list, dtype=X.dtype)
