"""Networks: shapes, dtypes, time broadcasting, conditioning / CFG dropout, batch independence,
seeding, and EMA arithmetic + exact checkpoint round trip."""

import math
import pytest
import torch
from safetensors.torch import load_file, save_file

from heatbath.nets import EMA, MLP, HollowMLP, NetConfigError, UNet, build_net, count_parameters

SMALL_UNET = dict(base=8, mults=(1, 2), time_dim=16)


def small_mlp(**conditioning):
    return MLP(3, hidden=32, depth=2, time_dim=16, **conditioning)


def images(batch, channels, size, generator_seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(generator_seed)
    return torch.randn(batch, channels, size, size, generator=g, dtype=dtype)


# --- shapes and dtypes ---------------------------------------------------------------------------


def test_mlp_output_shape_matches_input():
    x = torch.randn(5, 3)
    assert small_mlp()(x, torch.rand(5)).shape == (5, 3)


@pytest.mark.parametrize("size", [8, 28, 7, 5])
@pytest.mark.parametrize("mults", [(1, 2), (1, 2, 2)])
def test_unet_output_shape_matches_input(size, mults):
    net = UNet(1, size, base=8, mults=mults, time_dim=16)
    x = images(2, 1, size)
    assert net(x, torch.rand(2)).shape == x.shape


def test_unet_pads_bottom_right_and_crops_back_the_original_pixels():
    torch.manual_seed(0)
    odd, even = UNet(1, 7, **SMALL_UNET), UNet(1, 8, **SMALL_UNET)
    even.load_state_dict(odd.state_dict())
    x = images(2, 1, 7)
    padded = torch.nn.functional.pad(x, (0, 1, 0, 1))
    assert torch.allclose(odd(x, 0.3), even(padded, 0.3)[:, :, :7, :7], atol=1e-6, rtol=0)


def test_unet_multichannel_rectangular_with_attention():
    net = UNet(3, (6, 10), base=8, mults=(1, 2), attention=True, time_dim=16)
    x = torch.randn(2, 3, 6, 10)
    out = net(x, 0.5)
    assert out.shape == x.shape
    out.sum().backward()
    assert all(p.grad is not None for p in net.attention.parameters())


@pytest.mark.parametrize(
    "make", [lambda: small_mlp(num_classes=3), lambda: UNet(1, 7, num_classes=3, **SMALL_UNET)]
)
def test_float64_end_to_end(make):
    torch.manual_seed(0)
    net = make().double()
    event_shape = (3,) if isinstance(net, MLP) else (1, 7, 7)
    x = torch.randn(4, *event_shape, dtype=torch.float64, requires_grad=True)
    out = net(x, torch.rand(4, dtype=torch.float64), c=torch.tensor([0, 1, 2, 0]))
    assert out.dtype == torch.float64
    out.square().sum().backward()
    assert x.grad.dtype == torch.float64
    assert all(p.grad is not None and p.grad.dtype == torch.float64 for p in net.parameters())
    # double precision actually flows through: float32 rounding would leave ~1e-7 relative error
    grad_check = torch.autograd.gradcheck(lambda z: net(z, 0.3).sum(), (x[:1].detach().requires_grad_(),))
    assert grad_check


def test_wrong_input_shape_is_refused():
    with pytest.raises(ValueError):
        small_mlp()(torch.randn(4, 2), 0.1)
    with pytest.raises(ValueError):
        UNet(1, 8, **SMALL_UNET)(torch.randn(4, 1, 7, 7), 0.1)


# --- time -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [small_mlp, lambda: UNet(1, 8, **SMALL_UNET)])
def test_scalar_time_broadcasts_like_per_sample_time(make):
    torch.manual_seed(0)
    net = make()
    x = torch.randn(4, 3) if isinstance(net, MLP) else images(4, 1, 8)
    per_sample = net(x, torch.full((4,), 0.37))
    assert torch.equal(net(x, 0.37), per_sample)
    assert torch.equal(net(x, torch.tensor(0.37)), per_sample)


def test_time_changes_output_and_bad_time_shape_is_refused():
    torch.manual_seed(0)
    net, x = small_mlp(), torch.randn(4, 3)
    assert not torch.allclose(net(x, 0.2), net(x, 0.8))
    with pytest.raises(ValueError):
        net(x, torch.rand(3))


# --- conditioning ---------------------------------------------------------------------------------


CONDITIONED = {
    "mlp-classes": (lambda: small_mlp(num_classes=4), lambda: torch.randn(4, 3), torch.tensor([0, 1, 2, 3])),
    "mlp-props": (lambda: small_mlp(cond_dim=2), lambda: torch.randn(4, 3), torch.randn(4, 2)),
    "hollow-classes": (lambda: HollowMLP(3, hidden=16, depth=1, features=4, num_classes=4),
                       lambda: torch.randn(4, 3), torch.tensor([0, 1, 2, 3])),
    "unet-classes": (
        lambda: UNet(1, 8, num_classes=4, **SMALL_UNET), lambda: images(4, 1, 8), torch.tensor([3, 2, 1, 0])
    ),
    "unet-props": (lambda: UNet(1, 8, cond_dim=2, **SMALL_UNET), lambda: images(4, 1, 8), torch.randn(4, 2)),
}


@pytest.mark.parametrize("name", list(CONDITIONED))
def test_condition_changes_output_and_full_drop_equals_unconditional(name):
    make_net, make_x, c = CONDITIONED[name]
    torch.manual_seed(0)
    net, x, t = make_net(), make_x(), torch.rand(4)
    if name.endswith("props"):  # null starts at zero; a non-trivial value shows it is really used
        torch.nn.init.normal_(net.embedding.condition.null)
    unconditional = net(x, t)
    conditional = net(x, t, c)
    assert not torch.allclose(conditional, unconditional)
    assert torch.equal(net(x, t, c, drop=torch.ones(4, dtype=torch.bool)), unconditional)
    # partial drop: dropped rows equal the unconditional rows, kept rows the conditional ones
    drop = torch.tensor([True, False, True, False])
    mixed = net(x, t, c, drop=drop)
    assert torch.allclose(mixed[drop], unconditional[drop], atol=1e-6)
    assert torch.allclose(mixed[~drop], conditional[~drop], atol=1e-6)


def test_dropped_rows_may_hold_placeholders_without_poisoning_gradients():
    torch.manual_seed(0)
    net = small_mlp(cond_dim=2)
    c = torch.tensor([[float("nan"), 0.0], [1.0, 2.0]])
    net(torch.randn(2, 3), 0.5, c, drop=torch.tensor([True, False])).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_conditioning_misuse_is_refused():
    with pytest.raises(ValueError):
        small_mlp()(torch.randn(2, 3), 0.5, c=torch.tensor([0, 1]))
    with pytest.raises(ValueError):
        small_mlp(num_classes=2, cond_dim=2)
    with pytest.raises(ValueError):  # label out of range
        small_mlp(num_classes=2)(torch.randn(2, 3), 0.5, c=torch.tensor([0, 2]))
    with pytest.raises(ValueError):  # float labels
        small_mlp(num_classes=2)(torch.randn(2, 3), 0.5, c=torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError):  # wrong property width
        small_mlp(cond_dim=2)(torch.randn(2, 3), 0.5, c=torch.randn(2, 3))
    with pytest.raises(ValueError):  # drop must be boolean
        small_mlp(num_classes=2)(torch.randn(2, 3), 0.5, c=torch.tensor([0, 1]), drop=torch.ones(2))


# --- batch independence and seeding ---------------------------------------------------------------


@pytest.mark.parametrize(
    "make_net, make_x",
    [
        (lambda: small_mlp(num_classes=3), lambda: torch.randn(6, 3)),
        (lambda: HollowMLP(3, hidden=16, depth=2, features=4, num_classes=3), lambda: torch.randn(6, 3)),
        (lambda: UNet(1, 7, num_classes=3, attention=True, **SMALL_UNET), lambda: images(6, 1, 7)),
    ],
)
def test_sample_output_does_not_depend_on_the_rest_of_the_batch(make_net, make_x):
    # float64: in float32 a convolution's kernel choice depends on the batch size, and its
    # rounding (~1e-6 here) would hide a real leak between samples.
    torch.manual_seed(0)
    net, x = make_net().double(), make_x().double()
    t, c = torch.rand(6, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    drop = torch.tensor([False, True, False, False, True, False])
    batched = net(x, t, c, drop)
    for i in range(6):
        alone = net(x[i : i + 1], t[i : i + 1], c[i : i + 1], drop[i : i + 1])[0]
        assert torch.allclose(batched[i], alone, atol=1e-12, rtol=0)


def test_same_seed_gives_identical_init_and_outputs():
    def build():
        return build_net("unet", (1, 8, 8), num_classes=3, seed=123, **SMALL_UNET)

    torch.manual_seed(999)
    a = build()
    state_before = torch.get_rng_state()
    b = build()
    assert torch.equal(torch.get_rng_state(), state_before)  # seeding did not touch the global RNG
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), name
    x, c = images(3, 1, 8), torch.tensor([0, 1, 2])
    assert torch.equal(a(x, 0.4, c), b(x, 0.4, c))
    other = build_net("unet", (1, 8, 8), num_classes=3, seed=124, **SMALL_UNET)
    assert not torch.equal(other.input.weight, a.input.weight)


# --- factory --------------------------------------------------------------------------------------


def test_build_net_picks_the_network_and_refuses_bad_choices():
    mlp = build_net("mlp", (2,), hidden=16, depth=1, dtype=torch.float64)
    assert isinstance(mlp, MLP) and mlp.input.weight.dtype == torch.float64
    assert count_parameters(mlp) == sum(p.numel() for p in mlp.parameters())
    flat = build_net("mlp", (1, 4, 4), hidden=16, depth=1)   # vector nets flatten images
    assert flat(torch.randn(2, 1, 4, 4), 0.5).shape == (2, 1, 4, 4)
    unet = build_net("unet", (1, 28, 28))
    assert isinstance(unet, UNet) and unet.event_shape == (1, 28, 28)
    assert count_parameters(unet) < 1_000_000  # default stays CPU-friendly
    mlp.input.weight.requires_grad_(False)
    assert count_parameters(mlp) == count_parameters(mlp, trainable_only=False) - mlp.input.weight.numel()
    for bad in [
        lambda: build_net("transformer", (2,)),
        lambda: build_net("unet", (8,)),
        lambda: build_net("unet", (1, 8, 8), hidden=64),
        lambda: build_net("mlp", (2,), mults=(1, 2)),
        lambda: build_net("mlp", (2,), features=8),
        lambda: build_net("unet", (1, 8, 8), features=8),
    ]:
        with pytest.raises(NetConfigError):
            bad()


# --- EMA ------------------------------------------------------------------------------------------


def test_ema_without_warmup_is_the_closed_form_geometric_average():
    model = torch.nn.Linear(2, 1).double()
    decay, values = 0.9, [3.0, -1.0, 0.5, 2.0]
    with torch.no_grad():
        model.bias.fill_(10.0)
    ema = EMA(model, decay=decay, warmup=False)
    for v in values:
        with torch.no_grad():
            model.bias.fill_(v)
        ema.update(model)
    n = len(values)
    expected = decay**n * 10.0 + sum((1 - decay) * decay ** (n - 1 - k) * v for k, v in enumerate(values))
    assert ema.num_updates == n
    assert ema.shadow["bias"].item() == pytest.approx(expected, rel=1e-12)
    ema.copy_to(model)
    assert model.bias.item() == pytest.approx(expected, rel=1e-12)


def test_ema_warmup_forgets_the_init_quickly():
    model = torch.nn.Linear(1, 1).double()
    ema = EMA(model, decay=0.999)
    assert ema.effective_decay() == pytest.approx(0.1)
    with torch.no_grad():
        model.bias.fill_(0.0)
    ema.shadow["bias"].fill_(1.0)
    ema.update(model)  # d = 1/10 -> 0.1 of the old value survives
    assert ema.shadow["bias"].item() == pytest.approx(0.1, rel=1e-12)
    ema.num_updates = 100_000
    assert ema.effective_decay() == 0.999


def test_ema_applied_to_restores_training_weights():
    torch.manual_seed(0)
    model = small_mlp()
    ema = EMA(model, decay=0.5, warmup=False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    with ema.applied_to(model):
        assert torch.equal(model.input.weight, ema.shadow["input.weight"])
    for k, v in model.state_dict().items():
        assert torch.equal(v, trained[k])


def test_ema_state_round_trips_through_safetensors_bit_exactly(tmp_path):
    torch.manual_seed(0)
    model = UNet(1, 8, **SMALL_UNET)
    ema = EMA(model, decay=0.99)
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01 * torch.randn_like(p))
        ema.update(model)
    save_file(ema.state_dict(), tmp_path / "ema.safetensors")
    restored = EMA(UNet(1, 8, **SMALL_UNET), decay=0.99)
    restored.load_state_dict(load_file(tmp_path / "ema.safetensors"), num_updates=ema.num_updates)
    assert restored.num_updates == 3
    for name, tensor in ema.shadow.items():
        assert torch.equal(restored.shadow[name], tensor), name
    # resuming gives the same next update, bit for bit
    ema.update(model)
    restored.update(model)
    assert all(torch.equal(restored.shadow[k], v) for k, v in ema.shadow.items())
    with pytest.raises(ValueError):
        restored.load_state_dict({k: v.double() for k, v in ema.state_dict().items()}, num_updates=1)


def test_fourier_features_are_x_then_sines_and_cosines_per_octave():
    net = MLP(2, hidden=8, depth=1, fourier=3, fourier_scale=4.0)
    x = torch.tensor([[1.0, -2.0]])
    angles = torch.tensor([math.pi * 2 ** k / 4.0 * v for v in (1.0, -2.0) for k in range(3)])
    expected = torch.cat([x[0], torch.sin(angles), torch.cos(angles)])
    assert torch.allclose(net.features(x)[0], expected)
    plain = MLP(2, hidden=8, depth=1)
    assert list(net.state_dict()) == list(plain.state_dict())     # no extra tensors stored
    assert net.input.in_features == 2 * (1 + 2 * 3) and torch.equal(plain.features(x), x)


def test_a_fourier_mlp_run_saves_loads_and_samples(tmp_path, cli, tiny):
    code, _, err = cli(["fit", "--data", "builtin:moons:n=200", "--out", tmp_path / "r",
                        "--set", "model.fourier=2", "--set", "model.fourier_scale=2", *tiny.data])
    assert code == 0, err
    assert cli(["sample", tmp_path / "r", "-n", "4", "--quiet"])[0] == 0
