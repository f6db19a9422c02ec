"""The simulated board (boards/simboard.py): a Verilator model of a board top on a pty that
pyserial opens like a real serial port."""

import os
import random
import shutil
import threading
import time

import pytest
import serial

from boards import simboard
from boards.simboard import SimBoard, SimBoardError, build_simboard

pytestmark = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                                reason="no C++ compiler")

DIV = 4
BUSY = 3_000_000  # cycles of the echo board's "computation" (> the 2M-cycle idle threshold)

# Echo board: each received byte comes back + 1 (mod 256) through a 16-byte FIFO; 0xFF starts
# a computation of BUSY cycles without any UART traffic, after which it answers 0xA5. leds show
# the last byte received. Self-contained: its own minimal UART at DIV cycles per bit.
ECHO_V = """
module echo_board #(parameter DIV = %(div)d, parameter BUSY = %(busy)d) (
    input clk, input rst, input rx, output tx, output reg [7:0] leds);
  reg [1:0] rx_sync;
  reg rx_busy; reg [15:0] rx_cnt; reg [3:0] rx_bit; reg [7:0] rx_sh;
  reg rx_valid; reg [7:0] rx_data;
  always @(posedge clk) begin
    rx_sync <= {rx_sync[0], rx};
    rx_valid <= 0;
    if (rst) begin rx_busy <= 0; rx_sync <= 2'b11; end
    else if (!rx_busy) begin
      if (!rx_sync[1]) begin rx_busy <= 1; rx_cnt <= DIV/2; rx_bit <= 0; end
    end else if (rx_cnt == DIV-1) begin
      rx_cnt <= 0; rx_bit <= rx_bit + 1;
      if (rx_bit == 0 && rx_sync[1]) rx_busy <= 0;
      else if (rx_bit >= 1 && rx_bit <= 8) rx_sh <= {rx_sync[1], rx_sh[7:1]};
      else if (rx_bit == 9) begin rx_busy <= 0; rx_valid <= rx_sync[1]; rx_data <= rx_sh; end
    end else rx_cnt <= rx_cnt + 1;
  end
  reg [7:0] mem [0:15]; reg [4:0] wp, rp;
  wire empty = wp == rp;
  reg [31:0] busy_cnt; reg busy;
  reg tx_busy; reg [15:0] tx_cnt; reg [3:0] tx_bit; reg [9:0] tx_sh;
  assign tx = tx_sh[0];
  wire tx_load = !empty && (!tx_busy || (tx_cnt == DIV-1 && tx_bit == 9));
  always @(posedge clk) begin
    if (rst) begin wp <= 0; rp <= 0; tx_sh <= 10'h3ff; tx_busy <= 0; busy <= 0; leds <= 0; end
    else begin
      if (rx_valid) begin
        leds <= rx_data;
        if (rx_data == 8'hFF) begin busy <= 1; busy_cnt <= BUSY; end
        else begin mem[wp[3:0]] <= rx_data + 8'd1; wp <= wp + 1; end
      end
      if (busy) begin
        busy_cnt <= busy_cnt - 1;
        if (busy_cnt == 0) begin busy <= 0; mem[wp[3:0]] <= 8'hA5; wp <= wp + 1; end
      end
      if (tx_load) begin
        tx_sh <= {1'b1, mem[rp[3:0]], 1'b0}; rp <= rp + 1;
        tx_busy <= 1; tx_cnt <= 0; tx_bit <= 0;
      end else if (tx_busy) begin
        if (tx_cnt == DIV-1) begin
          tx_cnt <= 0; tx_sh <= {1'b1, tx_sh[9:1]};
          if (tx_bit == 9) tx_busy <= 0; else tx_bit <= tx_bit + 1;
        end else tx_cnt <= tx_cnt + 1;
      end
    end
  end
endmodule
""" % {"div": DIV, "busy": BUSY}


def loop_board_verilog() -> str:
    """An Amaranth top (as a board top is made): tx follows rx one cycle later, and a
    free-running counter drives the leds, so its state never settles (no fixed point)."""
    from amaranth import Module, Signal
    from amaranth.back import verilog
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class Loop(wiring.Component):
        rx: In(1)
        tx: Out(1, init=1)
        leds: Out(8)

        def elaborate(self, platform):
            m = Module()
            count = Signal(24)
            m.d.sync += [count.eq(count + 1), self.tx.eq(self.rx)]
            m.d.comb += self.leds.eq(count[-8:])
            return m

    return verilog.convert(Loop(), name="loop_board")


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def echo_exe(tmp_path_factory):
    work = tmp_path_factory.mktemp("simboard_echo")
    (work / "echo.v").write_text(ECHO_V)
    t0 = time.monotonic()
    exe = build_simboard(work / "echo.v", "echo_board", work / "build")
    print(f"echo board build: {time.monotonic() - t0:.1f} s")
    return exe


@pytest.fixture
def board(echo_exe, tmp_path):
    with SimBoard(echo_exe, DIV, trace=tmp_path / "uart.log") as b:
        yield b


def test_echo_1000_random_bytes(board, tmp_path):
    rng = random.Random(1)
    data = bytes(rng.randrange(255) for _ in range(1000))  # no 0xFF (the busy command)
    expected = bytes(b + 1 for b in data)
    port = serial.Serial(board.port, 115200, timeout=2)  # baud is meaningless on a pty
    try:
        got, pos = b"", 0
        while pos < len(data):
            n = rng.randrange(1, 100)
            port.write(data[pos:pos + n])
            pos += n
            got += port.read(min(pos, len(data)) - len(got))
        got += port.read(len(data) - len(got))
        assert got == expected
        port.timeout = 0.2
        assert port.read(1) == b""  # nothing extra
    finally:
        port.close()
    stats = board.stop()
    assert stats["rx_bytes"] == 1000 and stats["tx_bytes"] == 1000
    assert stats["framing_errors"] == 0 and stats["tx_dropped"] == 0
    assert stats["leds"] == data[-1]
    trace = (tmp_path / "uart.log").read_text().splitlines()
    assert sum(" rx " in l for l in trace) == 1000 and sum(" tx " in l for l in trace) == 1000
    first_rx = next(l for l in trace if " rx " in l).split()
    assert first_rx[1:] == ["rx", f"0x{data[0]:02x}"]


def test_back_to_back_bytes_keep_the_line_busy(board):
    # A burst shifts in back to back: 1000 bytes take 10 * DIV cycles each.
    port = serial.Serial(board.port, timeout=5)
    port.write(bytes(1000))
    assert port.read(1000) == bytes([1]) * 1000
    port.close()
    stats = board.stop()
    assert stats["rx_bytes"] == 1000


def test_host_reopens_the_port(board):
    for k in range(3):
        port = serial.Serial(board.port, timeout=2)
        port.write(bytes([k, 10 + k]))
        assert port.read(2) == bytes([k + 1, 11 + k])
        port.close()
    # Answers produced while no host holds the port are dropped at the next open (pyserial
    # flushes its input), like a real board's stale bytes: a fresh open sees only new ones.
    port = serial.Serial(board.port, timeout=2)
    port.write(b"\x20")
    port.close()
    time.sleep(0.2)
    port = serial.Serial(board.port, timeout=2)
    port.write(b"\x30")
    assert port.read(1) == b"\x31"
    port.close()
    assert board.alive


def test_round_trip_latency_is_low(board):
    port = serial.Serial(board.port, timeout=2)
    t0 = time.monotonic()
    for k in range(50):
        port.write(bytes([k]))
        assert port.read(1) == bytes([k + 1])
    rtt = (time.monotonic() - t0) / 50
    port.close()
    print(f"round trip: {rtt * 1e3:.2f} ms")
    assert rtt < 0.05


def test_long_computation_then_sleep(echo_exe):
    """A BUSY-cycle computation with the UART quiet (longer than the idle threshold) still
    answers; then the design is at a fixed point and the program uses no CPU."""
    with SimBoard(echo_exe, DIV) as board:
        port = serial.Serial(board.port, timeout=20)
        t0 = time.monotonic()
        port.write(b"\xff")
        assert port.read(1) == b"\xa5"
        dt = time.monotonic() - t0
        print(f"busy: {BUSY} cycles in {dt:.2f} s ({BUSY / dt / 1e6:.1f} Mcycles/s)")
        time.sleep(0.3)  # the idle threshold (2M cycles) passes
        c0 = cpu_seconds(board.pid)
        time.sleep(1.0)
        idle_cpu = cpu_seconds(board.pid) - c0
        print(f"idle CPU: {idle_cpu:.2f} s per s")
        assert idle_cpu < 0.1
        port.write(b"\x41")  # wakes up at once
        assert port.read(1) == b"\x42"
        port.close()
        stats = board.stop()
    assert stats["fixed_point_sleeps"] >= 1
    assert stats["throttled_batches"] >= 1


def test_kill_while_the_host_reads(echo_exe):
    board = SimBoard(echo_exe, DIV).start()
    port = serial.Serial(board.port, timeout=2)
    port.write(b"\x01")
    assert port.read(1) == b"\x02"
    outcome = {}

    def reader():
        try:
            outcome["data"] = port.read(10)
        except (serial.SerialException, OSError) as e:
            outcome["error"] = e

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    time.sleep(0.2)
    board.kill()
    assert not board.alive
    t.join(5)
    assert not t.is_alive(), "the host's read hung after the board was unplugged"
    assert outcome.get("data", b"") == b""
    with pytest.raises((serial.SerialException, OSError)):
        port.write(b"\x01")
        port.flush()
        if port.read(1) == b"":
            raise serial.SerialException("nothing read")
    port.close()
    board.stop()  # harmless after kill


def test_free_running_design_is_throttled_when_quiet(tmp_path_factory):
    """An Amaranth top whose counter never settles: the board keeps simulating, throttled once
    the UART has been quiet for idle_cycles, and a host byte still gets through at once."""
    work = tmp_path_factory.mktemp("simboard_loop")
    (work / "loop.v").write_text(loop_board_verilog())
    exe = build_simboard(work / "loop.v", "loop_board", work / "build")
    with SimBoard(exe, 8, idle_cycles=100_000) as board:
        port = serial.Serial(board.port, timeout=2)
        data = bytes(range(256))
        port.write(data)
        assert port.read(256) == data  # tx = rx delayed: exact bytes back
        time.sleep(0.5)
        c0 = cpu_seconds(board.pid)
        time.sleep(1.0)
        idle_cpu = cpu_seconds(board.pid) - c0
        print(f"throttled idle CPU: {idle_cpu:.2f} s per s")
        assert idle_cpu < 0.8
        t0 = time.monotonic()
        port.write(b"x")
        assert port.read(1) == b"x"
        assert time.monotonic() - t0 < 0.5
        port.close()
        stats = board.stop()
    assert stats["throttled_batches"] > 0 and stats["fixed_point_sleeps"] == 0
    assert stats["rx_bytes"] == 257 and stats["tx_bytes"] == 257


def test_max_idle_ms_ends_the_program(echo_exe):
    board = SimBoard(echo_exe, DIV, max_idle_ms=300).start()
    port = serial.Serial(board.port, timeout=1)
    port.write(b"\x05")
    assert port.read(1) == b"\x06"
    t0 = time.monotonic()
    while board.alive and time.monotonic() - t0 < 5:
        time.sleep(0.02)
    assert not board.alive and time.monotonic() - t0 < 2
    port.close()
    assert board.stop()["rx_bytes"] == 1


def test_build_is_cached(echo_exe, monkeypatch):
    work = echo_exe.parent
    src = work.parent / "echo.v"
    mtime = echo_exe.stat().st_mtime_ns
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        raise OSError("should not compile")

    monkeypatch.setattr(simboard.subprocess, "run", fake_run)
    t0 = time.monotonic()
    assert build_simboard(src, "echo_board", work) == echo_exe
    assert time.monotonic() - t0 < 1.0
    assert not calls and echo_exe.stat().st_mtime_ns == mtime
    # A changed source (here: another top name) invalidates the stamp and runs Verilator.
    with pytest.raises(SimBoardError, match="cannot run Verilator"):
        build_simboard(src, "echo_board2", work)
    assert calls


def test_compile_error_gives_the_log_tail(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text("module bad_board(input clk, input rst, input rx, output tx);\n"
                   "  assign tx = rx +;\nendmodule\n")
    with pytest.raises(SimBoardError) as e:
        build_simboard(bad, "bad_board", tmp_path / "build")
    msg = str(e.value)
    assert str(bad) in msg and "%Error" in msg and "bad.v:2" in msg
    with pytest.raises(SimBoardError, match="no such Verilog"):
        build_simboard(tmp_path / "missing.v", "x", tmp_path / "build")


def test_missing_verilator(tmp_path, monkeypatch):
    (tmp_path / "t.v").write_text("module t(input clk, input rst, input rx, output tx);\n"
                                  "assign tx = rx;\nendmodule\n")
    monkeypatch.setattr(simboard, "_verilator", lambda: str(tmp_path / "no-verilator"))
    with pytest.raises(SimBoardError, match="cannot run Verilator"):
        build_simboard(tmp_path / "t.v", "t", tmp_path / "build")


def test_program_that_dies_at_start(tmp_path):
    fake = tmp_path / "fake"
    fake.write_text("#!/bin/sh\necho 'something broke'\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(SimBoardError, match="something broke"):
        SimBoard(fake, DIV).start()
    with pytest.raises(SimBoardError, match="no such program"):
        SimBoard(tmp_path / "nothing", DIV).start()
