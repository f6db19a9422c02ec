"""The automatic choice: ranked by throughput among what fits, deterministic, and one clear line
when nothing fits."""

import json
import subprocess
import sys

import pytest

from boards.catalog import board
from model.ir import save
from polychrony_cli.choose import CLOCK_MARGIN, choose, clock_for
from polychrony_cli.steps import estimate_core, samples_of
from rtl.cores import CORES


def _cli(*args, timeout=1200):
    return subprocess.run([sys.executable, "-m", "polychrony_cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def wm_work(shaped):
    net = shaped.wm_network(32, 8, seed=2)
    return net, samples_of(net, steps=40, seed=1)


@pytest.mark.parametrize("margin", [0.10, 0.40])
def test_ranking_agrees_with_estimating_every_configuration(wm_work, margin, monkeypatch):
    """Every network-core lane count is estimated on its own (as ``estimate --core network
    --lanes P`` does) and the ranking is exactly those that fit: those with margin first, by
    samples per second, then the tight ones (a 40 % margin makes the fastest ones tight)."""
    import boards.fit
    import polychrony_cli.choose as ch
    monkeypatch.setattr(boards.fit, "MARGIN", margin)
    monkeypatch.setattr(ch, "routing_limit", lambda core, family: {})   # no routing evidence
    net, work = wm_work
    b = board("icebreaker")
    choice = choose(net, "icebreaker", work, core="network")
    spec = CORES["network"]
    exhaustive = {}
    for p in spec.lane_options(net):
        fmax, _ = spec.expected_fmax(b.family, p)
        est = estimate_core(spec, net, work, device=b.fpga, clock_mhz=clock_for(b, fmax),
                            lanes=p)
        exhaustive[p] = est
    from boards.fit import board_fit
    fits = {p: board_fit(e, b) for p, e in exhaustive.items()}
    fitting = [p for p, f in fits.items() if f.fits]
    want = sorted(fitting, key=lambda p: (fits[p].verdict == "tight",
                                          -exhaustive[p].samples_per_s, exhaustive[p].lut, p))
    if margin > 0.1:            # the rule is exercised: a slower design with margin first
        tight = [p for p in fitting if fits[p].verdict == "tight"]
        assert tight and want.index(tight[0]) > 0
        assert exhaustive[tight[0]].samples_per_s > exhaustive[want[0]].samples_per_s
    assert [c.lanes for c in choice.ranked] == want
    for c in choice.ranked:
        assert c.samples_per_s == pytest.approx(exhaustive[c.lanes].samples_per_s)
        assert c.estimate.lut == exhaustive[c.lanes].lut
    assert {c.lanes for c in choice.dropped} == set(exhaustive) - set(fitting)
    assert all(c.dropped.startswith("does not fit the iCE40UP5K") for c in choice.dropped)


def test_choice_is_deterministic_and_pins_hold(wm_work):
    net, work = wm_work
    a = choose(net, "ulx3s-85f", work)
    b = choose(net, "ulx3s-85f", work)
    assert a.to_json() == b.to_json() and a.best is not None
    assert a.best.core == "network"        # the stack and lean cores do not take a WM network
    assert any("does not support the network" in c.dropped for c in a.dropped
               if c.core == "stack")
    assert [c.dropped for c in a.dropped if c.core == "lean"] == ["built for ice40 only"]
    pinned = choose(net, "ulx3s-85f", work, core="network", lanes=2)
    assert [(c.core, c.lanes) for c in pinned.ranked] == [("network", 2)]


def test_clock_is_below_the_expected_fmax_and_made_by_the_pll():
    from boards.clocks import pll_for
    # below the oscillator too: the OrangeCrab's 48 MHz and the ULX3S's 25 MHz are more than
    # a large design reaches, and the PLL makes less
    for name, fmax in (("icebreaker", 23.4), ("icebreaker", 26.0), ("ulx3s-85f", 42.0),
                       ("ulx3s-85f", 74.0), ("orangecrab-25f", 54.0),
                       ("orangecrab-85f", 44.0), ("ulx3s-85f", 24.0)):
        b = board(name)
        clk = clock_for(b, fmax)
        assert clk <= fmax * (1 - CLOCK_MARGIN) + 1e-9
        assert clk > fmax * (1 - CLOCK_MARGIN) * 0.9
        pll = pll_for(b.family, b.clock_mhz * 1e6, clk * 1e6)
        assert pll is None or abs(pll["achieved_hz"] / 1e6 - clk) < 1e-6
    assert clock_for(board("icebreaker"), 5.0) == board("icebreaker").clock_mhz


def test_the_clock_serves_the_host_links_baud_rate():
    """Every clock the choice can pick keeps the UART within the link's tolerance at the
    board's baud rate (22.5 MHz on the iCEBreaker would be 2.3 % off at 1 Mbaud), and at one
    the user gives."""
    from boards.catalog import BOARDS
    from rtl.link import uart_divisor
    for name in BOARDS:
        b = board(name)
        for tenth in range(150, 1200, 7):
            clk = clock_for(b, tenth / 10)
            uart_divisor(clk * 1e6, b.uart_baud)
            assert clk <= tenth / 10 * (1 - CLOCK_MARGIN) + 1e-9 or clk == b.clock_mhz < \
                16.0        # the iCE40's PLL makes nothing under 16 MHz: its 12 MHz oscillator
            uart_divisor(clock_for(b, tenth / 10, 115_200) * 1e6, 115_200)
    assert clock_for(board("icebreaker"), 23.7) != 22.5


def test_a_network_that_fits_nowhere_is_one_line_and_status_3(tmp_path, shaped):
    path = save(shaped.wm_network(128, 41, seed=1), tmp_path / "wm128.npz")
    for cmd in ("estimate", "build"):
        out = _cli(cmd, path, "--board", "icebreaker", "--steps", "5",
                   "-o" if cmd == "build" else "--seed", tmp_path / "b" if cmd == "build" else "0")
        assert out.returncode == 3, (cmd, out.stderr[-2000:])
        err = out.stderr.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in out.stderr
        assert "fits nowhere on the icebreaker (iCE40UP5K)" in err[0]
        assert "5,373,952 bits" in err[0] and "more than the 1,171,456 bits" in err[0]


def test_estimate_shows_the_ranking_and_the_chosen_configuration(tmp_path, wm8):
    path = save(wm8, tmp_path / "wm8.npz")
    out = _cli("estimate", path, "--steps", "20", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout)
    ranked = r["choice"]["ranked"]
    assert ranked and r["core"] == ranked[0]["core"] and r["lanes"] == ranked[0]["lanes"]
    assert r["samples_per_s"] == pytest.approx(ranked[0]["samples_per_s"], rel=1e-3)
    def rank(c):        # like a routed build, then the others (tight last), then speed
        return (c["verdict"] == "tight" and not c["proven"], not c["proven"],
                -c["samples_per_s"])
    assert all(rank(a) <= rank(b) for a, b in zip(ranked, ranked[1:]))
    assert r["fit"]["verdict"] in ("fits", "tight") and r["stimulus"] == "random"
    text = _cli("estimate", path, "--steps", "20")
    assert text.returncode == 0 and "chosen:" in text.stdout
    assert "best first: those like a build that routed, then the others" in text.stdout


@pytest.mark.slow
def test_build_with_no_knobs_builds_the_first_choice_and_it_fits(tmp_path, wm8):
    """A real place and route: the tool's first choice for a small network on the iCEBreaker
    builds, meets timing at the clock it chose, and nextpnr's counts agree with the verdict."""
    path = save(wm8, tmp_path / "wm8.npz")
    out = _cli("build", path, "--steps", "20", "-o", tmp_path / "b", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout)
    first = r["choice"]["ranked"][0]
    assert (r["core"], r["lanes"]) == (first["core"], first["lanes"])
    assert r["timing_met"] and r["fmax_mhz"] >= r["clock_mhz"]
    # the build kept is the fastest try that met timing (a faster one may have missed)
    met = [t["clock_mhz"] for t in r["tries"] if t["result"] == "timing met"]
    assert met and r["clock_mhz"] == pytest.approx(max(met), rel=0.01)
    for key in ("logic", "bram", "dsp"):
        used, available = r["nextpnr"][key]["used"], r["nextpnr"][key]["available"]
        assert used <= available


@pytest.mark.parametrize("meets", ["faster", "lower", "neither"])
def test_a_build_with_room_is_built_again_faster(tmp_path, monkeypatch, wm_work, meets):
    """Timing met with room: one more build at the clock the report supports, kept if it
    meets timing too; if it misses by little (its own report still supports a clock 10 %
    above the first's), once more at that clock, kept if it meets; else the first. Without
    room, with ``climb=False`` or a clock given, a single build."""
    from types import SimpleNamespace
    import polychrony_cli.steps as steps
    from polychrony_cli.choose import CLIMB, build_choice
    net, work = wm_work
    cand = choose(net, "ulx3s-85f", work).ranked[0]
    clocks = []

    def build_bitstream(net, board_name, out, *, clock_hz, **knobs):
        clocks.append(clock_hz / 1e6)
        n = len(clocks)
        return SimpleNamespace(fmax_mhz=1.5 * clocks[0] if n == 1 else clocks[-1] * 0.97,
                               timing_met=n == 1 or {"faster": 2, "lower": 3}.get(meets) == n)

    monkeypatch.setattr(steps, "build_bitstream", build_bitstream)
    _, _, clock, tries = build_choice(net, "ulx3s-85f", [cand], tmp_path)
    assert clocks[1] >= clocks[0] * (1 + CLIMB)
    assert clocks[1] <= 1.5 * clocks[0] * (1 - CLOCK_MARGIN)
    if meets == "faster":
        assert len(clocks) == 2 and clock == clocks[1]
    else:
        assert len(clocks) == 3 and clocks[0] * (1 + CLIMB) <= clocks[2] < clocks[1]
        assert clocks[2] <= 0.97 * clocks[1] * (1 - CLOCK_MARGIN)
        assert clock == (clocks[2] if meets == "lower" else clocks[0])
    assert [t["result"] for t in tries] == ["timing met"] + {
        "faster": ["timing met"], "lower": ["timing missed", "timing met"],
        "neither": ["timing missed", "timing missed"]}[meets]
    # A faster try that misses by much is not tried again lower.
    clocks.clear()
    monkeypatch.setattr(steps, "build_bitstream", lambda net, b, out, *, clock_hz, **k: (
        clocks.append(clock_hz / 1e6) or SimpleNamespace(
            fmax_mhz=1.5 * clocks[0] if len(clocks) == 1 else clocks[0] * 1.05,
            timing_met=len(clocks) == 1)))
    _, _, clock, tries = build_choice(net, "ulx3s-85f", [cand], tmp_path)
    assert len(clocks) == 2 and clock == clocks[0]
    for kwargs in ({"climb": False}, {"clock_mhz": cand.clock_mhz}):
        clocks.clear()
        _, _, clock, tries = build_choice(net, "ulx3s-85f", [cand], tmp_path, **kwargs)
        assert clocks == [clock] and len(tries) == 1
    clocks.clear()
    monkeypatch.setattr(steps, "build_bitstream", lambda net, b, out, *, clock_hz, **k: (
        clocks.append(clock_hz / 1e6) or SimpleNamespace(fmax_mhz=clock_hz / 1e6 * 1.08,
                                                         timing_met=True)))
    _, _, clock, tries = build_choice(net, "ulx3s-85f", [cand], tmp_path)
    assert clocks == [clock] and len(tries) == 1    # under 10 % of room: no second build
    # A first try that misses: once more at the clock its report supports, kept when it
    # meets, without a climb after it (however much room it leaves).
    clocks.clear()
    monkeypatch.setattr(steps, "build_bitstream", lambda net, b, out, *, clock_hz, **k: (
        clocks.append(clock_hz / 1e6) or SimpleNamespace(
            fmax_mhz=clocks[0] * 0.8 if len(clocks) == 1 else clocks[-1] * 1.5,
            timing_met=len(clocks) > 1)))
    _, _, clock, tries = build_choice(net, "ulx3s-85f", [cand], tmp_path)
    assert len(clocks) == 2 and clock == clocks[1] < 0.8 * clocks[0]
    assert [t["result"] for t in tries] == ["timing missed", "timing met"]


def test_measured_cycles_are_cached_by_what_they_depend_on(tmp_path, monkeypatch, random_net):
    """A second measurement of the same network, samples, core and knobs comes from the cache
    (the simulator is not run); other samples or lanes are measured afresh; a damaged entry
    is measured again."""
    import polychrony_cli.steps as steps
    monkeypatch.setenv("POLYCHRONY_CACHE", str(tmp_path / "cache"))
    net = random_net(1, profile="stack")
    spec = CORES["lean"]
    assert spec.supports(net, lanes=2) is None and not net.layers[-1].spiking
    work = samples_of(net, steps=6, seed=3)
    calls = []
    real = steps._amaranth_cycles

    def counted(*a, **k):
        calls.append(a[3])
        return real(*a, **k)

    monkeypatch.setattr(steps, "_amaranth_cycles", counted)
    first = steps.measure_cycles(spec, net, work, lanes=2)
    assert steps.measure_cycles(spec, net, work, lanes=2) == first and calls == [2]
    steps.measure_cycles(spec, net, samples_of(net, steps=6, seed=4), lanes=2)
    steps.measure_cycles(spec, net, work, lanes=4)
    assert calls == [2, 2, 4]
    entries = sorted((tmp_path / "cache" / "cycles").glob("*.json"))
    assert len(entries) == 3
    for e in entries:
        e.write_text("{damaged")
    assert steps.measure_cycles(spec, net, work, lanes=2) == first and calls == [2, 2, 4, 2]
    assert steps.measure_cycles(spec, net, work, lanes=2, cache=False) == first
    assert calls == [2, 2, 4, 2, 2]


def test_knobs_of_one_core_need_that_core(tmp_path, wm8):
    path = save(wm8, tmp_path / "wm8.npz")
    for cmd in ("estimate", "build"):
        out = _cli(cmd, path, "--rows", "2=2", "--steps", "5")
        assert out.returncode == 2 and "--rows applies to the stack core" in out.stderr
    out = _cli("estimate", path, "--lanes", "zero")
    assert out.returncode == 2 and "expected an integer or auto" in out.stderr


def test_designs_route_with_router1_and_router2_on_request(wm_work):
    """Every network-core design, however large, gets nextpnr's default router (router1) first;
    router2 when asked for; the stack core always has router2."""
    from polychrony_cli.choose import Candidate, nextpnr_options
    net, work = wm_work
    for c in choose(net, "ulx3s-85f", work, core="network").ranked:
        assert nextpnr_options(c) == ""
        assert nextpnr_options(c, router2=True) == "--router router2"
    for router2 in (False, True):
        assert nextpnr_options(Candidate("stack", 16), router2=router2) == "--router router2"


@pytest.mark.parametrize("failure", ["stopped", "unrouted", "unplaced"])
def test_a_try_router1_does_not_finish_is_built_again_with_router2(tmp_path, monkeypatch,
                                                                    wm_work, failure):
    """A router1 try stopped at its time limit, or failed in routing, is built once more with
    router2 at the same clock (the climb then goes on with router2); a design that does not
    place is not (the next candidate comes instead). Each try's record names its router."""
    from types import SimpleNamespace
    import polychrony_cli.steps as steps
    from boards.build import BuildError
    from polychrony_cli.choose import build_choice
    net, work = wm_work
    cands = choose(net, "ulx3s-85f", work).ranked[:2]
    calls = []
    error = {"stopped": "build of 'top' in x did not finish within 45 minutes (stopped)",
             "unrouted": "build of 'top' in x failed (exit status 1)\nERROR: Failed to route "
                         "arc 3 of net 'n'",
             "unplaced": "build of 'top' in x failed (exit status 1)\nERROR: Unable to place "
                         "cell 'c', no BELs remaining"}[failure]

    def build_bitstream(net, board_name, out, *, clock_hz, lanes, nextpnr_opts, **knobs):
        calls.append((lanes, clock_hz / 1e6, nextpnr_opts))
        if len(calls) == 1:
            raise BuildError(error)
        return SimpleNamespace(fmax_mhz=clock_hz / 1e6 * 1.5, timing_met=True)

    monkeypatch.setattr(steps, "build_bitstream", build_bitstream)
    cand, _, clock, tries = build_choice(net, "ulx3s-85f", cands, tmp_path)
    first = (cands[0].lanes, cands[0].clock_mhz, "")
    assert calls[0] == first and tries[0]["router"] == "router1"
    assert tries[0]["result"].startswith("failed: build of 'top'")
    if failure == "unplaced":
        assert cand is cands[1] and calls[1] == (cands[1].lanes, cands[1].clock_mhz, "")
        return
    # the same candidate and clock with router2, then the climb, with router2 too
    assert cand is cands[0] and calls[1] == (*first[:2], "--router router2")
    assert len(calls) == 3 and calls[2][1] > calls[1][1] and calls[2][2] == "--router router2"
    assert [t["router"] for t in tries] == ["router1", "router2", "router2"]
    assert [t["result"] for t in tries[1:]] == ["timing met", "timing met"]
    assert clock == calls[2][1]


def test_ice40_designs_that_leave_room_are_placed_spread_out(wm_work):
    """On the iCE40 a design whose estimated logic leaves room (at most 80 % of the LUTs) is
    placed at a lower density; a fuller one, and every ECP5 design, keeps nextpnr's default."""
    from boards.fit import SPREAD, placement_options
    from polychrony_cli.choose import nextpnr_options
    net, work = wm_work
    share, opts = SPREAD["ice40"]
    choice = choose(net, "icebreaker", work, core="network")
    assert choice.ranked
    for c in choice.ranked:
        lut = c.fit.need("lut")
        want = opts if lut.used <= share * lut.available else ""
        assert placement_options(c.fit) == want and nextpnr_options(c) == want
    assert any(nextpnr_options(c) == opts for c in choice.ranked)
    roomy = next(c for c in choice.ranked if nextpnr_options(c) == opts)
    assert placement_options(roomy.fit, "--router router2") == f"--router router2 {opts}"
    assert placement_options(roomy.fit, "--placer-heap-beta 0.7") == "--placer-heap-beta 0.7"
    full = choice.ranked[0]
    full.fit = type(full.fit)(full.fit.device, tuple(
        type(n)(n.resource, int(share * n.available) + 1 if n.resource == "lut" else n.used,
                n.available) for n in full.fit.needs))
    assert placement_options(full.fit) == "" and nextpnr_options(full) == ""
    for c in choose(net, "ulx3s-85f", work, core="network").ranked:
        assert placement_options(c.fit) == ""


def test_candidates_wider_than_a_failed_route_are_dropped(shaped, monkeypatch):
    """``routing`` in rtl/calibration.json: with a network-core build of a 512-bit weight
    word that did not route on ECP5 (a calibration that says so), 64 lanes of 8-bit weights
    are dropped, 48 are ranked; pinned at 64 lanes, the one line says it would not route."""
    import polychrony_cli.choose as choose_module
    from polychrony_cli.choose import routing_limit
    real = routing_limit("network", "ecp5")
    assert real["routed"] >= 288 and "failed" not in routing_limit("network", "ice40")
    monkeypatch.setattr(choose_module, "routing_limit", lambda core, family: (
        {"routed": 288, "failed": 512} if (core, family) == ("network", "ecp5")
        else routing_limit(core, family)))
    net = shaped.wm_network(64, 8, w_bits=8, seed=0)
    work = samples_of(net, steps=10, seed=1)
    choice = choose(net, "ulx3s-85f", work, core="network")
    wide = [c for c in choice.dropped if c.dropped.startswith("too wide to route")]
    assert [c.lanes for c in wide] == [64]
    assert "512 weight bits per cycle" in wide[0].dropped
    assert all(c.wiring == 8 * c.lanes < 512 for c in choice.ranked)
    assert 48 in [c.lanes for c in choice.ranked]
    pinned = choose(net, "ulx3s-85f", work, core="network", lanes=64)
    assert pinned.best is None
    assert pinned.nowhere(board("ulx3s-85f")).startswith(
        "fits the ulx3s-85f (ECP5-85F) but would not route: network, 64 lanes is too wide")


@pytest.mark.slow
def test_the_ranking_holds_against_real_builds(tmp_path, shaped):
    """Place and route the two best-ranked configurations of a 32-neuron working memory on the
    iCEBreaker and the fewest lanes the estimate says do not fit: the first two place within
    the device, the first is at least as fast as the second at the clocks their reports allow
    (cycles per step are exact for the network core), and the third does not place."""
    from boards.build import BuildError
    from polychrony_cli.steps import build_bitstream
    net = shaped.wm_network(32, 8, seed=2)
    work = samples_of(net, steps=40, seed=1)
    b = board("icebreaker")
    choice = choose(net, "icebreaker", work, core="network")
    real = []
    for c in choice.ranked[:2]:
        res = build_bitstream(net, "icebreaker", tmp_path, lanes=c.lanes, core="network",
                              clock_hz=c.clock_mhz * 1e6, timing_allow_fail=True,
                              build_dir=tmp_path / c.slug)
        for key in ("logic", "bram", "dsp"):
            assert res.resources[key].used <= res.resources[key].available
        real.append(clock_for(b, res.fmax_mhz) / c.estimate.cycles_per_step)
    assert real[0] >= real[1]
    over = min((c for c in choice.dropped if c.fit is not None and not c.fit.fits),
               key=lambda c: c.lanes)
    assert over.lanes > choice.ranked[0].lanes
    with pytest.raises(BuildError, match="no BELs remaining|Failed to expand region|"
                                         "Unable to place"):
        build_bitstream(net, "icebreaker", tmp_path, lanes=over.lanes, core="network",
                        clock_hz=over.clock_mhz * 1e6, timing_allow_fail=True,
                        build_dir=tmp_path / over.slug)


def test_candidates_as_full_as_a_failed_route_are_dropped(monkeypatch, shaped):
    """``failed_lut_share``: a candidate whose logic takes at least the share of the LUT4s
    that a build failing to route took is dropped as too full, and said so."""
    import rtl.calibration as cal
    net = shaped.wm_network(64, 8, w_bits=4, seed=0)
    work = samples_of(net, steps=10, seed=1)
    free = choose(net, "ulx3s-12f", work, core="network")
    share = {c.lanes: next(n.used / n.available for n in c.fit.needs if n.resource == "lut")
             for c in free.ranked}
    cut = sorted(share.values())[len(share) // 2]
    data = cal.calibration()
    patched = dict(data, routing={"network": {"ecp5": {"failed_lut_share": cut}}})
    monkeypatch.setattr(cal, "calibration", lambda: patched)
    choice = choose(net, "ulx3s-12f", work, core="network")
    full = {c.lanes for c in choice.dropped if c.dropped.startswith("too full to route")}
    assert full == {p for p, x in share.items() if x >= cut} and full
    assert {c.lanes for c in choice.ranked} == {p for p, x in share.items() if x < cut}


def test_configurations_like_routed_builds_come_first(monkeypatch, shaped):
    """``proven``: no wider and no fuller than a build that routed. With evidence that only
    the narrow ones routed, a slower proven candidate is ranked before a faster unproven one,
    and the order within each keeps to samples per second."""
    import polychrony_cli.choose as ch
    net = shaped.wm_network(64, 8, w_bits=4, seed=0)
    work = samples_of(net, steps=10, seed=1)
    monkeypatch.setattr(ch, "routing_limit", lambda core, family: {
        "routed": 16 * 4, "routed_lut_share": 1.0})
    choice = choose(net, "ulx3s-85f", work, core="network")
    proven = [c.lanes <= 16 for c in choice.ranked]
    assert [c.proven for c in choice.ranked] == proven
    assert proven == sorted(proven, reverse=True) and any(proven) and not all(proven)
    fast = max(choice.ranked, key=lambda c: c.samples_per_s)
    assert not fast.proven and choice.best.proven
    for group in (True, False):
        sps = [c.samples_per_s for c in choice.ranked if c.proven == group]
        assert sps == sorted(sps, reverse=True)


def test_a_tight_design_like_one_that_routed_ranks_by_speed(monkeypatch, shaped):
    """The margin is there for routing: a tight candidate as full as a build of its core that
    routed ranks by its speed among the proven ones; without that evidence it comes last."""
    import boards.fit
    import polychrony_cli.choose as ch
    net, work = shaped.wm_network(32, 8, seed=2), None
    work = samples_of(net, steps=40, seed=1)
    monkeypatch.setattr(boards.fit, "MARGIN", 0.40)        # the fastest ones become tight
    monkeypatch.setattr(ch, "routing_limit", lambda core, family: {})
    unproven = choose(net, "icebreaker", work, core="network")
    assert unproven.best.fit.verdict == "fits"
    assert unproven.ranked[-1].fit.verdict == "tight"
    monkeypatch.setattr(ch, "routing_limit", lambda core, family: {
        "routed": 10 ** 6, "routed_lut_share": 1.0})
    proven = choose(net, "icebreaker", work, core="network")
    assert proven.best.fit.verdict == "tight"
    assert proven.best.samples_per_s == max(c.samples_per_s for c in proven.ranked)
