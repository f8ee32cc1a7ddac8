"""Feature cache: entries round-trip, every key field separates entries, writes are atomic, and
cached_features computes only what is missing."""

from __future__ import annotations

import pytest
import torch

import paperlib.backbones.cache as fc
from paperlib.backbones.cache import CacheKey, FeatureCache, cached_features, image_fingerprint
from paperlib.backbones.registry import load_backbone
from paperlib.checks import InputError

KEY = CacheKey("dino_vits8", "sha256:" + "ab" * 32 + "+pos:dino", "img_001", (320, 320))


def _keys(seed: int, D: int = 16, h: int = 5, w: int = 7) -> torch.Tensor:
    return torch.randn(D, h, w, generator=torch.Generator().manual_seed(seed))


def _images(seed: int, B: int = 3, H: int = 32, W: int = 48) -> torch.Tensor:
    return torch.rand(B, 3, H, W, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def counting_filterbank():
    """The filter bank, with a record of how many images each features() call computed."""
    backbone = load_backbone("filterbank")
    calls: list[int] = []
    original = backbone.features

    def features(images, **kwargs):
        calls.append(images.shape[0])
        return original(images, **kwargs)

    backbone.features = features
    return backbone, calls


def test_roundtrip_is_exact_in_float32(tmp_path):
    cache = FeatureCache(tmp_path)
    assert cache.get(KEY) is None
    keys = _keys(0)
    path = cache.put(KEY, keys)
    assert path.is_file() and path.is_relative_to(tmp_path)
    got = cache.get(KEY)
    assert got.dtype == torch.float32 and torch.equal(got, keys)


def test_half_storage(tmp_path):
    cache = FeatureCache(tmp_path, half=True)
    keys = _keys(1)
    path = cache.put(KEY, keys)
    assert torch.load(path, weights_only=True)["keys"].dtype == torch.float16
    got = cache.get(KEY)
    assert got.dtype == torch.float32
    assert torch.equal(got, keys.half().float())
    torch.testing.assert_close(got, keys, atol=4e-3, rtol=1e-3)


def test_a_view_is_stored_without_its_batch(tmp_path):
    batch = torch.randn(64, 16, 20, 20)
    path = FeatureCache(tmp_path).put(KEY, batch[3])
    assert path.stat().st_size < batch[3].numel() * 4 * 2  # not the 64-image storage


@pytest.mark.parametrize("field,value", [("backbone", "dino_vits16"), ("config", "hub:vit_small_patch8_224.dino"),
                                         ("image_id", "img_002"), ("size", (336, 320)),
                                         ("precision", "bfloat16")])
def test_every_key_field_separates_entries(tmp_path, field, value):
    cache = FeatureCache(tmp_path)
    cache.put(KEY, _keys(2))
    other = KEY._replace(**{field: value})
    assert cache.path(other) != cache.path(KEY)
    assert cache.get(other) is None
    cache.put(other, _keys(3))
    assert torch.equal(cache.get(KEY), _keys(2)) and torch.equal(cache.get(other), _keys(3))


def test_odd_image_ids_stay_inside_the_root_and_do_not_collide(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    ids = ["../../etc/passwd", "a/b", "a_b", "a b", "DUTS-TE/Image/ILSVRC2012_test_00000003.jpg", ".hidden"]
    paths = {cache.path(KEY._replace(image_id=i)) for i in ids}
    assert len(paths) == len(ids)
    for i in ids:
        written = cache.put(KEY._replace(image_id=i), _keys(4))
        assert written.resolve().is_relative_to((tmp_path / "cache").resolve())
        assert not written.name.startswith(".")


def test_a_failed_write_leaves_the_old_entry_and_no_debris(tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path)
    cache.put(KEY, _keys(5))

    def broken_save(obj, path):
        with open(path, "wb") as fh:
            fh.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(fc.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        cache.put(KEY, _keys(6))
    monkeypatch.undo()
    assert torch.equal(cache.get(KEY), _keys(5))
    assert [p.name for p in cache.path(KEY).parent.iterdir()] == [cache.path(KEY).name]


def test_unreadable_or_foreign_files_are_misses(tmp_path):
    cache = FeatureCache(tmp_path)
    path = cache.path(KEY)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    assert cache.get(KEY) is None
    torch.save({"key": ("something", "else"), "keys": _keys(7)}, path)
    assert cache.get(KEY) is None


def test_cached_features_computes_only_the_missing_images(tmp_path, counting_filterbank):
    backbone, calls = counting_filterbank
    cache = FeatureCache(tmp_path)
    images = _images(8)
    direct = backbone.features(images).keys
    calls.clear()

    first = cached_features(backbone, images, ["a", "b", "c"], cache)
    assert calls == [3] and torch.equal(first, direct)
    second = cached_features(backbone, images, ["a", "b", "c"], cache)
    assert calls == [3] and torch.equal(second, direct)

    more = torch.cat([images[1:2], _images(9, B=1)])
    third = cached_features(backbone, more, ["b", "d"], cache)
    assert calls == [3, 1]
    torch.testing.assert_close(third, torch.cat([direct[1:2], backbone.features(_images(9, B=1)).keys]))


def test_cached_features_keys_on_size_and_config(tmp_path, counting_filterbank):
    backbone, calls = counting_filterbank
    cache = FeatureCache(tmp_path)
    cached_features(backbone, _images(10), ["a", "b", "c"], cache)
    cached_features(backbone, _images(10, H=48, W=48), ["a", "b", "c"], cache)  # another size
    assert calls == [3, 3]
    other = load_backbone("filterbank16")
    assert len(list(tmp_path.iterdir())) == 1
    cached_features(other, _images(10), ["a", "b", "c"], cache)
    assert len(list(tmp_path.iterdir())) == 2


def test_half_cache_returns_the_same_values_on_first_and_later_runs(tmp_path, counting_filterbank):
    backbone, _ = counting_filterbank
    cache = FeatureCache(tmp_path, half=True)
    images = _images(11)
    first = cached_features(backbone, images, ["a", "b", "c"], cache)
    assert torch.equal(first, cached_features(backbone, images, ["a", "b", "c"], cache))


def test_same_id_with_other_pixels_is_refused(tmp_path, counting_filterbank):
    backbone, _ = counting_filterbank
    cache = FeatureCache(tmp_path)
    images = _images(12)
    cached_features(backbone, images, ["a", "b", "c"], cache)
    flipped_b = images.clone()
    flipped_b[1] = images[1].flip(-1)  # an augmented view under a cached id
    with pytest.raises(InputError, match="image id 'b' was cached for different pixels"):
        cached_features(backbone, flipped_b, ["a", "b", "c"], cache)


def test_fingerprint_is_an_8x8_thumbnail():
    images = _images(13, B=2, H=64, W=64)
    fp = image_fingerprint(images)
    assert fp.shape == (2, 3, 8, 8)
    torch.testing.assert_close(fp[0, :, 0, 0], images[0, :, :8, :8].mean(dim=(1, 2)))


def test_without_a_cache_it_is_plain_features(counting_filterbank):
    backbone, calls = counting_filterbank
    images = _images(14)
    assert torch.equal(cached_features(backbone, images, ["a", "b", "c"], None),
                       backbone.features(images).keys)


def test_bad_inputs(tmp_path):
    fb = load_backbone("filterbank")
    with pytest.raises(InputError, match="got 2 ids for 3 images"):
        cached_features(fb, _images(15), ["a", "b"], FeatureCache(tmp_path))
    random = load_backbone("filterbank")
    random.weights_id = "random-init"  # what load_backbone(..., _random_init=True) sets on a ViT
    with pytest.raises(InputError, match="randomly initialised backbone cannot be cached"):
        cached_features(random, _images(15), ["a", "b", "c"], FeatureCache(tmp_path))
    with pytest.raises(InputError, match="keys must have 3 dimensions"):
        FeatureCache(tmp_path).put(KEY, torch.zeros(1, 16, 5, 7))
