"""Planted copy of s05: renamed, recommented, dead code added and reformatted, all at once."""

import torch

import utils


# %% gradient_x_input
def score_of(net, inp, cls):
    # the logit
    return net(inp)[0, cls]


def grad_wrt_input(net, inp, cls):
    unused = None
    inp = inp.detach().requires_grad_(True)
    score_of(net, inp, cls).backward()  # backprop
    return inp.grad


def gradient_x_input(model, X, c):
    # multiply
    return X*grad_wrt_input(model, X, c)


# %% Conv
def make_rule(g):
    # w + g * w+
    return lambda weights: weights + g*weights.clamp(min = 0)


class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        self.pconv = utils.newlayer(conv,
                                    make_rule(gamma))
        self.debug = False

    def forward(self, X):
        out, out_p = self.conv(X), self.pconv(X)
        if self.debug: print(out.shape)
        return out_p*(out/out_p).detach()


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
    parts = [t*t.grad for t in [X, L, H]]  # three terms
    return parts[0]+parts[1]+parts[2]


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    # copied from exercise 3
    return X*grad_wrt_input(model, X, c)


# %% perturbation_curve
def sums_per_region(rel, s):
    summed = rel.detach()[0].sum(0)
    nrow, ncol = summed.shape[0]//s, summed.shape[1]//s
    total = 0
    return [(float(summed[a*s:(a+1)*s, b*s:(b+1)*s].sum()), a, b)
            for a in range(nrow) for b in range(ncol)]


def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    # sort regions, most relevant first
    by_relevance = sorted(sums_per_region(R, size), key=lambda entry: -entry[0])[:steps]
    lo, hi = utils.bounds(X)
    rand = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    fill = lo + rand*(hi - lo)
    img = X.detach().clone()
    logits = [score_of(model, img, c).detach()]
    for _, a, b in by_relevance:
        ra, rb = slice(a*size, (a + 1)*size), slice(b*size, (b + 1)*size)
        img[:, :, ra, rb] = fill[:, :, ra, rb]
        logits.append(score_of(model, img, c).detach())  # next step
    return torch.stack(logits)
