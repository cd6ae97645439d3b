"""EGNN: exact E(n) and permutation equivariance, zero centre of mass, conditioning, gradients."""

import pytest
import torch

from heatbath.nets.egnn import EGNN

P, D, B = 5, 3, 4
TOL = 1e-10
CONDITIONS = ["none", "classes", "classes-drop", "cont", "cont-drop"]


def make_net(seed=0, n=P, d=D, **kw):
    torch.manual_seed(seed)
    return EGNN(n, d, hidden=16, depth=3, time_dim=8, **kw).double()


def gen(seed):
    return torch.Generator().manual_seed(seed)


def setting(name):
    """(net kwargs, c, drop) for one conditioning setting."""
    drop = torch.tensor([True, False, True, False]) if name.endswith("drop") else None
    if name.startswith("classes"):
        return dict(num_classes=3), torch.tensor([0, 2, 1, 2]), drop
    if name.startswith("cont"):
        return dict(cond_dim=2), torch.randn(B, 2, dtype=torch.float64, generator=gen(9)), drop
    return {}, None, None


def random_inputs(seed=1, n=P, d=D):
    x = torch.randn(B, n, d, dtype=torch.float64, generator=gen(seed))
    t = torch.rand(B, dtype=torch.float64, generator=gen(seed + 1))
    return x, t


def orthogonal(det, d=D, seed=3):
    q, r = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64, generator=gen(seed)))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) * det < 0:
        q[:, 0] = -q[:, 0]
    assert torch.isclose(torch.det(q), torch.tensor(float(det), dtype=torch.float64))
    return q


@pytest.fixture(params=CONDITIONS)
def conditioned(request):
    kw, c, drop = setting(request.param)
    return make_net(**kw), c, drop


@pytest.mark.parametrize("det", [1, -1], ids=["rotation", "reflection"])
def test_orthogonal_maps_act_on_the_output(conditioned, det):
    net, c, drop = conditioned
    x, t = random_inputs()
    q = orthogonal(det)
    v = net(x, t, c, drop)
    assert v.abs().max() > 1e-4                        # not equivariant by being zero
    torch.testing.assert_close(net(x @ q.T, t, c, drop), v @ q.T, rtol=0, atol=TOL)


def test_translation_leaves_the_output_unchanged(conditioned):
    net, c, drop = conditioned
    x, t = random_inputs()
    shift = torch.tensor([1.5, -2.0, 0.7], dtype=torch.float64)
    torch.testing.assert_close(net(x + shift, t, c, drop), net(x, t, c, drop), rtol=0, atol=TOL)


def test_permuting_particles_permutes_the_output(conditioned):
    net, c, drop = conditioned
    x, t = random_inputs()
    perm = torch.randperm(P, generator=gen(4))
    torch.testing.assert_close(net(x[:, perm], t, c, drop), net(x, t, c, drop)[:, perm],
                               rtol=0, atol=TOL)


def test_centre_of_mass_is_zero(conditioned):
    net, c, drop = conditioned
    x, t = random_inputs()
    x = x + 3.0                                        # input CoM far from zero
    com = net(x, t, c, drop).mean(dim=1)
    assert com.abs().max() < TOL


@pytest.mark.parametrize("n,d", [(2, 1), (3, 2), (13, 3)])
@pytest.mark.parametrize("name", CONDITIONS)
def test_shapes_and_dtypes(n, d, name):
    kw, c, drop = setting(name)
    net = make_net(n=n, d=d, **kw)
    assert net.event_shape == (n, d) and net.dim == n * d
    x, t = random_inputs(n=n, d=d)
    assert net(x, t, c, drop).shape == (B, n, d)
    assert net(x, 0.5, c, drop).shape == (B, n, d)
    v32 = net.float()(x.float(), t.float(), c, drop)
    assert v32.dtype == torch.float32 and v32.shape == (B, n, d)


def test_cfg_drop_matches_the_unconditional_branch():
    net = make_net(num_classes=3)
    x, t = random_inputs()
    labels = torch.tensor([0, 1, 2, 0])
    everything = torch.ones(B, dtype=torch.bool)
    torch.testing.assert_close(net(x, t, labels, everything), net(x, t), rtol=0, atol=0)
    assert (net(x, t, labels) - net(x, t)).abs().max() > 1e-6


def test_output_depends_on_time():
    net = make_net()
    x, _ = random_inputs()
    assert (net(x, 0.1) - net(x, 0.9)).abs().max() > 1e-6


@pytest.mark.parametrize("kw", [dict(num_classes=3), dict(cond_dim=2)], ids=["classes", "cont"])
def test_gradients_reach_every_parameter(kw):
    net = make_net(**kw)
    x, t = random_inputs()
    c = torch.tensor([0, 1, 2, 0]) if "num_classes" in kw else torch.randn(
        B, 2, dtype=torch.float64, generator=gen(5))
    drop = torch.tensor([True, False, False, True])    # some samples reach the null embedding
    target = torch.randn(B, P, D, dtype=torch.float64, generator=gen(6))
    (net(x, t, c, drop) - target).pow(2).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().max() > 0, name
        assert torch.isfinite(p.grad).all(), name


def test_coincident_particles_give_finite_gradients():
    net = make_net()
    x, t = random_inputs()
    x[:, 1] = x[:, 0]
    x.requires_grad_(True)
    net(x, t).pow(2).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("shape", [(B, P * D), (B, P, D + 1), (B, P + 1, D), (P, D), (1, B, P, D)])
def test_bad_input_shapes_raise(shape):
    net = make_net()
    with pytest.raises(ValueError, match="x must have shape"):
        net(torch.zeros(shape, dtype=torch.float64), 0.5)


@pytest.mark.parametrize("args,word", [((1, 3), "n_particles"), ((4, 0), "spatial_dim"),
                                       ((4, 3, 0), "hidden"), ((4, 3, 8, 0), "depth")])
def test_bad_sizes_raise(args, word):
    with pytest.raises(ValueError, match=word):
        EGNN(*args)


def test_same_seed_same_weights_same_output():
    a, b = make_net(seed=7), make_net(seed=7)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    x, t = random_inputs()
    assert torch.equal(a(x, t), b(x, t))
    assert not torch.equal(make_net(seed=8)(x, t), a(x, t))


def test_initial_field_is_small_and_fifty_five_particles_work():
    torch.manual_seed(0)
    net = EGNN(55, 3, hidden=16, depth=2, time_dim=8)
    x = torch.randn(2, 55, 3, generator=gen(2))
    v = net(x, 0.3)
    assert v.shape == (2, 55, 3) and torch.isfinite(v).all()
    assert v.pow(2).mean().sqrt() < 0.1                # neighbour means: no growth with P


def test_sample_output_does_not_depend_on_the_rest_of_the_batch(conditioned):
    net, c, drop = conditioned
    x, t = random_inputs()
    batched = net(x, t, c, drop)
    for i in range(B):
        one = slice(i, i + 1)
        alone = net(x[one], t[one], None if c is None else c[one],
                    None if drop is None else drop[one])
        torch.testing.assert_close(alone[0], batched[i], rtol=0, atol=TOL)
