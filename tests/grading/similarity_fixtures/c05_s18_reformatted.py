"""Planted copy of s18: reformatted (line breaks, quotes, spacing, parentheses)."""

import torch

import utils


# %% gradient_x_input
def gradient_x_input(model, X, c):
    '''Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X.'''
    t = X.detach().requires_grad_(True); f = model(t)[0, c]
    torch.autograd.backward(f,
                            inputs=[t])
    return (t.grad*t.detach())


# %% Conv
class Conv(torch.nn.Module):
    def __init__(self,conv,gamma):
        torch.nn.Module.__init__(self)
        self.conv=conv
        self.gamma=gamma
        self.pconv=utils.newlayer(conv,self.rule)
    def rule(self,p):
        return p+self.gamma*torch.maximum(p,torch.zeros_like(p))
    def forward(self,X):
        z=self.conv(X)
        zp=self.pconv(X)
        return zp*(z/zp).detach()


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
    inputs_and_grads = zip(
        (X, L, H),
        (X.grad, L.grad, H.grad),
    )
    return sum(
        value * grad
        for value, grad in inputs_and_grads
    )


# %% gradient_x_input_ex3
def gradient_x_input_ex3(model, X, c):
    '''Gradient x Input: R_i = [grad f(X)]_i * X_i, f the logit of class c; R shaped like X.'''
    t = X.detach().requires_grad_(True); f = model(t)[0, c]
    torch.autograd.backward(f,
                            inputs=[t])
    return (t.grad*t.detach())


# %% perturbation_curve
def perturbation_curve(model, X, R, c, size=14, steps=32, seed=0):
    '''Logits f_c(x^(k)), k = 0..steps, as the k most relevant size x size regions of X are
    replaced by seeded uniform noise (most relevant first, accumulating); a 1-D tensor.'''
    slices = [(slice(i, i+size), slice(j, j+size)) for i in range(0, X.shape[2], size) for j in range(0, X.shape[3], size)]
    heat = R.detach()[0].sum(0)
    amounts = torch.stack([heat[s].sum()
                           for s in slices])
    order = torch.sort(amounts,
                       descending = True,
                       stable = True).indices
    L, H = utils.bounds(X)
    u = torch.rand(X.shape,
                   generator = torch.Generator().manual_seed(seed),
                   dtype = X.dtype)
    noise = L + u*(H - L)
    x = X.detach().clone(); batch = [x.clone()]
    for k in order[:steps]:
        rs, cs = slices[k]
        x[:, :, rs, cs] = noise[:, :, rs, cs]; batch.append(x.clone())
    with torch.no_grad(): return model(torch.cat(batch))[:, c].flatten()
