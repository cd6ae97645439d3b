"""An autoregressive model of ±1 spins on an L×M lattice with an exact log q (PixelCNN-style).

Sites are ordered row by row (raster order) and the model gives, for every site, the logit of
P(sᵢ = +1 | s₍<ᵢ₎) (van den Oord et al. 2016; for spins: VAN, Wu, Wang & Zhang 2019). Every
convolution uses only the kernel rows above its centre and the centre row up to the centre:
the first layer excludes the centre (mask type A), so a site never sees its own spin; later
layers include it (type B): there they read the previous layer's features of the same site,
which depend on earlier spins only. Being purely convolutional, one model runs at any L×M.

Geometry, and why sampling is cheap. The input is padded with R = layers·(kernel // 2) zeros
above, left and right, and every convolution is 'valid' (a (half+1)×kernel weight, no padding),
so each layer trims half rows at the top and half columns at each side; after all layers the
map is exactly L×M. With no padding inside the network every activation is a local function of
the input, so it can be computed at one position at a time with the same result. `sample`
keeps every layer's map and, at each site in raster order, computes each layer at that site
only (activations there depend on earlier spins only, so they are final); the padding columns
of a row are filled at its start and end. A site costs `layers` one-position convolutions, not a
pass over the lattice.

Inputs per site: the spin (0 where not yet drawn or outside the lattice), an "inside" channel
(1 on the lattice, 0 in the padding), the periodic neighbours that precede the site although
they lie below or to its right (row 0 for the last row, column 0 for the last column: without
them the bonds across the periodic boundary are invisible to the sites that close them — a
plain zero-padded PixelCNN on 16×16 Ising at β = 0.3 stalled 0.007 per site above βF/N), and
optionally β (one value per sample) so one model covers a range of temperatures.

With `z2=True` (only for h = 0 targets, whose Boltzmann law is symmetric under s → −s) the model
is the symmetrised mixture q₂(s) = ½(q(s) + q(−s)): draw from q, flip the whole lattice with
probability ½; log q₂ is still exact (one more pass for q(−s)).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SPIN, DOWN, RIGHT = 0, 2, 3      # input channels (1: inside the lattice; 4: β)

# activations kept while drawing (all layers' maps of one chunk of samples): bounds memory; the
# draws do not depend on the chunking (every uniform is drawn up front)
SAMPLE_FLOATS = 2 ** 25


class HalfMaskedConv(nn.Module):
    """A k×k convolution restricted to the rows above its centre and the centre row up to the
    centre, which the first `blind` input channels do not see (type A for the spins: 1; type B:
    0); 'valid': the output is half rows shorter, 2·half columns narrower, and output (i, j) is
    centred on input (i + half, j + half)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, blind: int = 0) -> None:
        super().__init__()
        half = kernel // 2
        self.weight = nn.Parameter(torch.zeros(c_out, c_in, half + 1, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        mask = torch.ones(c_in, half + 1, kernel)
        mask[:, half, half + 1:] = 0     # the centre row: the future is hidden
        mask[:blind, half, half] = 0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias)


def _wrapped_neighbours(spins: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The periodic neighbours that precede a site in raster order although they lie below or
    to its right: the last row's down neighbours (row 0) and the last column's right
    neighbours (column 0), at the sites they neighbour; 0 elsewhere. Functions of earlier
    spins only, so the first layer sees them at the centre too."""
    down, right = torch.zeros_like(spins), torch.zeros_like(spins)
    down[:, -1, :] = spins[:, 0, :]
    right[:, :, -1] = spins[:, :, 0]
    return down, right


def _crop(x: torch.Tensor, half: int) -> torch.Tensor:
    """What a HalfMaskedConv's output lines up with: drop half rows on top, half columns on
    each side."""
    return x[..., half:, half:x.shape[-1] - half]


class MaskedConvSpins(nn.Module):
    """P(s) = Πᵢ P(sᵢ | s₍<ᵢ₎) over ±1 spins (B, L, M), any L×M; see the module docstring."""

    def __init__(self, layers: int = 3, channels: int = 16, kernel: int = 5,
                 conditioned: bool = False, z2: bool = False,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if layers < 1 or channels < 1 or kernel < 3 or kernel % 2 == 0:
            raise ValueError(f"need layers >= 1, channels >= 1 and an odd kernel >= 3; got "
                             f"{layers}, {channels}, {kernel}")
        self.layers, self.half = layers, kernel // 2
        self.conditioned, self.z2 = conditioned, z2
        self.reach = layers * self.half        # R: rows above / columns aside a site sees
        inputs = 5 if conditioned else 4       # spin, inside, two wrapped neighbours[, β]
        self.first = HalfMaskedConv(inputs, channels, kernel, blind=1)
        self.blocks = nn.ModuleList(HalfMaskedConv(channels, channels, kernel)
                                    for _ in range(layers - 1))
        self.hidden = nn.Conv2d(channels, channels, 1)
        self.out = nn.Conv2d(channels, 1, 1)
        self._initialise(generator or torch.Generator().manual_seed(0))

    def _initialise(self, generator: torch.Generator) -> None:
        """Uniform(±1/√fan-in) weights from `generator` (same seed ⇒ same model), zero biases,
        and a zero output layer: the untrained model is the uniform law, exact at β = 0."""
        with torch.no_grad():
            for layer in (self.first, *self.blocks, self.hidden):
                fan_in = layer.weight[0].numel()
                layer.weight.uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in),
                                      generator=generator)
                layer.bias.zero_()
            self.out.weight.zero_()
            self.out.bias.zero_()

    @property
    def dtype(self) -> torch.dtype:
        return self.out.weight.dtype

    # -- the network --------------------------------------------------------------------
    def _layer(self, j: int, h: torch.Tensor, active: torch.Tensor | None = None
               ) -> torch.Tensor:
        """Layer j (0: the type-A input layer; then residual type-B blocks) on a map h
        (`active`: silu(h) when the caller keeps it)."""
        if j == 0:
            return self.first(h)
        return _crop(h, self.half) + self.blocks[j - 1](F.silu(h) if active is None else active)

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        """Per-position logits from the last layer's features (1×1: no new dependencies)."""
        return self.out(F.silu(self.hidden(F.silu(h))))[:, 0]

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, L, M) of a padded input (B, C, L + R, M + 2R)."""
        for j in range(self.layers):
            x = self._layer(j, x)
        return self._head(x)

    def _padded_input(self, spins: torch.Tensor, beta) -> torch.Tensor:
        """(B, C, L + R, M + 2R): spins, inside, wrapped neighbours[, β], zero-padded above,
        left and right."""
        n, L, M = spins.shape
        if L < 2 or M < 2:      # a site would be its own wrapped neighbour
            raise ValueError(f"lattices must be at least 2×2, got {L}×{M}")
        spins = spins.to(self.dtype)
        channels = [spins, torch.ones_like(spins), *_wrapped_neighbours(spins)]
        if self.conditioned:
            channels.append(self._betas(beta, n).reshape(n, 1, 1).expand(n, L, M))
        R = self.reach
        return F.pad(torch.stack(channels, 1), (R, R, R, 0))

    def _betas(self, beta, n: int) -> torch.Tensor:
        if beta is None:
            raise ValueError("this model is conditioned on beta: pass beta (a number or (n,))")
        beta = torch.as_tensor(beta, dtype=self.dtype)
        return beta.expand(n) if beta.ndim == 0 else beta

    # -- densities -----------------------------------------------------------------------
    def log_prob(self, spins: torch.Tensor, beta=None) -> torch.Tensor:
        """Exact log q(s), (B,) in float64; one pass (two with z2). Differentiable."""
        spins = spins.reshape(spins.shape[0], *spins.shape[-2:])
        log_q = self._log_prob_ordered(spins, beta)
        if not self.z2:
            return log_q
        return torch.logaddexp(log_q, self._log_prob_ordered(-spins, beta)) - math.log(2.0)

    def _log_prob_ordered(self, spins: torch.Tensor, beta) -> torch.Tensor:
        logits = self._logits(self._padded_input(spins, beta))
        return F.logsigmoid(spins.to(logits.dtype) * logits).double().sum(dim=(1, 2))

    @torch.no_grad()
    def sample(self, n: int, L: int, M: int, beta=None,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n exact draws (n, L, M) of ±1 as float64 and their log q (n,), float64.

        Site by site in raster order (see the module docstring); log q is accumulated from the
        very logits the spins were drawn with. Every uniform is drawn first, one row of them
        per draw (its L·M sites, then its z2 flip), so a draw does not depend on n or on the
        chunks that bound memory.
        """
        drawn = torch.rand(n, L * M + self.z2, generator=generator, dtype=torch.float64)
        uniforms = drawn[:, :L * M].reshape(n, L, M)
        flips = drawn[:, -1] < 0.5 if self.z2 else None
        betas = self._betas(beta, n) if self.conditioned else None
        grid = (L + self.reach) * (M + 2 * self.reach) * self.out.in_channels * self.layers
        chunk = max(1, SAMPLE_FLOATS // grid)
        parts = []
        for i in range(0, n, chunk):
            part = slice(i, i + chunk)
            beta_part = None if betas is None else betas[part]
            spins, log_q = self._sample_ordered(uniforms[part], beta_part)
            if self.z2:    # the mixture ½q(s) + ½q(−s): flip half the draws
                log_q = (torch.logaddexp(log_q, self._log_prob_ordered(-spins, beta_part))
                         - math.log(2.0))
                spins = torch.where(flips[part, None, None], -spins, spins)
            parts.append((spins, log_q))
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _sample_ordered(self, uniforms: torch.Tensor, betas
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draws of the raster-order model q (no z2 flip) from given uniforms (n, L, M)."""
        n, L, M = uniforms.shape
        R, channels_last = self.reach, torch.channels_last
        # every layer's map and its silu, channels last: a site's C features sit together
        x = self._padded_input(torch.zeros(n, L, M, dtype=torch.float64), betas)
        x = x.contiguous(memory_format=channels_last)
        H, W = x.shape[-2:]
        maps = [x] + [x.new_zeros(n, self.out.in_channels, H, W).contiguous(
            memory_format=channels_last) for _ in range(self.layers)]
        active = [None] + [torch.zeros_like(m) for m in maps[1:]]
        log_q = torch.zeros(n, dtype=torch.float64)
        for a in range(H):
            if a < R:                       # the top padding: no spins, whole rows at once
                self._fill_row(maps, active, a, 0, W)
                continue
            if a == R + L - 1:              # the last row: row 0 is below it
                x[:, DOWN, a, R:R + M] = x[:, SPIN, R, R:R + M]
            self._fill_row(maps, active, a, 0, R)   # the left padding of this row
            for b in range(R, R + M):
                self._fill_row(maps, active, a, b, b + 1)
                logit = self._head(maps[-1][:, :, a:a + 1, b:b + 1])[:, 0, 0].double()
                spin = torch.where(uniforms[:, a - R, b - R] < torch.sigmoid(logit), 1.0, -1.0)
                x[:, SPIN, a, b] = spin.to(x.dtype)
                if b == R:                  # the row's first spin: right of its last site
                    x[:, RIGHT, a, R + M - 1] = spin.to(x.dtype)
                log_q += F.logsigmoid(spin * logit)
            self._fill_row(maps, active, a, R + M, W)   # the right padding: sees the whole row
        return x[:, SPIN, R:, R:R + M].double(), log_q

    def _fill_row(self, maps: list[torch.Tensor], active: list, a: int, lo: int, hi: int
                  ) -> None:
        """Every layer's activations at grid row a, columns lo…hi−1 (where the layer is
        defined: j+1 halves from the top and the sides), in layer order."""
        half, W = self.half, maps[0].shape[-1]
        for j in range(self.layers):
            edge = (j + 1) * half
            start, stop = max(lo, edge), min(hi, W - edge)
            if a < edge or start >= stop:
                continue
            rows, columns = slice(a - half, a + 1), slice(start - half, stop + half)
            window = maps[j][:, :, rows, columns]
            window_active = None if j == 0 else active[j][:, :, rows, columns]
            value = self._layer(j, window, window_active)[:, :, 0]
            maps[j + 1][:, :, a, start:stop] = value
            active[j + 1][:, :, a, start:stop] = F.silu(value)
