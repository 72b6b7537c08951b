"""Student 20: a tiny autograd wrapper class; Conv via a positive-part method; the curve with
index arithmetic on flattened pixels."""

import torch

import utils


# %% gradient_x_input
class InputGradient:
    def __init__(self, model):
        self.model = model

    def __call__(self, X, c):
        X = X.detach().requires_grad_(True)
        self.model(X)[0, c].backward()
        return X.grad


def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    return InputGradient(model)(X, c) * X


# %% Conv
class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        self.pconv = utils.newlayer(conv, lambda p: p + gamma * self.positive(p))

    @staticmethod
    def positive(p):
        return p * (p > 0).to(p.dtype)

    def forward(self, X):
        return self.pconv(X) * (self.conv(X) / self.pconv(X)).detach()


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
    R = X * X.grad
    R = R + L * L.grad
    R = R + H * H.grad
    return R


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    return InputGradient(model)(X, c) * X


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    C, Hh, Ww = X.shape[1:]
    q = Ww // size
    pix = torch.arange(Hh * Ww)
    region_id = (pix // Ww // size) * q + (pix % Ww) // size
    r = torch.bincount(region_id, weights=R.detach().sum(1).flatten().double(), minlength=(Hh // size) * q)
    best = torch.argsort(r, descending=True, stable=True)[:steps]
    L, H = utils.bounds(X)
    u = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    noise = (L + u * (H - L)).view(C, -1)
    x = X.detach().clone().view(C, -1)
    ys = []
    with torch.no_grad():
        ys.append(model(x.view_as(X))[0, c])
        for region in best:
            where = region_id == region
            x[:, where] = noise[:, where]
            ys.append(model(x.view_as(X))[0, c])
    return torch.stack(ys)
