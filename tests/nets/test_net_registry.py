"""Contract over every registered network: shape in = shape out, conditioning, foreign options
refused, and the data wing's config resolution records exactly the declared options."""

import pytest
import torch

from heatbath.generative.config import RunConfig
from heatbath.generative.resolve import make_net, net_options, resolve_config
from heatbath.nets import NETS, NetConfigError, build_net

SHAPES = {"any": (6,), "image": (1, 8, 8), "particles": (3, 2)}
# Networks of continuous samples, forward(x, t, c); the lattice logits net (periodic) is tested
# in tests/generative/test_lattice_masked.py.
FIELD_NETS = sorted(k for k, v in NETS.items() if v.modality in SHAPES)


@pytest.mark.parametrize("kind", FIELD_NETS)
def test_every_net_maps_x_to_its_shape_with_and_without_classes(kind):
    shape = SHAPES[NETS[kind].modality]
    x = torch.randn(3, *shape)
    t = torch.rand(3)
    for classes in (None, 4):
        net = build_net(kind, shape, num_classes=classes, seed=0)
        c = None if classes is None else torch.tensor([0, 1, 3])
        assert net(x, t, c).shape == x.shape


@pytest.mark.parametrize("kind", FIELD_NETS)
def test_options_of_other_nets_are_refused(kind):
    foreign = {name for other in NETS.values() for name in other.options} - set(NETS[kind].options)
    for name in foreign:
        with pytest.raises(NetConfigError, match=name):
            build_net(kind, SHAPES[NETS[kind].modality], **{name: 2})


@pytest.mark.parametrize("kind", FIELD_NETS)
def test_resolved_options_are_the_declared_ones_and_rebuild_the_net(kind):
    config = RunConfig()
    config.model.net = kind
    config.model.hidden, config.model.depth, config.model.base = 16, 1, 8
    shape = SHAPES[NETS[kind].modality]
    resolve_config(config, shape, {"any": "vector"}.get(NETS[kind].modality, NETS[kind].modality))
    options = net_options(config, shape, None, None, None)
    assert set(options) - {"kind", "event_shape", "num_classes", "cond_dim"} == \
        set(NETS[kind].options) & set(vars(config.model))
    a, b = make_net(options, seed=1, dtype=torch.float64), make_net(options, seed=1, dtype=torch.float64)
    for p, q in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(p, q)
