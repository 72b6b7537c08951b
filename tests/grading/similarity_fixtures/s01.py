"""Student 01: backward on a cloned leaf; newlayer with a lambda; region sums in two loops."""

import torch

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    x = X.clone().detach().requires_grad_(True)
    output = model(x)
    output[0, c].backward()
    return x.grad * x


# %% Conv
class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        self.pconv = utils.newlayer(conv, lambda p: p + gamma * p.clamp(min=0))

    def forward(self, X):
        z = self.conv.forward(X)
        zp = self.pconv.forward(X)
        return zp * (z / zp).detach()


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
    return X * X.grad + L * L.grad + H * H.grad


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    x = X.clone().detach().requires_grad_(True)
    output = model(x)
    output[0, c].backward()
    return x.grad * x


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    _, _, height, width = X.shape
    rows, cols = height // size, width // size
    scores = torch.zeros(rows * cols, dtype=R.dtype)
    for i in range(rows):
        for j in range(cols):
            scores[i * cols + j] = R[0, :, i * size : (i + 1) * size, j * size : (j + 1) * size].sum()
    order = torch.argsort(scores, descending=True)
    u = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    L, H = utils.bounds(X)
    noise = L + u * (H - L)
    x = X.detach().clone()
    logits = []
    with torch.no_grad():
        logits.append(model(x)[0, c])
        for k in range(steps):
            i, j = divmod(int(order[k]), cols)
            box = (slice(None), slice(None), slice(i * size, (i + 1) * size), slice(j * size, (j + 1) * size))
            x[box] = noise[box]
            logits.append(model(x)[0, c])
    return torch.stack(logits)
