"""From the command line: the modality of a file's arrays is explicit when the shape does not
decide it, and a file whose header lies about its size is one line, not a MemoryError."""

import numpy as np



def test_particle_shaped_arrays_need_data_kind(tmp_path, user_error, cli, tiny):
    np.savez(tmp_path / "lj.npz", x=np.random.default_rng(0).normal(size=(64, 13, 3)))
    user_error(["fit", "--data", tmp_path / "lj.npz", "--out", tmp_path / "r", *tiny.data],
               "data.kind=vector")
    assert not (tmp_path / "r").exists()
    code, _, err = cli(["fit", "--data", tmp_path / "lj.npz", "--out", tmp_path / "r",
                        "--set", "data.kind=vector", *tiny.data])
    assert code == 0, err
    assert 'kind = "vector"' in (tmp_path / "r" / "config.toml").read_text()


def test_a_header_claiming_a_huge_array_is_one_line(tmp_path, user_error, tiny):
    path = tmp_path / "huge.npy"
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 9, 10 ** 6)})
        handle.write(b"\0" * 64)
    user_error(["fit", "--data", path, "--out", tmp_path / "r", *tiny.data], "huge.npy")
