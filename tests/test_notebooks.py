"""The notebooks: jupytext sources that papermill can parameterise and run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
    _parameters_cell(source)


def test_train_notebook_exposes_every_config_field():
    from paperlib.train_config import TrainConfig

    cell = _parameters_cell((NOTEBOOKS[0].parent / "train.py").read_text())
    names = set(re.findall(r"^(\w+)\s*=", cell, re.M))
    assert set(TrainConfig.__dataclass_fields__) <= names


def test_train_notebook_runs_under_papermill(tmp_path):
    import jupytext
    import papermill

    notebook = jupytext.read(NOTEBOOKS[0].parent / "train.py")
    source = tmp_path / "train.ipynb"
    jupytext.write(notebook, source)
    papermill.execute_notebook(str(source), str(tmp_path / "out.ipynb"), cwd=str(tmp_path), execution_timeout=300,
                               parameters={"max_steps": 4, "out_dir": str(tmp_path / "run"),
                                           "data_root": str(tmp_path / "data")},
                               progress_bar=False)
    assert (tmp_path / "run" / "last.pt").is_file() and (tmp_path / "run" / "init.pt").is_file()
    assert (tmp_path / "figures" / "train_smoke_losses.png").is_file()


def _run(name: str, tmp_path: Path, parameters: dict) -> None:
    import jupytext
    import papermill

    source = tmp_path / f"{name}.ipynb"
    jupytext.write(jupytext.read(NOTEBOOKS[0].parent / f"{name}.py"), source)
    papermill.execute_notebook(str(source), str(tmp_path / f"{name}.out.ipynb"), cwd=str(tmp_path), execution_timeout=300,
                               parameters=parameters, progress_bar=False)


def test_gf_explorer_runs_offline_and_on_your_own_files(tmp_path):
    from PIL import Image

    from paperlib.explore import explorer_sample

    _run("gf_explorer", tmp_path, {"size": 128, "radii": [2, 9], "eps_values": [1e-3]})
    assert (tmp_path / "figures" / "gf_explorer_paper_setting.png").is_file()
    assert (tmp_path / "figures" / "gf_explorer_grid.png").is_file()
    # Your own image and mask, no ground truth: the panels, no grid.
    ex = explorer_sample(0, size=96)
    Image.fromarray(ex.image).save(tmp_path / "photo.jpg")
    Image.fromarray((ex.mask * 255).astype("uint8")).save(tmp_path / "photo_mask.png")
    own = tmp_path / "own"
    own.mkdir()
    _run("gf_explorer", own, {"image_path": str(tmp_path / "photo.jpg"),
                              "mask_path": str(tmp_path / "photo_mask.png")})
    assert (own / "figures" / "gf_explorer_paper_setting.png").is_file()
    assert not (own / "figures" / "gf_explorer_grid.png").exists()


def test_table5_notebook_runs_offline(tmp_path):
    import pandas as pd

    _run("table5_gf_vs_bf", tmp_path, {"max_images": 4})
    table = pd.read_csv(tmp_path / "figures" / "table5_smoke.csv", header=[0, 1], index_col=[0, 1])
    assert table.shape == (6, 3)   # TokenCut, + GF, + BF; ours and the paper's; DUTS-TE acc / iou / max F
    assert (tmp_path / "figures" / "table5_smoke.png").is_file()


def test_theory_notebook_runs_offline(tmp_path):
    _run("theory", tmp_path, {"size": 160})
    names = {p.name for p in (tmp_path / "figures").iterdir()}
    assert names == {f"theory_{n}.png" for n in ("affinity", "fiedler", "ncut_loss", "guided_filter", "crop_zoom")}


def test_ablation_notebooks_share_their_runs(tmp_path):
    import pandas as pd

    params = {"max_steps": 2, "out_dir": str(tmp_path / "runs")}
    _run("tables_1_3_saliency", tmp_path, params)
    t1 = pd.read_csv(tmp_path / "figures" / "table1_smoke.csv", header=[0, 1], index_col=[0, 1])
    t3 = pd.read_csv(tmp_path / "figures" / "table3_smoke.csv", header=[0, 1], index_col=[0, 1, 2, 3])
    assert t1.shape == (8, 3) and t3.shape == (8, 1)       # 4 rows x (ours, paper); 4 switch rows x 2
    logged = (tmp_path / "runs" / "filterbank-crop_paper" / "log.csv").read_text()
    _run("tables_2_4_corloc", tmp_path, params)              # reuses the two finished runs
    assert (tmp_path / "runs" / "filterbank-crop_paper" / "log.csv").read_text() == logged
    t4 = pd.read_csv(tmp_path / "figures" / "table4_smoke.csv", header=[0, 1], index_col=[0, 1, 2])
    assert t4.shape == (8, 1)
