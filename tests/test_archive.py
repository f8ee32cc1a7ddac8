"""paperlib.data.release.archive: safe extraction of zip and tar files (unsafe members refused before anything
is written; the download that uses it is in test_download.py)."""

from __future__ import annotations

import io
import re
import tarfile
import zipfile

import pytest
from archive_builders import make_tar, make_zip

from paperlib.checks import InputError
from paperlib.data.release.archive import extract_archive


@pytest.mark.parametrize("member", ["../evil.txt", "ok/../../evil.txt", "/abs/evil.txt", "C:/evil.txt"])
def test_zip_members_escaping_the_target_are_refused(tmp_path, member):
    archive = tmp_path / "a.zip"
    archive.write_bytes(make_zip({"fine.txt": b"x", member: b"evil"}))
    with pytest.raises(InputError, match=re.escape(repr(member)) + " would be written outside"):
        extract_archive(archive, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())  # checked before anything is written
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt"])
def test_tar_members_escaping_the_target_are_refused(tmp_path, member):
    archive = tmp_path / "a.tar"
    archive.write_bytes(make_tar({"fine.txt": b"x", member: b"evil"}))
    with pytest.raises(InputError, match=re.escape(repr(member)) + " would be written outside"):
        extract_archive(archive, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("kind, label", [(tarfile.SYMTYPE, "symbolic link"), (tarfile.LNKTYPE, "hard link")])
def test_tar_links_are_refused(tmp_path, kind, label):
    archive = tmp_path / "a.tar"
    archive.write_bytes(make_tar({"fine.txt": b"x"}, links={"data/link": (kind, "/etc/passwd")}))
    with pytest.raises(InputError, match=f"'data/link' is a {label} -> '/etc/passwd'"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "fine.txt").exists()


def test_zip_symlink_members_are_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("images/link")
        info.external_attr = (0o120777 << 16)  # S_IFLNK: how zip records a symlink
        zf.writestr(info, "../../outside")
    (tmp_path / "a.zip").write_bytes(buf.getvalue())
    with pytest.raises(InputError, match="'images/link' is a symbolic link"):
        extract_archive(tmp_path / "a.zip", tmp_path / "out")


def test_extract_zip_and_tar_gz_by_content_skipping_macosx(tmp_path):
    members = {"top/a.txt": b"a", "top/sub/b.txt": b"bb"}
    (tmp_path / "x.zip.zip").write_bytes(make_zip({**members, "__MACOSX/top/._a.txt": b"junk"}))
    (tmp_path / "x.bin").write_bytes(make_tar(members, mode="w:gz"))  # the name says nothing
    for archive in ("x.zip.zip", "x.bin"):
        out = tmp_path / f"out-{archive}"
        assert extract_archive(tmp_path / archive, out) == 2
        assert {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()} == members
    (tmp_path / "c.txt").write_text("not an archive")
    with pytest.raises(InputError, match="neither a zip nor a tar"):
        extract_archive(tmp_path / "c.txt", tmp_path / "out-c")


# ----------------------------------------------------------------------------- hostile archives

def test_a_name_given_twice_is_refused_before_anything_is_written(tmp_path):
    archive = tmp_path / "dup.zip"
    with zipfile.ZipFile(archive, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("DUTS-TE/a.png", b"first")
        zf.writestr("DUTS-TE/a.png", b"second, overwriting the first")
    with pytest.raises(InputError, match="'DUTS-TE/a.png' appears twice"):
        extract_archive(archive, tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.png"))


def test_a_zip_bomb_is_refused_unread(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", bytes(8 << 20))               # 8 MiB of zeros: about 1000:1
    with pytest.raises(InputError, match="zip bomb"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "zeros.bin").exists()


def test_member_count_and_size_limits(tmp_path):
    from paperlib.data.release.archive import UnpackLimits

    archive = tmp_path / "many.zip"
    archive.write_bytes(make_zip({f"f{i}.txt": b"x" * 100 for i in range(5)}))
    with pytest.raises(InputError, match="5 members, more than the 4 allowed"):
        extract_archive(archive, tmp_path / "a", limits=UnpackLimits(max_members=4))
    with pytest.raises(InputError, match="would unpack to"):
        extract_archive(archive, tmp_path / "b", limits=UnpackLimits(max_bytes=499))
    assert extract_archive(archive, tmp_path / "c", limits=UnpackLimits(max_members=5, max_bytes=500)) == 5


@pytest.mark.parametrize("cut", [0.3, 0.9])
def test_a_damaged_archive_is_one_line_naming_it(tmp_path, cut):
    data = make_tar({"x/a.txt": bytes(range(256)) * 40, "x/b.txt": bytes(range(255, -1, -1)) * 40}, mode="w:gz")
    damaged = tmp_path / "damaged.tar.gz"
    damaged.write_bytes(data[:int(len(data) * cut)])
    with pytest.raises(InputError, match=r"damaged\.tar\.gz: (damaged archive|neither a zip nor a tar)"):
        extract_archive(damaged, tmp_path / "out")


def test_a_file_where_a_folder_belongs_is_one_line(tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(make_zip({"DUTS-TE/a.png": b"png"}))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "DUTS-TE").write_text("a file, not a folder")
    with pytest.raises(InputError, match="unpacking into .* failed at"):
        extract_archive(archive, tmp_path / "out")


def test_members_that_contradict_each_other_are_refused_as_the_archives_fault(tmp_path):
    """A file ``DUTS-TE/DUTS-TE-Image`` and a member inside it: no layout holds both."""
    from paperlib.data.release.archive import ArchiveError

    archive = tmp_path / "a.zip"
    archive.write_bytes(make_zip({"DUTS-TE/DUTS-TE-Image": b"a file", "DUTS-TE/DUTS-TE-Image/a.jpg": b"jpg"}))
    with pytest.raises(ArchiveError, match="'DUTS-TE/DUTS-TE-Image/a.jpg' lies inside 'DUTS-TE/DUTS-TE-Image', "
                                           "which is a file"):
        extract_archive(archive, tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*"))
    # a place the unpacking cannot write is the destination's fault, not the archive's
    ok = tmp_path / "ok.zip"
    ok.write_bytes(make_zip({"DUTS-TE/a.png": b"png"}))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "DUTS-TE").write_text("a file, not a folder")
    with pytest.raises(InputError) as err:
        extract_archive(ok, tmp_path / "busy")
    assert not isinstance(err.value, ArchiveError)
