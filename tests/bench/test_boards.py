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
