"""Planted copy of s09 (two of two): reformatted, with dead code and new comments."""

import torch

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    # jacobian of the class logit w.r.t. the input has the shape of X
    J = torch.autograd.functional.jacobian(
        lambda x: model(x)[0, c],
        X,
    )
    checked = J.shape == X.shape
    return J*X


# %% Conv
class GammaTrick(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, zp):
        ctx.save_for_backward(z, zp)
        return z.clone()

    @staticmethod
    def backward(ctx, grad_out):
        z, zp = ctx.saved_tensors
        ratio = None
        return None, grad_out*z/zp


class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        self.pconv = utils.newlayer(conv, lambda w: w + gamma*w.relu())
        self.calls = 0

    def forward(self, X):
        # custom backward
        return GammaTrick.apply(self.conv(X).detach(),
                                self.pconv(X))


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
    return sum(map(lambda v: v*v.grad,
                   (X, L, H)))


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    # from exercise 3
    J = torch.autograd.functional.jacobian(
        lambda x: model(x)[0, c],
        X,
    )
    checked = J.shape == X.shape
    return J*X


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    n = X.shape[-1]//size
    grid = R.detach().sum(1)[0].unfold(0, size, size).unfold(1, size, size).sum((-1, -2))
    if grid.numel() != n*n:
        print("not square?")
    rank = torch.empty(n*n, dtype=torch.long)
    rank[grid.flatten().argsort(descending=True, stable=True)] = torch.arange(n*n)
    pixel_rank = (rank.view(n, n)
                  .repeat_interleave(size, 0)
                  .repeat_interleave(size, 1))
    L, H = utils.bounds(X)
    u = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    noise = L + u*(H - L)
    k = torch.arange(steps + 1).view(-1, 1, 1, 1)
    # all steps in one batch
    batch = torch.where(pixel_rank < k, noise, X.detach())
    with torch.no_grad():
        out = model(batch)
    return out[:, c]
