"""A data run directory whose files were damaged or edited is refused in one line."""

import pytest
import torch
from safetensors.torch import save_file



@pytest.fixture
def copy(tiny_data_run, copy_run):
    return copy_run(tiny_data_run)


@pytest.mark.parametrize("tensors,fragment", [
    ({"y": torch.zeros(5, 2)}, "no 'x'"), ({"x": torch.zeros(5, 3)}, "shape (5, 3)"),
    ({"x": torch.zeros(5, 2), "c": torch.zeros(4)}, "4 conditions")])
def test_a_damaged_heldout_file_is_one_line(copy, tensors, fragment, user_error):
    save_file(tensors, str(copy / "heldout.safetensors"))
    user_error(["estimate", copy], "heldout.safetensors", fragment)


@pytest.mark.parametrize("key,value", [("name", "vp"), ("prediction", "eps")])
def test_an_edited_path_in_config_toml_is_refused(copy, key, value, user_error):
    head, section = (copy / "config.toml").read_text().split("[path]\n")
    body, rest = section.split("\n\n", 1)
    edited = "\n".join(f'{key} = "{value}"' if line.startswith(f"{key} = ") else line
                       for line in body.splitlines())
    assert edited != body
    (copy / "config.toml").write_text(f"{head}[path]\n{edited}\n\n{rest}")
    user_error(["sample", copy, "-n", "2"], "trained on linear/velocity")
