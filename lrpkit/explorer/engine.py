"""The gamma explorer's engine: explicit LRP of VGG-16, cached, recomputing only what changed.

``Engine(model, X).relevance(method, c, gammas)`` gives the pixel relevance of one image
(Gradient x Input or LRP with a gamma per conv block); the widgets (``widget.py``) and
Exercise 5's notebook call it. It is an explicit, layer-by-layer LRP (the four steps of the
LRP overview paper): zp_k = sum_j a_j rho(w_jk) + stabiliser; s_k = R_k / zp_k;
c_j = sum_k rho(w_jk) s_k; R_j = a_j c_j. It uses no autograd, and it is fast because almost
everything is cached:

- one forward pass per image stores, for every convolution, its output z and
  z_plus = conv(a, w+) + b+. LRP-gamma's denominator is then zp = z + gamma * z_plus, so a
  new gamma needs no forward convolution, only elementwise work and one transposed
  convolution per layer;
- the message c arriving at the top of every block is kept per class, so a gamma change
  in block k recomputes blocks k, k-1, ..., 1 only: at most one backward pass over them.

Gradient x Input runs on the same engine with LRP-0 everywhere (z rule with the bias in the
denominator), which for a ReLU network gives exactly the gradient times the input.
"""

from collections import Counter

import torch
import torch.nn.functional as F

import utils
from lrpkit.sheet import BLOCKS, GAMMAS, stabilize
from lrpkit.sheet import CLASS as CASTLE

GXI, LRP = "Gradient × Input", "LRP"
METHODS = (GXI, LRP)


def _last(t):
    """t in the channels-last memory layout (the same values)."""
    return t.contiguous(memory_format=torch.channels_last)


class _Conv:
    """A convolution and the ReLU after it: cached forward state and the LRP rules.

    Going down, each rule maps the message c_k at the ReLU's output (R_k = a_k c_k) to the
    message at the convolution's input, c_j = sum_k rho(w_jk) s_k with s_k = R_k / zp_k.
    s_k = c_k * (a_k / zp_k) and the ratio a_k / zp_k is cached: it changes with gamma only.
    """

    def __init__(self, index, conv, a, L, H):
        self.index, self.conv = index, conv
        w, b = conv.weight, conv.bias
        # the forward pass in the model's own memory layout, rounded as the model rounds it
        # (ReLU masks and max-pooling winners as in autograd); what goes down is kept in the
        # channels-last layout, on which the CPU's convolutions are faster.
        self.out = self._forward(a, w, b)
        self.z = _last(self.out)
        # output_padding that gives the transposed convolution the input's size back
        self.pad = tuple(
            n - ((m - 1) * s - 2 * p + d * (k - 1) + 1)
            for n, m, s, p, d, k in zip(
                a.shape[-2:],
                self.z.shape[-2:],
                conv.stride,
                conv.padding,
                conv.dilation,
                conv.kernel_size,
            )
        )
        # With stride 1, going down is a plain convolution with the kernel flipped and its
        # channels swapped, padded by d (k - 1) - p: faster on the CPU than the transposed one.
        self.flip_pad = tuple(
            d * (k - 1) - p for d, k, p in zip(conv.dilation, conv.kernel_size, conv.padding)
        )
        self.flip = (
            conv.stride == (1, 1)
            and conv.groups == 1
            and not any(self.pad)
            and min(self.flip_pad) >= 0
        )
        self.w = self._down(w)
        if index == 0:
            # z^B rule: the lowest and highest pixel values L, H bound what each input can add.
            zB = (
                self.out
                - self._forward(L, w.clamp(min=0), b.clamp(min=0))
                - self._forward(H, w.clamp(max=0), b.clamp(max=0))
            )
            self.ratio = _last(self.out.clamp(min=0) / stabilize(zB))
            # x, -l and -h times w, w+ and w- in one convolution going down
            self.wB = self._down(torch.cat([w, -w.clamp(min=0), -w.clamp(max=0)], dim=1))
            self.X, self.XLH = _last(a), _last(torch.cat([a, L, H], dim=1))
        else:
            # LRP-gamma's zp = z + gamma * z_plus for every gamma, from this one convolution.
            self.z_plus = _last(self._forward(a, w.clamp(min=0), b.clamp(min=0)))
        self._ratio = None  # (gamma, a / zp) for the last gamma used

    def _forward(self, a, w, b):
        c = self.conv
        return F.conv2d(a, w, b, c.stride, c.padding, c.dilation, c.groups)

    def _down(self, w):
        """A weight in the form _backward takes it (flipped, channels swapped, when it can)."""
        if not self.flip:
            return w
        return _last(w.flip(2, 3).transpose(0, 1))

    def _backward(self, s, w):
        """c_j = sum_k w_jk s_k: the transposed convolution (gradient with respect to the input)."""
        c = self.conv
        if self.flip:
            return F.conv2d(s, w, None, 1, self.flip_pad, c.dilation)
        return F.conv_transpose2d(s, w, None, c.stride, c.padding, self.pad, c.groups, c.dilation)

    def lrp0(self, c):
        """LRP-0, z_k = sum_j a_j w_jk + b_k: s_k = c_k where a_k > 0 (Gradient x Input)."""
        # a_k / z_k is 1 where the ReLU lets z through, else 0: no division needed.
        c = self._backward(torch.where(self.z > 0, c, 0), self.w)
        return self.X * c if self.index == 0 else c  # on the pixels: R_i = x_i c_i

    def lrp_gamma(self, c, gamma):
        """LRP-gamma: zp_k = sum_j a_j (w_jk + gamma w_jk^+) + b_k + gamma b_k^+.

        The ratio a / zp is kept for the last gamma (a block below a changed one reuses it);
        the weights w + gamma w+ are made anew on each call, elementwise and cheap beside the
        convolution, and neither they nor w+ are kept (2 x 59 MB for VGG-16)."""
        if self._ratio is None or self._ratio[0] != gamma:
            zp = stabilize(torch.add(self.z, self.z_plus, alpha=gamma))
            self._ratio = (gamma, self.z.clamp(min=0).div_(zp))
        w = torch.add(self.w, self.w.clamp(min=0), alpha=gamma)  # w+ of the flipped w: the same
        return self._backward(c * self._ratio[1], w)

    def zbox(self, c):
        """z^B: R_i = sum_j (x_i w_ij - l_i w_ij^+ - h_i w_ij^-) R_j / zB_j on the pixels."""
        R = self.XLH * self._backward(c * self.ratio, self.wB)
        return R[:, 0:3] + R[:, 3:6] + R[:, 6:9]


class _Pool:
    """Max pooling: relevance goes back to the winning input (winner takes all)."""

    def __init__(self, pool, a):
        self.pool, self.shape = pool, a.shape
        self.a, self.indices = F.max_pool2d(
            a,
            pool.kernel_size,
            pool.stride,
            pool.padding,
            pool.dilation,
            pool.ceil_mode,
            return_indices=True,
        )

    def route(self, c):
        # R = a c and the winner's a is the same on both sides, so c is routed like R.
        p = self.pool
        return F.max_unpool2d(c, self.indices, p.kernel_size, p.stride, p.padding, self.shape[-2:])


class Engine:
    """Cached explicit LRP of one image through VGG-16 (no autograd involved).

    ``relevance(method, c, gammas)`` returns the pixel relevance and recomputes only what
    changed since the last call for the same method and class. ``counts`` counts forward
    passes (``"forward"``), dense-head passes (``"head"``) and block recomputations (1-5).
    """

    def __init__(self, model, X):
        if model.training:
            raise ValueError("the model is in training mode (dropout on): call model.eval() first")
        if X.dim() != 4 or X.shape[0] != 1 or X.shape[1] != 3:
            raise ValueError(f"X must be one image, 1 x 3 x H x W; got shape {tuple(X.shape)}")
        p = next(model.parameters())
        self.model = model
        self.counts = Counter()
        self._cache = {}
        with torch.no_grad():  # a copy that is not part of any autograd graph
            self.X = X.to(device=p.device, dtype=p.dtype).clone()
            self._forward()

    @torch.no_grad()
    def _forward(self):
        """The one forward pass: caches every convolution's z and z_plus, every pool's winners."""
        self.counts["forward"] += 1
        L, H = utils.bounds(self.X)
        a, blocks, steps = self.X, [], []
        for i, layer in enumerate(self.model.features):
            if isinstance(layer, torch.nn.Conv2d):
                if not isinstance(self.model.features[i + 1], torch.nn.ReLU):
                    raise ValueError(f"features[{i}] is not followed by a ReLU; expected VGG-16")
                conv = _Conv(i, layer, a, L, H)
                steps.append(conv)
                a, conv.out = conv.out, None
            elif isinstance(layer, torch.nn.ReLU):
                a = F.relu(a)  # the ReLU is part of the _Conv before it
            elif isinstance(layer, torch.nn.MaxPool2d):
                pool = _Pool(layer, a)
                blocks.append([*steps, pool])
                steps, a = [], pool.a
            else:
                raise ValueError(f"features[{i}] is a {type(layer).__name__}; expected VGG-16")
        convs = tuple(tuple(s.index for s in b if isinstance(s, _Conv)) for b in blocks)
        if steps or convs != BLOCKS:
            raise ValueError("the explorer needs torchvision's VGG-16 (conv blocks 1-5)")
        self.blocks = dict(enumerate(blocks, 1))
        self.top = a
        self.logits = self._head_forward(a)

    def _head_forward(self, a):
        """The dense head, keeping what its backward pass needs."""
        pooled = self.model.avgpool(a)
        if pooled.shape != a.shape:
            raise ValueError(f"explore needs a 224 x 224 image; features gave {tuple(a.shape)}")
        self._head = []
        a = torch.flatten(pooled, 1)
        for layer in self.model.classifier:
            if isinstance(layer, torch.nn.Linear):
                self._head.append(layer)
                a = layer(a)
            elif isinstance(layer, torch.nn.ReLU):
                self._head.append(a > 0)
                a = F.relu(a)
            elif not isinstance(layer, torch.nn.Dropout):  # dropout is off in eval mode
                raise ValueError(f"unexpected {type(layer).__name__} in model.classifier")
        return a

    @torch.no_grad()
    def _head_message(self, c):
        """Dense layers left intact: the message at the output of ``features`` is df_c/da."""
        self.counts["head"] += 1
        msg = None
        for step in reversed(self._head):
            if isinstance(step, torch.nn.Linear):
                msg = step.weight[c][None] if msg is None else msg @ step.weight
            else:
                msg = msg * step
        return msg.reshape(self.top.shape)

    @torch.no_grad()
    def _block(self, k, msg, method, gamma):
        """Message at the input of block k (relevance, for block 1) from the one at its top."""
        self.counts[k] += 1
        for step in reversed(self.blocks[k]):
            if isinstance(step, _Pool):
                msg = step.route(msg)
            elif method == GXI:
                msg = step.lrp0(msg)
            elif step.index == 0:
                msg = step.zbox(msg)
            else:
                msg = step.lrp_gamma(msg, gamma)
        return msg

    def relevance(self, method=LRP, c=CASTLE, gammas=GAMMAS):
        """Pixel relevance of class c (1 x 3 x H x W), recomputing only blocks whose input changed.

        Returns the relevance and the blocks recomputed (highest first).
        """
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got {method!r}")
        gammas = tuple(float(g) for g in gammas) if method == LRP else (None,) * 5
        if len(gammas) != 5:
            raise ValueError(f"need one gamma per conv block 1-5; got {len(gammas)}")
        c = int(c)
        state = self._cache.get((method, c))
        if state is None:
            # msg[k]: the message at the top of block k; msg[0]: the pixel relevance
            state = self._cache[(method, c)] = {"gammas": (), "msg": {5: self._head_message(c)}}
        # Block k's input depends on the gammas of blocks k and above only.
        changed = [k for k in range(1, 6) if state["gammas"][k - 1 : k] != gammas[k - 1 : k]]
        msg = state["msg"]
        for k in range(max(changed, default=0), 0, -1):
            msg[k - 1] = self._block(k, msg[k], method, gammas[k - 1])
        state["gammas"] = gammas
        msg[0] = msg[0].contiguous()
        return msg[0], changed[::-1]

    def sums(self, method=LRP, c=CASTLE):
        """Logit f_c and the relevance sums at the top of blocks 5-1 (R = a c) and on the pixels."""
        msg = self._cache[(method, int(c))]["msg"]
        sums = {"logit": float(self.logits[0, c])}
        sums.update({k: float((self.blocks[k][-1].a * msg[k]).sum()) for k in range(5, 0, -1)})
        sums[0] = float(msg[0].sum())
        return sums
