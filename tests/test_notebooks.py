"""The notebooks, run as a reader runs them: `paperlib notebook run NAME -p ...` (here in tmp_path)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from figure_checks import stray_outputs
from notebook_runs import run

from paperlib.checks import InputError
from paperlib.notebook.params import declared_parameters
from paperlib.notebook.run import notebook_parameters, parse_cli_parameters

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.py"))


def _parameters_cell(source: str) -> str:
    match = re.search(r'^# %% tags=\["parameters"\]\n(.*?)(?=^# %%)', source, re.S | re.M)
    assert match, "no cell tagged 'parameters'"
    return match.group(1)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_shape(path):
    source = path.read_text()
    # STYLE: what a notebook needs belongs in the package, where tests reach it.
    assert not re.search(r"^\s*(def|class)\s", source, re.M), f"{path.name} defines a function or class"
    assert "kernelspec" in source                  # papermill needs a kernel name
    specs = declared_parameters(_parameters_cell(source))
    assert specs and all(s.help for s in specs), "every parameter is typed and explained"
    names = [s.name for s in specs]
    assert "tag" in names
    # The guard is the next code cell: nothing runs on unchecked parameters.
    after = source.split('# %% tags=["parameters"]', 1)[1].split("\n# %%\n", 1)[1]
    assert after.lstrip().startswith("from paperlib.notebook.session import start")
    assert f'run = start("{path.stem}", globals())' in after.split("# %%", 1)[0]
    # Printed commands use the runner, never a bare papermill call on a missing .ipynb.
    assert "papermill notebooks/" not in source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter_type(path):
    """`papermill --help-notebook` infers each parameter's type from the same lines."""
    from papermill.translators import PythonTranslator

    cell = _parameters_cell(path.read_text())
    inferred = {p.name: p.inferred_type_name for p in PythonTranslator.inspect({"source": cell})}
    declared = {s.name: s.annotation for s in declared_parameters(cell)}
    assert inferred == declared


def test_train_notebook_exposes_every_config_field():
    from paperlib.train.config import settable_fields

    names = {s.name for s in notebook_parameters("train")}
    assert set(settable_fields()) <= names


# --------------------------------------------------------------------------------------------
# Bad parameters: one line naming them, before any kernel starts

@pytest.mark.parametrize("given, message", [
    ({"max_step": 2}, r"unknown parameter 'max_step' \(did you mean 'max_steps'\?\)"),
    ({"max_steps": "abc"}, r"parameter max_steps: expected int or None, got the string 'abc'"),
    ({"channels_last": "false"}, r"parameter channels_last: expected bool or None, got the string 'false'"),
    ({"betas": "[0.9, 0.99]"}, r"use -y"),
])
def test_wrong_parameters_are_refused_by_name(tmp_path, given, message):
    with pytest.raises(InputError, match=message):
        run("train", tmp_path, given)
    assert not (tmp_path / "results").exists() and not (tmp_path / "figures").exists()


def test_cli_parameters_are_typed_as_papermill_types_them():
    got = parse_cli_parameters([("a", "3"), ("b", "1e-3"), ("c", "None"), ("d", "False"), ("e", "x")],
                               ["f: [duts-te, ecssd]", "g: {a: b}"])
    assert got == {"a": 3, "b": 1e-3, "c": None, "d": False, "e": "x", "f": ["duts-te", "ecssd"], "g": {"a": "b"}}
    with pytest.raises(InputError, match="must be a YAML mapping"):
        parse_cli_parameters([], ["[1, 2]"])


def test_a_paper_tag_on_synthetic_data_is_refused_inside_the_notebook(tmp_path):
    with pytest.raises(InputError, match="tag 'paper' does not fit data_root 'synthetic'"):
        run("table5_gf_vs_bf", tmp_path, {"max_images": 2, "tag": "paper"})
    assert not (tmp_path / "figures").exists()
    assert not (tmp_path / "results" / "notebooks" / "paper").exists()      # a refused run leaves nothing


@pytest.mark.parametrize("tag", ["paper", "sample", "sample_smoke"])
def test_an_explorer_on_the_offline_image_cannot_claim_real_data(tmp_path, tag):
    with pytest.raises(InputError, match=f"tag '{tag}' does not fit the offline synthetic image"):
        run("gf_explorer", tmp_path, {"size": 64}, tag=tag)
    assert not (tmp_path / "figures").exists() and not (tmp_path / "results" / "notebooks" / tag).exists()


@pytest.mark.parametrize("tag", ["", "sa mple", ".hidden", "a/b"])
def test_a_tag_is_a_plain_name(tmp_path, tag):
    with pytest.raises(InputError, match="must be a plain name"):
        run("theory", tmp_path, {}, tag=tag)


def test_a_mistyped_data_root_is_refused_and_nothing_is_written_there(tmp_path):
    with pytest.raises(InputError, match=r"data_root: folder .*nowhere does not exist"):
        run("table5_gf_vs_bf", tmp_path, {"data_root": str(tmp_path / "nowhere"), "tag": "sample"})
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "figures").exists()


def test_a_cell_past_its_time_limit_fails_in_one_line_and_keeps_the_last_good_run(tmp_path):
    from paperlib.notebook.run import NotebookFailed

    good = run("theory", tmp_path, {"size": 96})
    before = good.executed.read_bytes()
    with pytest.raises(NotebookFailed, match=r"^theory: CellTimeoutError"):
        run("theory", tmp_path, {"size": 96}, cell_timeout=1)
    assert good.executed.read_bytes() == before
    assert good.executed.with_name("theory.failed.ipynb").is_file()


# --------------------------------------------------------------------------------------------
# Each notebook at small sizes, with its provenance

def test_train_notebook_runs_and_resumes_instead_of_deleting(tmp_path):
    done = run("train", tmp_path, {"max_steps": 4})
    run_dir = tmp_path / "results" / "notebooks" / "smoke" / "train_run"
    assert (run_dir / "last.pt").is_file() and (run_dir / "init.pt").is_file()
    assert (tmp_path / "figures" / "train_smoke_losses.png").is_file()
    assert done.executed == tmp_path / "results" / "notebooks" / "smoke" / "train.ipynb"
    assert not stray_outputs(done.executed)              # no PosixPath('...') under a cell
    logged = (run_dir / "log.csv").read_text()
    run("train", tmp_path, {"max_steps": 4})             # a finished run is kept and reused
    assert (run_dir / "log.csv").read_text() == logged
    with pytest.raises(InputError, match="max_steps"):   # a changed setting is refused, not overwritten
        run("train", tmp_path, {"max_steps": 5, "lr": 1e-2})
    assert (run_dir / "log.csv").read_text() == logged


def test_gf_explorer_runs_offline_and_on_your_own_files(tmp_path):
    from PIL import Image

    from paperlib.viz.gf_explorer import explorer_sample

    done = run("gf_explorer", tmp_path, {"size": 128, "radii": [2, 9], "eps_values": [1e-3]})
    assert not stray_outputs(done.executed)
    assert (tmp_path / "figures" / "gf_explorer_paper_setting.png").is_file()
    assert (tmp_path / "figures" / "gf_explorer_grid.png").is_file()
    # Your own image and mask, no ground truth: the panels, no grid; a tag keeps them apart.
    ex = explorer_sample(0, size=96)
    Image.fromarray(ex.image).save(tmp_path / "photo.jpg")
    Image.fromarray((ex.mask * 255).astype("uint8")).save(tmp_path / "photo_mask.png")
    run("gf_explorer", tmp_path, {"image_path": str(tmp_path / "photo.jpg"),
                                  "mask_path": str(tmp_path / "photo_mask.png")}, tag="mine")
    assert (tmp_path / "figures" / "gf_explorer_paper_setting_mine.png").is_file()
    assert not (tmp_path / "figures" / "gf_explorer_grid_mine.png").exists()


def test_table5_notebook_runs_offline_with_provenance(tmp_path):
    import pandas as pd

    from paperlib.backbones.weights import file_sha256
    from paperlib.notebook.provenance import read_manifest, sidecar_path

    done = run("table5_gf_vs_bf", tmp_path, {"max_images": 4})
    table = pd.read_csv(tmp_path / "figures" / "table5_smoke.csv", header=[0, 1], index_col=[0, 1])
    assert table.shape == (6, 3)   # TokenCut, + GF, + BF; ours and the paper's; DUTS-TE acc / iou / max F
    png = tmp_path / "figures" / "table5_smoke.png"
    record = json.loads(sidecar_path(png).read_text())
    assert record["notebook"] == "table5_gf_vs_bf" and record["tag"] == "smoke" and record["synthetic"]
    assert record["data"] == [{"name": "duts-te", "root": "results/notebooks/data/DUTS-TE/DUTS-TE-Image",
                               "kind": "synthetic", "images": 24, "used": 4, "sha256": None}]
    assert record["backbones"] == {"filterbank16": "none"} and record["parameters"]["max_images"] == 4
    assert {"commit", "dirty"} <= set(record["code"]) and "torch" in record["versions"]
    assert {o["path"]: o["sha256"] for o in record["outputs"]} == {"figures/table5_smoke.png": file_sha256(png)}
    manifest = read_manifest(tmp_path / "results" / "MANIFEST.json")
    assert set(manifest) == {"figures/table5_smoke.csv", "figures/table5_smoke.md", "figures/table5_smoke.png",
                             "results/notebooks/smoke/table5_gf_vs_bf.ipynb"}
    assert manifest["figures/table5_smoke.png"]["sha256"] == file_sha256(png)
    executed = json.loads(done.sidecar.read_text())
    assert executed["wall_s"] > 0 and executed["outputs_written"] == sorted(executed["outputs_written"], key=[
        "figures/table5_smoke.csv", "figures/table5_smoke.md", "figures/table5_smoke.png"].index)
    # Titles say what the numbers are: tag, data kind, image count, backbone.
    assert record["data_label"] == "[smoke] synthetic DUTS-TE, 4 of 24 images · filterbank16"


def test_theory_notebook_runs_offline(tmp_path):
    done = run("theory", tmp_path, {"size": 160})
    assert not stray_outputs(done.executed)
    names = {p.name for p in (tmp_path / "figures").iterdir() if p.suffix == ".png"}
    assert names == {f"theory_{n}.png" for n in ("affinity", "fiedler", "ncut_loss", "guided_filter", "crop_zoom")}


def test_ablation_notebooks_share_their_runs(tmp_path):
    import pandas as pd

    params = {"max_steps": 2, "limit": 4}
    run("tables_1_3_saliency", tmp_path, params)
    t1 = pd.read_csv(tmp_path / "figures" / "table1_smoke.csv", header=[0, 1], index_col=[0, 1])
    t3 = pd.read_csv(tmp_path / "figures" / "table3_smoke.csv", header=[0, 1], index_col=[0, 1, 2, 3])
    assert t1.shape == (8, 3) and t3.shape == (8, 1)       # 4 rows x (ours, paper); 4 switch rows x 2
    runs = tmp_path / "results" / "notebooks" / "smoke" / "ablation"
    record = json.loads((tmp_path / "figures" / "table1_smoke.csv.provenance.json").read_text())
    assert record["backbones"] == {"filterbank": "none"}
    assert {Path(p).parent.name: c["step"] for p, c in record["checkpoints"].items()} == {
        "filterbank-crop_none": 2, "filterbank-crop_paper": 2}
    assert [d["name"] for d in record["data"]] == ["duts-te", "duts-tr"]
    logged = (runs / "filterbank-crop_paper" / "log.csv").read_text()
    run("tables_2_4_corloc", tmp_path, params)              # reuses the two finished runs
    assert (runs / "filterbank-crop_paper" / "log.csv").read_text() == logged
    t4 = pd.read_csv(tmp_path / "figures" / "table4_smoke.csv", header=[0, 1], index_col=[0, 1, 2])
    assert t4.shape == (8, 1)


def test_the_papers_numbered_equations_are_written_out_in_latex():
    """Eqs. (1)-(9) appear as LaTeX display math where a notebook uses them, as the paper writes them."""
    markdown = "\n".join(p.read_text() for p in NOTEBOOKS)
    for k in range(1, 10):
        assert re.search(rf"^# \$\$.*\({k}\)\$\$$", markdown, re.M), f"paper eq. ({k}) is not written out"
    assert "(s_i - s_j)^2" in markdown and "|s_i - s_j|" not in markdown   # eq. (5) squares the difference


def test_is_done_needs_the_same_parameters_and_the_same_clean_commit(tmp_path, monkeypatch):
    from paperlib.notebook import run as notebook_run
    from paperlib.notebook.run import is_done

    executed = tmp_path / "t.ipynb"
    executed.write_text("{}")
    given = {"max_images": 3, "tag": "smoke"}
    record = {"given": given, "code": {"commit": "abc", "dirty": False}}
    (tmp_path / "t.ipynb.provenance.json").write_text(json.dumps(record))
    monkeypatch.setattr(notebook_run, "code_state", lambda root=None: {"commit": "abc", "dirty": False})
    assert is_done(executed, given)
    assert not is_done(executed, {"max_images": 4, "tag": "smoke"})          # other parameters
    assert not is_done(executed, {"max_images": 3})                           # the tag is a parameter too
    monkeypatch.setattr(notebook_run, "code_state", lambda root=None: {"commit": "abc", "dirty": True})
    assert not is_done(executed, given)                                       # uncommitted code now
    monkeypatch.setattr(notebook_run, "code_state", lambda root=None: {"commit": "def", "dirty": False})
    assert not is_done(executed, given)                                       # another commit
    record["code"]["dirty"] = True
    (tmp_path / "t.ipynb.provenance.json").write_text(json.dumps(record))
    monkeypatch.setattr(notebook_run, "code_state", lambda root=None: {"commit": "abc", "dirty": False})
    assert not is_done(executed, given)                                       # made from uncommitted code
