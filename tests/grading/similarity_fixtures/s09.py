"""Student 09: the jacobian of the logit; a custom autograd Function for the gradient trick."""

import torch

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    J = torch.autograd.functional.jacobian(lambda x: model(x)[0, c], X)
    return J * X


# %% Conv
class GammaTrick(torch.autograd.Function):
    """Forward: z. Backward: the gradient of zp scaled by z / zp."""

    @staticmethod
    def forward(ctx, z, zp):
        ctx.save_for_backward(z, zp)
        return z.clone()

    @staticmethod
    def backward(ctx, grad_out):
        z, zp = ctx.saved_tensors
        return None, grad_out * z / zp


class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        self.pconv = utils.newlayer(conv, lambda w: w + gamma * w.relu())

    def forward(self, X):
        return GammaTrick.apply(self.conv(X).detach(), self.pconv(X))


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
    return sum(map(lambda v: v * v.grad, (X, L, H)))


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    J = torch.autograd.functional.jacobian(lambda x: model(x)[0, c], X)
    return J * X


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    n = X.shape[-1] // size
    grid = R.detach().sum(1)[0].unfold(0, size, size).unfold(1, size, size).sum((-1, -2))
    rank = torch.empty(n * n, dtype=torch.long)
    rank[grid.flatten().argsort(descending=True, stable=True)] = torch.arange(n * n)
    # pixel (i, j) belongs to region (i // size) * n + j // size
    pixel_rank = rank.view(n, n).repeat_interleave(size, 0).repeat_interleave(size, 1)
    L, H = utils.bounds(X)
    u = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    noise = L + u * (H - L)
    k = torch.arange(steps + 1).view(-1, 1, 1, 1)
    batch = torch.where(pixel_rank < k, noise, X.detach())
    with torch.no_grad():
        return model(batch)[:, c]
