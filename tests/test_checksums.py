"""paperlib.data.release.checksums: a downloaded file against its published SHA-256 / MD5 / size, or the digest
recorded on first use in the ledger."""

from __future__ import annotations

import hashlib
import json

import pytest
from local_server import sha

from paperlib.checks import InputError
from paperlib.data.release.checksums import check_digest
from paperlib.data.release.download import LEDGER_NAME
from paperlib.data.release.fetch import DownloadError
from paperlib.data.saliency import Download


def _item(data: bytes, **kw) -> Download:
    return Download(urls=("http://example.invalid/f",), filename="f.bin", places=(("f.bin", "f.bin"),), **kw)


def test_check_digest_against_published_sha256_and_md5(tmp_path):
    data = b"dataset bytes"
    path, ledger = tmp_path / "f.bin", tmp_path / LEDGER_NAME
    path.write_bytes(data)
    check = check_digest(path, _item(data, sha256=sha(data), md5=hashlib.md5(data).hexdigest(), size=len(data)),
                         ledger=ledger, key="x/f.bin")
    assert check == (sha(data), "published")
    assert json.loads(ledger.read_text())["files"]["x/f.bin"]["sha256"] == sha(data)
    for bad, message in ((dict(sha256="0" * 64), "does not match the published 000"),
                         (dict(md5="0" * 32), "MD5 .* does not match the published 000"),
                         (dict(size=len(data) + 1), f"{len(data)} bytes, expected {len(data) + 1}")):
        path.write_bytes(data)
        with pytest.raises(DownloadError, match=message + ".*moved to .*rejected/f.bin"):
            check_digest(path, _item(data, **bad), ledger=ledger, key="x/f.bin")
        assert not path.exists()
    # set aside, never deleted: each rejected file is kept, numbered, for inspection
    assert sorted(p.name for p in (tmp_path / "rejected").iterdir()) == ["f.bin", "f.bin.1", "f.bin.2"]
    assert all(p.read_bytes() == data for p in (tmp_path / "rejected").iterdir())
    path.write_bytes(data)                                    # a caller's disposable copy stays put
    with pytest.raises(DownloadError, match="does not match the published 000") as err:
        check_digest(path, _item(data, sha256="0" * 64), ledger=ledger, key="x/f.bin", move_aside=False)
    assert path.exists() and "moved" not in str(err.value)


def test_check_digest_trusts_on_first_use_then_holds_to_it(tmp_path):
    path, ledger = tmp_path / "f.bin", tmp_path / LEDGER_NAME
    path.write_bytes(b"first")
    assert check_digest(path, _item(b""), ledger=ledger, key="k", url="http://u").against.startswith("recorded now")
    entry = json.loads(ledger.read_text())["files"]["k"]
    assert entry["sha256"] == sha(b"first") and entry["url"] == "http://u" and entry["size"] == 5
    assert check_digest(path, _item(b""), ledger=ledger, key="k") == (sha(b"first"), "recorded")
    path.write_bytes(b"changed")
    with pytest.raises(DownloadError, match="does not match the recorded"):
        check_digest(path, _item(b""), ledger=ledger, key="k")
    path.write_bytes(b"changed")  # an override wins over the record (and replaces it)
    assert check_digest(path, _item(b""), ledger=ledger, key="k", sha256=sha(b"changed").upper()).against == "--sha256"
    assert json.loads(ledger.read_text())["files"]["k"]["sha256"] == sha(b"changed")
    with pytest.raises(InputError, match="64 hex digits"):
        check_digest(path, _item(b""), ledger=ledger, key="k", sha256="abc")



@pytest.mark.parametrize("content", ["[]", '{"files": null}', '{"files": {"k": "abc"}}', "{not json", "\xff\xfe"])
def test_a_ledger_that_is_not_one_is_one_line_naming_it(tmp_path, content):
    path, ledger = tmp_path / "f.bin", tmp_path / LEDGER_NAME
    path.write_bytes(b"data")
    ledger.write_text(content, encoding="latin-1")
    with pytest.raises(InputError, match=f"{LEDGER_NAME}: not (valid JSON|a paperlib checksum ledger)"):
        check_digest(path, _item(b""), ledger=ledger, key="k")
    assert path.exists()                                   # the download itself is left alone
