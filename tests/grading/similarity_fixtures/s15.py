"""Student 15: backward on a summed selection; Conv wraps the gamma copy in a Sequential."""

import torch

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    leaf = X.detach().requires_grad_(True)
    model(leaf).select(1, c).sum().backward()
    product = torch.mul(leaf.grad, leaf)
    return product.detach()


# %% Conv
class Conv(torch.nn.Module):
    def __init__(self, conv, gamma):
        torch.nn.Module.__init__(self)
        self.conv = conv
        self.pconv = utils.newlayer(conv, lambda w: w + gamma * torch.nn.functional.relu(w))
        self.gamma = gamma

    def forward(self, X):
        z = self.conv(X)
        zp = self.pconv(X)
        scale = torch.div(z, zp).detach()
        return torch.mul(zp, scale)


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
    total = 0
    for tensor in (X, L, H):
        total = total + torch.mul(tensor, tensor.grad)
    return total


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    """Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X."""
    leaf = X.detach().requires_grad_(True)
    model(leaf).select(1, c).sum().backward()
    product = torch.mul(leaf.grad, leaf)
    return product.detach()


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    """Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor."""
    region_map = torch.nn.functional.lp_pool2d(R.detach().sum(1, keepdim=True), 1, size)
    flat = region_map.view(-1)
    per_row = region_map.shape[-1]
    steps_order = flat.sort(descending=True, stable=True).indices[:steps]
    L, H = utils.bounds(X)
    rnd = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
    fill = L + rnd * (H - L)
    masks = torch.zeros(steps + 1, 1, X.shape[2], X.shape[3], dtype=torch.bool)
    for k, region in enumerate(steps_order.tolist()):
        r0, c0 = (region // per_row) * size, (region % per_row) * size
        masks[k + 1 :, :, r0 : r0 + size, c0 : c0 + size] = True
    images = torch.where(masks, fill, X.detach())
    with torch.no_grad():
        return torch.cat([model(part)[:, c] for part in images.split(16)])
