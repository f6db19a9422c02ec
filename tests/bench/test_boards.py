"""bench.boards: the board report's JSON and its markdown table."""

def test_board_report_round_trip_and_rows():
    """The report's JSON re-renders the same row; a missed clock and a design that does not
    fit are said so in the table."""
    from boards.catalog import board
    from boards.fit import link_cost
    from boards.report import BoardReport
    from bench.boards import markdown
    est = {"lut": 1000, "blocks_total": 3, "spram_total": 0}
    rep = BoardReport("net", board("ulx3s-85f"), 4, 50.0, 42.0, False, est,
                      {"logic": (2100, 83640), "bram": (4, 208), "dsp": (1, 156)},
                      250.0, 100, "top.bit", 12.0)
    again = BoardReport.from_json(rep.to_json())
    assert again.markdown_row() == rep.markdown_row()
    assert rep.lut_estimate == 1000 + link_cost("ecp5", 4)["lut"]
    assert "42.0 (not met)" in rep.markdown_row() and "| 200,000 | 2,000.0 |" in rep.markdown_row()
    failed = {"key": "x", "network": "big", "board": "icebreaker", "lanes": 4,
              "estimate": est, "yosys_lut4": 7538,
              "error": "ERROR: Unable to place cell 'a', no BELs remaining to implement cell "
                       "type 'ICESTORM_LC'"}
    table = markdown([rep.to_json() | {"key": "y", "seed": 1}, failed | {"seed": 1}])
    assert "does not fit: placement ran out of ICESTORM_LC cells (Yosys: 7,538 LUT4)" in table
    # A design that does not fit shows the same estimate as a built one: core plus link.
    assert f"| big | icebreaker | 4 | {1000 + link_cost('ice40', 4)['lut']:,} | does not fit" \
        in table
    lines = table.strip().splitlines()
    assert all(row.count("|") == 15 for row in lines[:-2]) and lines[-2] == ""
    assert lines[-1] == "nextpnr seed 1 (every build)"


def test_pinned_jobs_recorded_are_skipped_unless_rebuilt(tmp_path, monkeypatch):
    """A recorded job is not built again, unless ``--rebuild`` asks (after a logic change);
    ``--only``/``--boards`` select the jobs rebuilt, and the others keep their records."""
    import json
    import bench.boards as bb
    est = {"lut": 1000, "blocks_total": 3, "spram_total": 0}
    out = tmp_path / "boards.json"
    out.write_text(json.dumps([{"key": bb._key(j), "network": j[0], "board": j[1],
                                "lanes": j[2], "estimate": est, "error": "recorded",
                                "seed": 1} for j in bb.JOBS]))
    built = []

    def run_job(job, net, acts, build_root, work=None):
        built.append(bb._key(job))
        return {"key": bb._key(job), "network": job[0], "board": job[1], "lanes": job[2],
                "estimate": est, "error": "built again", "seed": 1}

    monkeypatch.setattr(bb, "run_job", run_job)
    monkeypatch.setattr(bb, "_network", lambda name: (None, []))
    monkeypatch.setattr(bb, "_activities", lambda net, work: [])
    args = ["--pinned", "--out", str(out), "--only", "wm-demo", "--boards", "ulx3s-12f"]
    assert bb.main(args) == 0 and built == []
    assert bb.main(args + ["--rebuild"]) == 0
    assert built == ["wm-demo|ulx3s-12f|1|"]
    errors = {r["key"]: r["error"] for r in json.loads(out.read_text())}
    assert errors.pop("wm-demo|ulx3s-12f|1|") == "built again"
    assert set(errors.values()) == {"recorded"} and len(errors) == len(bb.JOBS) - 1


def test_automatic_records_name_the_build_seed():
    """``polychrony build`` places and routes with the build's default seed, which the
    automatic records name."""
    import inspect
    from boards.build import build
    from bench.boards import build_seed
    assert build_seed() == inspect.signature(build).parameters["seed"].default == 1
