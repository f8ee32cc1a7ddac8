"""Image and mask I/O: modes, EXIF orientation, atomic writes, stem listing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from paperlib.checks import InputError
from paperlib.images import (
    atomic_path,
    binarize,
    list_images,
    read_image,
    read_mask,
    resize_mask,
    write_mask_png,
)


def test_read_image_any_mode_gives_rgb_uint8(tmp_path, rng):
    grey = rng.integers(0, 256, (7, 5), dtype=np.uint8)
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    rgba = rng.integers(0, 256, (7, 5, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    Image.fromarray(grey, mode="L").convert("P").save(tmp_path / "p.png")

    g = read_image(tmp_path / "g.png")
    assert g.shape == (7, 5, 3) and g.dtype == np.uint8
    np.testing.assert_array_equal(g[..., 0], grey)
    np.testing.assert_array_equal(g[..., 2], grey)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgba[..., :3])
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), g)


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((4, 6, 3), dtype=np.uint8)
    arr[0, 0] = 255                                  # a marker in the top-left corner
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6                                 # "rotate 90 CW to display"
    img.save(tmp_path / "r.png", exif=exif)
    out = read_image(tmp_path / "r.png")
    assert out.shape == (6, 4, 3)                    # displayed upright: width and height swap
    assert out[0, -1].max() == 255                   # the marker moved to the top-right corner


def test_read_mask_scales(tmp_path):
    m8 = np.array([[0, 128, 255]], dtype=np.uint8)
    Image.fromarray(m8, mode="L").save(tmp_path / "m8.png")
    np.testing.assert_allclose(read_mask(tmp_path / "m8.png"), m8 / 255.0, atol=1e-7)
    m16 = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(m16).save(tmp_path / "m16.png")
    np.testing.assert_allclose(read_mask(tmp_path / "m16.png"), m16 / 65535.0, atol=1e-6)
    Image.fromarray(np.array([[0, 1, 1]], dtype=bool)).save(tmp_path / "m1.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m1.png"), [[0.0, 1.0, 1.0]])
    np.testing.assert_array_equal(binarize(read_mask(tmp_path / "m8.png")), [[False, True, True]])


def test_unreadable_file_names_it(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="broken.png"):
        read_image(bad)
    with pytest.raises(InputError, match="missing.png"):
        read_mask(tmp_path / "missing.png")


def test_mask_roundtrip_and_atomic_failure(tmp_path, rng):
    mask = rng.random((9, 11))
    write_mask_png(tmp_path / "m.png", mask)
    np.testing.assert_allclose(read_mask(tmp_path / "m.png"), mask, atol=0.5 / 255 + 1e-7)
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt", "m.png"]


def test_a_failed_write_names_the_file_asked_for_not_the_temporary(tmp_path):
    import errno

    target = tmp_path / "out" / "m.png"
    with pytest.raises(OSError) as err:
        with atomic_path(target) as tmp:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))   # as a full disk reports
    assert (err.value.filename, err.value.errno) == (str(target), errno.ENOSPC)
    with pytest.raises(OSError) as err:
        with atomic_path(target):
            raise OSError(errno.ENOSPC, "No space left on device")            # as Pillow's encoder reports
    assert err.value.filename == str(target) and not list(target.parent.iterdir())
    other = tmp_path / "input.png"                       # an error about another file keeps its name
    with pytest.raises(OSError) as err:
        with atomic_path(target):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(other))
    assert err.value.filename == str(other)
    (tmp_path / "blocked").write_text("a file where a folder is needed")
    with pytest.raises(OSError) as err:
        with atomic_path(tmp_path / "blocked" / "m.png"):
            pass
    assert err.value.filename == str(tmp_path / "blocked" / "m.png")


def test_list_images_rejects_duplicate_stems(tmp_path):
    Image.new("L", (2, 2)).save(tmp_path / "a.png")
    Image.new("RGB", (2, 2)).save(tmp_path / "a.jpg")
    with pytest.raises(InputError, match="share the stem 'a'"):
        list_images(tmp_path)


def test_resize_mask_rules(rng):
    const = np.full((5, 7), 0.3, dtype=np.float32)
    np.testing.assert_allclose(resize_mask(const, (13, 4)), 0.3, atol=1e-6)
    hard = (rng.random((4, 4)) > 0.5).astype(np.float32)
    up = resize_mask(hard, (8, 8), mode="nearest")
    np.testing.assert_array_equal(up, np.kron(hard, np.ones((2, 2))))


def test_list_images_prefers_the_declared_suffix(tmp_path):
    Image.new("L", (2, 2)).save(tmp_path / "a.png")
    Image.new("RGB", (2, 2)).save(tmp_path / "a.jpg")
    Image.new("RGB", (2, 2)).save(tmp_path / "b.jpg")
    found = list_images(tmp_path, prefer=".png")
    assert found == {"a": tmp_path / "a.png", "b": tmp_path / "b.jpg"}


def test_save_figure_is_atomic_and_takes_the_format_from_the_suffix(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from paperlib.images import save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert save_figure(fig, tmp_path / "f" / "a.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "f" / "b.svg").name == save_figure(fig, tmp_path / "f" / "b.svg").name
    assert "<svg" in (tmp_path / "f" / "b.svg").read_text()[:400]
    # A failure while drawing leaves neither a partial file nor a temporary one.
    monkeypatch.setattr(fig, "savefig", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk full")))
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(fig, tmp_path / "f" / "c.png")
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["a.png", "b.svg"]
    plt.close(fig)


def test_written_files_get_the_users_umask_not_0600(tmp_path):
    import os
    import stat

    from paperlib.images import write_mask_png

    old = os.umask(0o027)
    try:
        write_mask_png(tmp_path / "m.png", np.zeros((4, 4)))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.png").stat().st_mode) == 0o640


def test_an_8_bit_mask_in_a_16_bit_file_is_named_in_a_warning(tmp_path):
    from PIL import Image

    from paperlib.images import read_mask

    arr = np.zeros((6, 6), np.uint16)
    arr[1:4, 1:4] = 255                       # 8-bit values, 16-bit container
    Image.fromarray(arr).save(tmp_path / "m16.png")
    with pytest.warns(UserWarning, match="m16.png: a 16-bit mask whose values never exceed 255"):
        mask = read_mask(tmp_path / "m16.png")
    assert mask.max() == pytest.approx(255 / 65535)       # read as stored: the warning says why it scores empty
    arr[1:4, 1:4] = 65535
    Image.fromarray(arr).save(tmp_path / "full16.png")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_mask(tmp_path / "full16.png").max() == 1.0     # a real 16-bit mask: no warning
