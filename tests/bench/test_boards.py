"""bench.boards: the board report's JSON and its markdown table."""

import pytest


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
    # cycles per step from co-simulation are rarely round: the re-rendered table must show
    # the rates the record holds, not rates from a rounded cycle count
    odd = BoardReport("net", board("ulx3s-85f"), 4, 34.375, 49.7, True, est,
                      {"logic": (2100, 83640)}, 22.947, 291, "top.bit", 12.0)
    rec = odd.to_json()
    again = BoardReport.from_json(rec)
    assert again.markdown_row() == odd.markdown_row()
    assert f"| {rec['steps_per_s']:,.0f} | {rec['samples_per_s']:,.1f} |" in again.markdown_row()
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


def test_stale_rebuilds_exactly_the_jobs_whose_design_changed(tmp_path, monkeypatch, capsys):
    """``--stale``: a record whose design the generators still give keeps it; one whose
    design changed, or that has none, is built again (pinned and automatic records). With
    ``--dry-run`` the same jobs are named, with their reasons, and nothing is built or
    written."""
    import json
    import bench.boards as bb
    est = {"lut": 1000, "blocks_total": 3, "spram_total": 0}
    jobs = [j for j in bb.JOBS if j[0] == "wm-demo"][:3]
    designs = ["now", "before", None]
    out = tmp_path / "boards.json"
    out.write_text(json.dumps([{"key": bb._key(j), "network": j[0], "board": j[1],
                                "lanes": j[2], "estimate": est, "seed": 1,
                                "error": "recorded", **({"design": d} if d else {})}
                               for j, d in zip(jobs, designs)]))
    built = []

    def run_job(job, net, acts, build_root, work=None):
        built.append(bb._key(job))
        return {"key": bb._key(job), "network": job[0], "board": job[1], "lanes": job[2],
                "estimate": est, "seed": 1, "design": "now", "error": "built again"}

    monkeypatch.setattr(bb, "run_job", run_job)
    monkeypatch.setattr(bb, "job_design", lambda job, net: "now")
    monkeypatch.setattr(bb, "_network", lambda name: (None, []))
    monkeypatch.setattr(bb, "_activities", lambda net, work: [])
    args = ["--pinned", "--out", str(out), "--only", "wm-demo", "--boards",
            *[j[1] for j in jobs]]
    before = out.read_text()
    capsys.readouterr()
    assert bb.main(args + ["--stale", "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert built == [] and out.read_text() == before
    assert f"{bb._key(jobs[0])}: the design is the one recorded" in said
    assert f"{bb._key(jobs[1])}: would be built (the generated design changed)" in said
    assert f"{bb._key(jobs[2])}: would be built (no design recorded)" in said
    assert "2 of the 3 selected jobs would be built" in said
    assert not (tmp_path / "boards.md").exists()
    assert bb.main(args + ["--stale"]) == 0
    assert built == [bb._key(j) for j in jobs[1:]]
    assert all(r["design"] == "now" for r in json.loads(out.read_text()))
    built.clear()
    assert bb.main(args + ["--stale"]) == 0 and built == []

    # Automatic records: the kept build's design, without choosing again.
    auto = tmp_path / "auto.json"
    auto.write_text(json.dumps([
        {"key": f"wm-demo|{b}|auto", "network": "wm-demo", "board": b, "lanes": 1,
         "estimate": est, "error": "recorded", "design": d}
        for b, d in (("icebreaker", "now"), ("ulx3s-12f", "before"))]))
    monkeypatch.setattr(bb, "auto_design", lambda rec, net: "now")
    monkeypatch.setattr(bb, "_auto_work", lambda name: (None, []))

    def run_auto(name, board, net, work, build_root):
        built.append(board)
        return {"key": f"{name}|{board}|auto", "network": name, "board": board, "lanes": 1,
                "estimate": est, "design": "now", "error": "built again"}

    monkeypatch.setattr(bb, "run_auto", run_auto)
    args = ["--out", str(auto), "--only", "wm-demo", "--boards", "icebreaker", "ulx3s-12f",
            "--stale"]
    before = auto.read_text()
    capsys.readouterr()
    assert bb.main(args + ["--dry-run"]) == 0
    said = capsys.readouterr().out
    assert built == [] and auto.read_text() == before
    assert "wm-demo|ulx3s-12f|auto: would be built (the generated design changed)" in said
    assert "1 of the 2 selected jobs would be built" in said
    assert bb.main(args) == 0
    assert built == ["ulx3s-12f"]
    with pytest.raises(SystemExit):
        bb.main(["--out", str(auto), "--refresh-estimates", "--dry-run"])
    assert "--refresh-estimates rewrites the records" in capsys.readouterr().err


def test_refresh_builds_again_a_first_try_routed_otherwise(tmp_path, monkeypatch):
    """``--refresh``: an automatic record whose first try is the one the choice makes now
    (configuration, clock and router) is kept; one routed with router2, as older records
    were above 15,000 estimated LUT4 (they name no router), is built again."""
    import json
    import bench.boards as bb
    from polychrony_cli.choose import choose
    from tests.nets import raster, tiny_net
    net = tiny_net()
    work = [(None, {1: raster([[0, 3], [], [5]], 12, 8)}, 12)]
    c = choose(net, "icebreaker", work).best
    est = {"lut": 1000, "blocks_total": 3, "spram_total": 0}

    def record(board, lut, router=None):
        first = {"configuration": c.label, "core": c.core, "lanes": c.lanes,
                 "clock_mhz": c.clock_mhz, "result": "timing met",
                 **({"router": router} if router else {})}
        return {"key": f"tiny|{board}|auto", "network": "tiny", "board": board, "lanes": 1,
                "configuration": c.label, "lut_estimate_with_link": lut, "estimate": est,
                "error": "recorded", "design": "now", "tries": [first]}

    # One network "on" four boards, the choice made for the iCEBreaker on each.
    jobs = {"icebreaker": (20_000, "router1"), "ulx3s-12f": (20_000, "router2"),
            "ulx3s-25f": (20_000, None), "ulx3s-45f": (9_000, None)}
    out = tmp_path / "auto.json"
    out.write_text(json.dumps([record(b, *v) for b, v in jobs.items()]))
    monkeypatch.setattr("polychrony_cli.choose.choose",
                        lambda net, board, work, _c=choose, **k: _c(net, "icebreaker", work, **k))
    monkeypatch.setattr(bb, "AUTO_JOBS", [("tiny", b) for b in jobs])
    monkeypatch.setattr(bb, "_auto_work", lambda name: (net, work))
    monkeypatch.setattr(bb, "auto_design", lambda rec, net: "now")
    built = []

    def run_auto(name, board, net, work, build_root):
        built.append(board)
        return dict(record(board, 1000, "router1"), error="built again")

    monkeypatch.setattr(bb, "run_auto", run_auto)
    args = ["--out", str(out), "--refresh", "--build-dir", str(tmp_path / "b")]
    before = out.read_text()
    assert bb.main(args + ["--dry-run"]) == 0
    assert built == [] and out.read_text() == before
    assert bb.main(args) == 0
    assert built == ["ulx3s-12f", "ulx3s-25f"]


@pytest.mark.slow
def test_recorded_design_is_what_the_generators_give(tmp_path):
    """A real pinned build and a real automatic one (a tiny network on the iCEBreaker): the
    design each record keeps is the fingerprint computed again without building, and another
    clock gives another."""
    import bench.boards as bb
    from tests.nets import raster, tiny_net
    net = tiny_net()
    work = [(None, {1: raster([[0, 3], [], [5]], 12, 8)}, 12)]
    job = ("tiny", "icebreaker", 1, None, 24)
    rec = bb.run_job(job, net, bb._activities(net, work), tmp_path / "pinned", work)
    assert "error" not in rec and len(rec["design"]) == 64
    assert bb.job_design(job, net) == rec["design"]
    assert bb.job_design(("tiny", "icebreaker", 1, None, 30), net) != rec["design"]
    auto = bb.run_auto("tiny", "icebreaker", net, work, tmp_path / "auto")
    assert "error" not in auto and bb.auto_design(auto, net) == auto["design"]


def test_working_memory_bench_names():
    """``wm-N`` is a working memory of N neurons with 4-bit weights, ``wm-N-w8`` the same
    with 8-bit ones; other names are refused."""
    import bench.boards as bb
    for name, bits in (("wm-40", 4), ("wm-40-w8", 8)):
        net, work = bb._network(name)
        w = net.projections[0]
        assert (net.layers[1].n, w.w_bits, w.weight.shape[2]) == (40, bits, 41)
        assert len(work) == 1 and work[0][1][1].shape[1] == 40
    with pytest.raises(ValueError, match="unknown network 'wm-x'"):
        bb._network("wm-x")


def test_refresh_estimates_keeps_an_automatic_records_speed(tmp_path, monkeypatch):
    """``--refresh-estimates`` on automatic records: the resources are estimated again with
    the current model (and the estimate with the host link follows), the measured speed and
    the build's results stay (here a build that failed); a record without an estimate (a
    failed choice) is left."""
    import json
    import bench.boards as bb
    from boards.fit import link_cost
    from rtl.cost import logic_estimate
    from tests.nets import raster, tiny_net
    net = tiny_net()
    work = [(None, {1: raster([[0, 3], [], [5]], 12, 8)}, 12)]
    monkeypatch.setattr(bb, "_network", lambda name: (net, work))
    monkeypatch.setattr(bb, "AUTO_JOBS", [("tiny", "ulx3s-85f"), ("tiny", "icebreaker")])
    speed = {"clock_mhz": 33.3, "cycles_per_step": 7.5, "cycles_max": 9,
             "steps_per_sample": 12, "steps_per_s": 4.44e6, "samples_per_s": 370000.0}
    recs = [{"key": "tiny|ulx3s-85f|auto", "network": "tiny (network, 1 lane)",
             "board": "ulx3s-85f", "lanes": 1, "core": "network", "clock_mhz": 33.3,
             "fmax_mhz": 41.0, "lut_estimate_with_link": 1, "error": "timing missed",
             "estimate": {"family": "ecp5", "lanes": 1, "lut": 1, "blocks_total": 0, **speed}},
            {"key": "tiny|icebreaker|auto", "network": "tiny", "board": "icebreaker",
             "lanes": 0, "estimate": None, "error": "fits nowhere"}]
    out = tmp_path / "auto.json"
    out.write_text(json.dumps(recs))
    monkeypatch.setattr(bb, "run_auto", lambda *a: pytest.fail("nothing is built"))
    assert bb.main(["--out", str(out), "--refresh-estimates"]) == 0
    got = {r["key"]: r for r in json.loads(out.read_text())}
    rec = got["tiny|ulx3s-85f|auto"]
    lut = logic_estimate(net, lanes=1, device="LFE5U-85F")["lut"]
    assert rec["estimate"]["lut"] == lut > 1
    assert rec["lut_estimate_with_link"] == lut + link_cost("ecp5", 1)["lut"]
    assert {k: rec["estimate"][k] for k in speed} == speed
    assert rec["fmax_mhz"] == 41.0 and "memory_bits" in rec["estimate"]
    assert got["tiny|icebreaker|auto"] == recs[1]
