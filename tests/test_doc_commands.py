"""Reading the printed commands out of the README and the notebooks (the rehearsal runs them)."""

from doc_commands import bash_blocks, commands, documented


def test_commands_are_read_with_their_continuations_and_quoted_yaml():
    text = """# ```bash
# paperlib notebook run a --tag paper -p x 1 \\
#     -y 'k: [1, 2]'   # a comment
# # a comment line
# paperlib notebook run b -y '
# results:
#   d: {x: 1}'
# ```
"""
    (block,) = bash_blocks(text)
    assert commands(block) == ["paperlib notebook run a --tag paper -p x 1      -y 'k: [1, 2]'",
                               "paperlib notebook run b -y '\nresults:\n  d: {x: 1}'"]


def test_every_notebook_prints_a_runner_command_and_none_prints_papermill():
    found = documented(("paperlib notebook run", "papermill"))
    assert not [c for _, c in found if c.startswith("papermill")]
    names = {c.split()[3] for _, c in found}
    assert names >= {"tables_1_3_saliency", "tables_2_4_corloc", "table5_gf_vs_bf", "figs_6_8_iou_by_size",
                     "train", "gf_explorer", "crop_zoom_explorer"}
