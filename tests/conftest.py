"""Shared test set-up: small thread count (CI has 2 cores) and a deterministic default dtype."""

import torch

torch.set_num_threads(1)
