"""Example energy plug-ins for heatbath.

Use them as targets with

    heatbath ... --target examples/my_energy.py:double_well
    heatbath ... --target examples/my_energy.py:TiltedDoubleWell:barrier=6,tilt=0.5

or from Python: `heatbath.targets.registry.build_target("examples/my_energy.py:double_well")`.
Energies are in units of kT, take a batch x of shape (N, *event_shape) and return shape (N,).
"""

import torch


def double_well(x: torch.Tensor) -> torch.Tensor:
    """U(a, b) = 4 (a² − 1)² + b²/2: two modes at a = ±1 separated by a 4 kT barrier."""
    a, b = x[:, 0], x[:, 1]
    return 4.0 * (a ** 2 - 1.0) ** 2 + 0.5 * b ** 2


double_well.event_shape = (2,)
# ln Z = ln ∫exp(−4(a²−1)²) da + ½ ln 2π, the 1-D integral (0.9478378329813468) by float64
# quadrature; it lets heatbath check its log Z estimates against the truth.
double_well.log_z = 0.8653666795887777


class TiltedDoubleWell:
    """A class plug-in: its __init__ arguments become the spec's key=value parameters.

    U(a, b) = barrier (a² − 1)² − tilt·a + b²/2; no exact log Z or samples are given.
    """

    event_shape = (2,)

    def __init__(self, barrier: float = 4.0, tilt: float = 0.0) -> None:
        if barrier <= 0:
            raise ValueError("barrier must be > 0")
        self.barrier = float(barrier)
        self.tilt = float(tilt)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x[:, 0], x[:, 1]
        return self.barrier * (a ** 2 - 1.0) ** 2 - self.tilt * a + 0.5 * b ** 2
