"""The cache folder: $HEATBATH_CACHE, else $XDG_CACHE_HOME/heatbath, else ~/.cache/heatbath."""

from heatbath.core.cache import cache_dir


def test_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HEATBATH_CACHE", str(tmp_path / "own"))
    assert cache_dir("features") == tmp_path / "own" / "features"
    assert (tmp_path / "own" / "features").is_dir()
    monkeypatch.delenv("HEATBATH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "heatbath"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir("x") == tmp_path / "home" / ".cache" / "heatbath" / "x"
