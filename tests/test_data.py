"""paperlib.data.saliency: the dataset registry, layout lookup, pairing by stem and reading samples."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from paperlib.checks import InputError
from paperlib.data.saliency import (
    DATASETS,
    FolderPairs,
    SaliencyDataset,
    Sample,
    find_layout,
    open_dataset,
    pair_files,
)


def write_pairs(images_dir: Path, masks_dir: Path, stems, *, hw=(12, 16), seed=0) -> dict[str, tuple]:
    """Write random RGB images and grey masks as PNG (lossless, so exact values can be compared).

    Returns stem -> (image, mask) uint8 arrays.
    """
    rng = np.random.default_rng(seed)
    images_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for stem in stems:
        image = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
        mask = rng.integers(0, 256, hw, dtype=np.uint8)
        Image.fromarray(image).save(images_dir / f"{stem}.png")
        Image.fromarray(mask, mode="L").save(masks_dir / f"{stem}.png")
        out[stem] = (image, mask)
    return out


def make_duts_te(base: Path, stems=("a", "b", "c"), **kw) -> dict[str, tuple]:
    return write_pairs(base / "DUTS-TE" / "DUTS-TE-Image", base / "DUTS-TE" / "DUTS-TE-Mask", stems, **kw)


# ---------------------------------------------------------------- registry


def test_registry_holds_the_official_layouts_and_counts():
    expected = {  # layouts and official image counts: docs/paper_and_code.md#datasets
        "duts-tr": ("DUTS-TR/DUTS-TR-Image", "DUTS-TR/DUTS-TR-Mask", 10553),
        "duts-te": ("DUTS-TE/DUTS-TE-Image", "DUTS-TE/DUTS-TE-Mask", 5019),
        "dut-omron": ("DUT-OMRON/DUT-OMRON-image", "DUT-OMRON/pixelwiseGT-new-PNG", 5168),
        "ecssd": ("ECSSD/images", "ECSSD/ground_truth_mask", 1000),
    }
    assert set(DATASETS) == set(expected)
    for name, (image_dir, mask_dir, n) in expected.items():
        spec = DATASETS[name]
        assert (spec.name, spec.image_dir, spec.mask_dir, spec.n_images) == (name, image_dir, mask_dir, n)
        assert (spec.image_suffix, spec.mask_suffix) == (".jpg", ".png")
        assert spec.downloads and all(d.urls[0].startswith("http://") for d in spec.downloads)
        # every download lands under the dataset's own folder
        top = image_dir.split("/")[0]
        assert all(dst.split("/")[0] == top for d in spec.downloads for _, dst in d.places)
    with pytest.raises(dataclasses.FrozenInstanceError):
        DATASETS["ecssd"].n_images = 1


# ---------------------------------------------------------------- layout lookup


def test_find_layout_accepts_the_folder_above_the_dataset(tmp_path):
    make_duts_te(tmp_path)
    folders = find_layout("DUTS-TE", tmp_path)  # names are case-insensitive
    assert folders == FolderPairs(tmp_path / "DUTS-TE" / "DUTS-TE-Image", tmp_path / "DUTS-TE" / "DUTS-TE-Mask")


def test_find_layout_accepts_a_duts_parent(tmp_path):
    make_duts_te(tmp_path / "DUTS")
    assert find_layout("duts-te", tmp_path).images_dir == tmp_path / "DUTS" / "DUTS-TE" / "DUTS-TE-Image"
    assert find_layout("duts-te", tmp_path / "DUTS").images_dir == tmp_path / "DUTS" / "DUTS-TE" / "DUTS-TE-Image"


def test_find_layout_refuses_two_copies(tmp_path):
    make_duts_te(tmp_path)
    make_duts_te(tmp_path / "DUTS")
    with pytest.raises(InputError, match="present twice"):
        find_layout("duts-te", tmp_path)


def test_find_layout_explains_a_wrong_root(tmp_path):
    make_duts_te(tmp_path)
    with pytest.raises(InputError, match=r"looks like the duts-te folder itself.*pass the folder that contains it"):
        find_layout("duts-te", tmp_path / "DUTS-TE")
    with pytest.raises(InputError, match=r"ecssd not found under .*ECSSD/images.*paperlib data download ecssd"):
        find_layout("ecssd", tmp_path)
    with pytest.raises(InputError, match="dataset must be one of"):
        find_layout("pascal-s", tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        find_layout("ecssd", tmp_path / "nowhere")


# ---------------------------------------------------------------- pairing


def test_unpaired_stems_are_named(tmp_path):
    make_duts_te(tmp_path, stems=("a", "b", "c", "d"))
    (tmp_path / "DUTS-TE" / "DUTS-TE-Mask" / "b.png").unlink()
    (tmp_path / "DUTS-TE" / "DUTS-TE-Image" / "d.png").unlink()
    with pytest.raises(InputError, match=r"1 images without a mask .*\(b\).*1 masks without an image .*\(d\)"):
        open_dataset("duts-te", tmp_path)
    ds = open_dataset("duts-te", tmp_path, allow_unpaired=True)
    assert ds.stems == ("a", "c")
    assert (ds.images_only, ds.masks_only) == (("b",), ("d",))


def test_unpaired_message_names_a_few_and_counts_the_rest(tmp_path):
    stems = [f"s{i}" for i in range(8)]
    write_pairs(tmp_path / "img", tmp_path / "msk", stems)
    for s in stems:
        (tmp_path / "msk" / f"{s}.png").unlink()
    with pytest.raises(InputError, match=r"8 images without a mask .*s0, s1, s2, s3, s4 and 3 more"):
        open_dataset(FolderPairs(tmp_path / "img", tmp_path / "msk"))


def test_declared_suffix_wins_over_a_stray_copy(tmp_path):
    # The official DUTS-TR mask folder holds a few .jpg copies beside their .png masks.
    make_duts_te(tmp_path, stems=("a", "b"))
    Image.new("L", (16, 12), 0).save(tmp_path / "DUTS-TE" / "DUTS-TE-Mask" / "a.jpg")
    ds = open_dataset("duts-te", tmp_path)
    assert Path(ds[0].mask_path).name == "a.png"
    # Without a declared suffix the same folders are ambiguous.
    with pytest.raises(InputError, match=r"several files share the stem 'a' \(a.jpg, a.png\)"):
        pair_files(FolderPairs(tmp_path / "DUTS-TE" / "DUTS-TE-Image", tmp_path / "DUTS-TE" / "DUTS-TE-Mask"))


def test_non_image_and_hidden_files_are_ignored(tmp_path):
    write_pairs(tmp_path / "img", tmp_path / "msk", ("a",))
    (tmp_path / "img" / "notes.txt").write_text("x")
    (tmp_path / "msk" / ".a.png").write_bytes(b"")
    (tmp_path / "img" / "sub.png").mkdir()
    pairing = pair_files(FolderPairs(tmp_path / "img", tmp_path / "msk"))
    assert [p[0] for p in pairing.pairs] == ["a"] and not pairing.images_only and not pairing.masks_only


def test_empty_folders_and_misused_root_are_errors(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "msk").mkdir()
    with pytest.raises(InputError, match="no image/mask pairs"):
        open_dataset(FolderPairs(tmp_path / "img", tmp_path / "msk"))
    with pytest.raises(InputError, match="root is only for a dataset name"):
        open_dataset(FolderPairs(tmp_path / "img", tmp_path / "msk"), tmp_path)
    with pytest.raises(InputError, match="needs a root"):
        open_dataset("ecssd")


# ---------------------------------------------------------------- samples


def test_samples_match_an_independent_read(tmp_path):
    arrays = write_pairs(tmp_path / "img", tmp_path / "msk", ("b", "a"))
    ds = open_dataset(FolderPairs(tmp_path / "img", tmp_path / "msk"))
    assert isinstance(ds, SaliencyDataset) and len(ds) == 2 and ds.name is None and not ds.is_synthetic
    for i, stem in enumerate(["a", "b"]):  # sorted by stem
        sample = ds[i]
        assert isinstance(sample, Sample) and sample.stem == stem
        assert sample.image.dtype == np.uint8 and sample.image.shape == (12, 16, 3)
        assert sample.mask.dtype == np.float32 and sample.mask.shape == (12, 16)
        np.testing.assert_array_equal(sample.image, arrays[stem][0])
        np.testing.assert_allclose(sample.mask, arrays[stem][1] / 255.0, atol=1e-7)
        assert sample.image_path == str(tmp_path / "img" / f"{stem}.png") and isinstance(sample.mask_path, str)
    assert ds[-1].stem == "b"
    with pytest.raises(IndexError):
        ds[2]
    assert [s.stem for s in ds] == ["a", "b"]  # iteration stops at IndexError


def test_binary_masks_threshold_at_one_half(tmp_path):
    write_pairs(tmp_path / "img", tmp_path / "msk", ("a",))
    row = np.repeat(np.array([0, 127, 128, 255], dtype=np.uint8), 4)  # 127/255 < 0.5 < 128/255
    Image.fromarray(np.tile(row, (12, 1)), mode="L").save(tmp_path / "msk" / "a.png")
    mask = open_dataset(FolderPairs(tmp_path / "img", tmp_path / "msk"), binary=True)[0].mask
    assert mask.dtype == np.float32
    np.testing.assert_array_equal(mask[0], np.repeat([0.0, 0.0, 1.0, 1.0], 4))


def test_exif_orientation_and_grey_images(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "msk").mkdir()
    # A 16x12 (WxH) grey JPEG whose EXIF says "rotate 90": read as 16 rows x 12 columns, RGB.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("L", (16, 12), 90).save(tmp_path / "img" / "a.jpg", exif=exif.tobytes())
    Image.new("L", (12, 16), 255).save(tmp_path / "msk" / "a.png")
    sample = open_dataset(FolderPairs(tmp_path / "img", tmp_path / "msk"))[0]
    assert sample.image.shape == (16, 12, 3) and sample.mask.shape == (16, 12)
    assert np.all(np.abs(sample.image.astype(int) - 90) <= 2)  # grey level kept in all 3 channels


def test_size_mismatch_is_reported_on_access(tmp_path):
    write_pairs(tmp_path / "img", tmp_path / "msk", ("a",))
    Image.new("L", (10, 10), 0).save(tmp_path / "msk" / "a.png")
    ds = open_dataset(FolderPairs(tmp_path / "img", tmp_path / "msk"))
    with pytest.raises(InputError, match=r"a.png is 12x16 \(HxW\) but its mask .*a.png is 10x10"):
        ds[0]


def test_synthetic_marker(tmp_path):
    make_duts_te(tmp_path)
    assert not open_dataset("duts-te", tmp_path).is_synthetic
    (tmp_path / "DUTS-TE" / "SYNTHETIC.json").write_text(json.dumps({"generator": "paperlib.synth"}))
    ds = open_dataset("duts-te", tmp_path)
    assert ds.is_synthetic and ds.synthetic_marker == tmp_path / "DUTS-TE" / "SYNTHETIC.json"
    assert len(ds) == 3  # still loadable


def test_transform_and_torch_dataloader(tmp_path):
    torch = pytest.importorskip("torch")
    write_pairs(tmp_path / "img", tmp_path / "msk", ("a", "b", "c"))
    ds = open_dataset(FolderPairs(tmp_path / "img", tmp_path / "msk"))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch.image.shape == (2, 12, 16, 3) and batch.image.dtype == torch.uint8
    assert batch.mask.shape == (2, 12, 16) and list(batch.stem) == ["a", "b"]
    np.testing.assert_array_equal(batch.mask[1].numpy(), ds[1].mask)
    flipped = open_dataset(FolderPairs(tmp_path / "img", tmp_path / "msk"), transform=lambda s: s.mask[:, ::-1])
    np.testing.assert_array_equal(flipped[0], ds[0].mask[:, ::-1])


# ---------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_duts_subsets_open(real_data_root):
    te = open_dataset("duts-te", real_data_root)
    assert len(te) == 502 and not te.is_synthetic  # every 10th of the sorted 5,019 (shared/README.md)
    assert len(open_dataset("duts-tr", real_data_root)) == 422  # every 25th of 10,553
    sample = te[0]
    assert sample.stem == "ILSVRC2012_test_00000026"
    assert sample.image.dtype == np.uint8 and sample.image.shape[:2] == sample.mask.shape
    assert 0.0 <= sample.mask.min() and sample.mask.max() <= 1.0 and sample.mask.max() > 0.5
    reference = np.asarray(Image.open(sample.mask_path).convert("L"), dtype=np.float32) / 255.0
    np.testing.assert_array_equal(sample.mask, reference)
