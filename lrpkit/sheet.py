"""What exercise sheet 12 fixes: the class explained, VGG-16's conv blocks, gamma per block.

Students get this module with the self-checks; the reference LRP, the checks, the explorer,
the references and the benchmarks import these numbers from here and nowhere else.
"""

#: the neuron explained: ImageNet class 483, castle.
CLASS = 483
#: indices in ``model.features`` of the convolutions of each VGG-16 block 1-5.
BLOCKS = ((0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28))
#: indices in ``model.features`` of the max-pooling layers closing each block.
POOLS = (4, 9, 16, 23, 30)
#: LRP-gamma per conv block 1-5, as on the sheet: high in low blocks, near zero on top.
GAMMAS = (10**-0.0, 10**-0.5, 10**-1.0, 10**-1.5, 10**-2.0)
#: the first convolution gets the z^B rule; every other convolution LRP-gamma.
FIRST = BLOCKS[0][0]
#: stabiliser: zp + EPS * sign(zp) keeps z / zp finite where zp is zero.
EPS = 1e-9


def block_of(index):
    """Block number (1-5) of the convolution at ``model.features[index]``."""
    for block, layers in enumerate(BLOCKS, 1):
        if index in layers:
            return block
    raise ValueError(f"features[{index}] is not one of VGG-16's convolutions")


def layer_gammas(gammas=GAMMAS):
    """{features index: gamma} of the LRP-gamma convolutions (all but the first)."""
    if len(gammas) != len(BLOCKS):
        raise ValueError(f"need one gamma per conv block 1-5; got {len(gammas)}")
    return {i: gammas[block_of(i) - 1] for layers in BLOCKS for i in layers if i != FIRST}


def stabilize(zp, eps=EPS):
    """zp moved away from zero by eps in the direction of its sign (zero counts as +)."""
    # +eps where zp >= 0, -eps elsewhere (2 eps - eps is exactly eps), in zp's dtype and
    # on its device; not with torch.where, whose CPU kernel is ~5 times slower.
    return zp + (zp >= 0).to(zp).mul_(2 * eps).sub_(eps)
