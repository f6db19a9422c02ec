// Simulated board: a Verilator model of a board top driven as if it sat on a serial port.
//
// Built by boards/simboard.py (`verilator --cc --exe --build --prefix Vtop ...`). The top has
// ports clk, rst (active-high, synchronous), rx (input, idle 1), tx (output, idle 1) and
// optionally leds. The program talks 8N1 UART on rx/tx at exactly DIVISOR clock cycles per bit
// and moves the bytes to and from FD, the master side of a pty opened by the parent, so a host
// program can open the slave side (/dev/pts/N) with pyserial as if it were a USB-serial port.
//
//   simboard FD DIVISOR [--reset-cycles N] [--max-idle-ms MS] [--idle-cycles K]
//                       [--idle-batch B] [--idle-sleep-ms MS] [--trace-uart FILE]
//
// Pacing (how the loop keeps the simulation fast without burning a core when idle):
//  * The model always runs cycle by cycle, in slices. Between slices the program does its
//    I/O: a non-blocking write of the decoded tx bytes and a non-blocking read of new rx bytes
//    (no poll() needed: one read() that may return EAGAIN). The slice length adapts so that a
//    slice takes about 200 us of wall time (between 64 and 65536 cycles), so syscalls cost
//    well under 1 % and a host byte waits at most ~0.2 ms before it starts to shift in.
//    A slice also ends early when the rx queue runs dry (to fetch more bytes while the last
//    one is still shifting, so host data goes out back to back) and when a tx burst ends
//    (the line has been idle 2 bit times after a byte: the bytes are written at once, so the
//    host sees a response with no extra delay).
//  * "UART activity" = a byte shifting in on rx, the tx line low or a tx byte being decoded.
//    After K (--idle-cycles, default 2,000,000) cycles without any, the design is probably
//    waiting for the host. Then:
//      - Fixed-point test: the model's whole state (Verilator root object, --flatten makes it
//        hold every register and memory) is compared before and after one clock cycle. If it
//        did not change, and the inputs do not change, it never will: the program stops
//        simulating and blocks in poll() until the host sends a byte (zero CPU). A design
//        whose state keeps changing (a free-running counter, a heartbeat LED, a long internal
//        computation) fails the test, which is repeated before every throttled batch.
//      - Otherwise throttle: run batches of B (--idle-batch, default 65536) cycles, each
//        followed by poll(fd, POLLIN, 1 ms) (--idle-sleep-ms); after 16*K quiet cycles the
//        sleep is 10 ms, after 64*K 100 ms. A host byte ends the sleep at once (poll wakes
//        up, the byte starts shifting in), and any UART activity returns to full speed.
//        The price: a computation that stays silent on the UART for more than K cycles and
//        never settles is slowed by the sleeps (1 ms per B cycles is a few % for a big model
//        at ~4 Mcycles/s; 100 ms per B cycles after 64*K quiet cycles is ~7x slower), and a
//        design with a free-running counter idles at ~20 % (10 ms level) then ~3 % of a core.
//  * POLLHUP on the master (no process holds the slave open: the parent normally keeps one
//    open, like a USB-serial adapter that stays plugged in) is treated as "no data".
//  * SIGTERM/SIGINT: clean exit. The program also exits when its parent process dies and,
//    with --max-idle-ms, when no byte has moved in either direction for that long.
//
// --trace-uart FILE: one line per event, "<cycle> rx 0xNN" (the cycle its start bit begins),
// "<cycle> tx 0xNN" / "<cycle> ferr 0xNN" (a byte decoded / a framing error, at the cycle its
// start bit began) and "<cycle> leds 0xN" (leds changed).
//
// stdout: "ready" once reset is released; at exit one line
//   "simboard: cycles=... rx_bytes=... tx_bytes=... framing_errors=... ..."

#include "Vtop.h"
#include "Vtop___024root.h"
#include "verilated.h"

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

// Verilator may reference these for $time; the loop never advances time.
double sc_time_stamp() { return 0; }

static volatile sig_atomic_t g_stop = 0;
static void on_signal(int) { g_stop = 1; }

// leds is optional: read it when the top has a (scalar, <= 64-bit) leds port.
template <class T>
static auto leds_of(T* t, int) -> decltype((uint64_t)t->leds) { return (uint64_t)t->leds; }
template <class T>
static uint64_t leds_of(T*, long) { return 0; }

static uint64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(const char* argv0) {
    fprintf(stderr,
            "usage: %s FD DIVISOR [--reset-cycles N] [--max-idle-ms MS] [--idle-cycles K]\n"
            "       [--idle-batch B] [--idle-sleep-ms MS] [--trace-uart FILE]\n",
            argv0);
    exit(2);
}

static uint64_t parse_u64(const char* s, const char* what, const char* argv0) {
    char* end = nullptr;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || !end || *end || s[0] == '-') {
        fprintf(stderr, "simboard: bad %s: %s\n", what, s);
        usage(argv0);
    }
    return v;
}

struct Board {
    Vtop* top;
    int fd;
    uint64_t div;
    FILE* trace = nullptr;

    uint64_t cyc = 0;

    // rx: bytes from the host, shifted onto the rx pin.
    static constexpr size_t RXQ = 1 << 16;
    std::vector<uint8_t> rxq = std::vector<uint8_t>(RXQ);
    size_t rx_head = 0, rx_count = 0;
    bool rx_busy = false;
    uint16_t rx_frame = 0;  // start, 8 data LSB first, stop
    int rx_bit = 0;
    uint64_t rx_left = 0;   // cycles left in the current bit
    bool need_read = false;

    // tx: decoded from the tx pin.
    enum { TX_IDLE, TX_FRAME, TX_BREAK } tx_state = TX_IDLE;
    bool tx_prev = true;
    uint64_t tx_start = 0, tx_next = 0;
    int tx_bit = 0;
    uint8_t tx_byte = 0;
    std::vector<uint8_t> out;
    size_t out_off = 0;
    uint64_t flush_at = 0;
    bool need_flush = false;
    bool out_new = false;  // bytes decoded since the last write attempt
    static constexpr size_t OUT_MAX = 1 << 20;

    uint64_t last_activity = 0;
    bool in_reset = false;  // tx is not decoded while rst is high
    uint64_t last_leds = 0;

    // stats
    uint64_t rx_bytes = 0, tx_bytes = 0, framing_errors = 0, tx_dropped = 0, glitches = 0;

    void cycle() {
        if (!rx_busy && rx_count) {  // next byte, back to back
            uint8_t b = rxq[rx_head];
            rx_head = (rx_head + 1) & (RXQ - 1);
            --rx_count;
            rx_frame = (uint16_t)((uint16_t)b << 1 | 0x200);
            rx_busy = true;
            rx_bit = 0;
            rx_left = div;
            ++rx_bytes;
            if (rx_count == 0) need_read = true;  // fetch more while this one shifts
            if (trace) fprintf(trace, "%llu rx 0x%02x\n", (unsigned long long)cyc, b);
        }
        bool rx_level = true;
        if (rx_busy) {
            rx_level = (rx_frame >> rx_bit) & 1;
            if (--rx_left == 0) {
                rx_left = div;
                if (++rx_bit == 10) rx_busy = false;
            }
        }
        top->rx = rx_level;
        top->clk = 0;
        top->eval();
        top->clk = 1;
        top->eval();
        bool tx = top->tx & 1;
        if (trace) {
            uint64_t l = leds_of(top, 0);
            if (l != last_leds) {
                fprintf(trace, "%llu leds 0x%llx\n", (unsigned long long)cyc,
                        (unsigned long long)l);
                last_leds = l;
            }
        }
        if (!in_reset) decode_tx(tx);
        if (rx_busy || rx_count || tx_state != TX_IDLE || !tx) last_activity = cyc;
        if (out_new && tx_state == TX_IDLE && cyc >= flush_at) need_flush = true;
        ++cyc;
    }

    void decode_tx(bool tx) {
        switch (tx_state) {
        case TX_IDLE:
            if (!tx && tx_prev) {
                tx_state = TX_FRAME;
                tx_start = cyc;
                tx_bit = 0;
                tx_byte = 0;
                tx_next = cyc + div / 2;
                if (tx_next == cyc) sample_tx(tx);
            }
            break;
        case TX_FRAME:
            if (cyc == tx_next) sample_tx(tx);
            break;
        case TX_BREAK:
            if (tx) tx_state = TX_IDLE;
            break;
        }
        tx_prev = tx;
    }

    void sample_tx(bool tx) {
        if (tx_bit == 0) {
            if (tx) {  // start bit did not last: a glitch
                ++glitches;
                tx_state = TX_IDLE;
                return;
            }
        } else if (tx_bit <= 8) {
            tx_byte |= (uint8_t)(tx << (tx_bit - 1));
        } else {
            if (tx) {
                if (out.size() - out_off < OUT_MAX) out.push_back(tx_byte);
                else ++tx_dropped;
                out_new = true;
                ++tx_bytes;
                flush_at = cyc + 2 * div;
                if (out.size() - out_off >= 4096) need_flush = true;
                if (trace) fprintf(trace, "%llu tx 0x%02x\n", (unsigned long long)tx_start,
                                   tx_byte);
                tx_state = TX_IDLE;
            } else {
                ++framing_errors;
                if (trace) fprintf(trace, "%llu ferr 0x%02x\n", (unsigned long long)tx_start,
                                   tx_byte);
                tx_state = TX_BREAK;  // wait for the line to return high
            }
            return;
        }
        ++tx_bit;
        tx_next = tx_start + (uint64_t)tx_bit * div + div / 2;
    }

    // Non-blocking I/O between slices. Returns true when a byte moved.
    bool do_io() {
        bool moved = false;
        need_flush = false;
        need_read = false;
        out_new = false;
        if (out_off < out.size()) {
            ssize_t n = write(fd, out.data() + out_off, out.size() - out_off);
            if (n > 0) {
                out_off += (size_t)n;
                moved = true;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                // EIO: nobody holds the slave open; the bytes are lost, as on a real line.
                tx_dropped += out.size() - out_off;
                out_off = out.size();
            }
            if (out_off == out.size()) {
                out.clear();
                out_off = 0;
            } else if (out_off > OUT_MAX) {
                out.erase(out.begin(), out.begin() + (ptrdiff_t)out_off);
                out_off = 0;
            }
        }
        while (rx_count < RXQ) {
            size_t tail = (rx_head + rx_count) & (RXQ - 1);
            size_t room = std::min(RXQ - rx_count, RXQ - tail);
            ssize_t n = read(fd, rxq.data() + tail, room);
            if (n <= 0) break;  // EAGAIN, EIO (no slave open), EINTR
            rx_count += (size_t)n;
            moved = true;
            if ((size_t)n < room) break;
        }
        if (moved) {
            last_activity = cyc;
            if (trace) fflush(trace);
        }
        return moved;
    }

    bool uart_quiet() const {
        return !rx_busy && rx_count == 0 && tx_state == TX_IDLE && tx_prev;
    }
};

int main(int argc, char** argv) {
    if (argc < 3) usage(argv[0]);
    int fd = (int)parse_u64(argv[1], "fd", argv[0]);
    uint64_t div = parse_u64(argv[2], "divisor", argv[0]);
    if (div < 1) {
        fprintf(stderr, "simboard: the divisor must be >= 1\n");
        return 2;
    }
    uint64_t reset_cycles = 4, max_idle_ms = 0, idle_cycles = 2000000, idle_batch = 65536,
             idle_sleep_ms = 1;
    const char* trace_path = nullptr;
    for (int i = 3; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) usage(argv[0]);
        const char* v = argv[++i];
        if (a == "--reset-cycles") reset_cycles = parse_u64(v, a.c_str(), argv[0]);
        else if (a == "--max-idle-ms") max_idle_ms = parse_u64(v, a.c_str(), argv[0]);
        else if (a == "--idle-cycles") idle_cycles = parse_u64(v, a.c_str(), argv[0]);
        else if (a == "--idle-batch") idle_batch = parse_u64(v, a.c_str(), argv[0]);
        else if (a == "--idle-sleep-ms") idle_sleep_ms = parse_u64(v, a.c_str(), argv[0]);
        else if (a == "--trace-uart") trace_path = v;
        else usage(argv[0]);
    }
    if (idle_batch < 1) idle_batch = 1;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        fprintf(stderr, "simboard: fd %d: %s\n", fd, strerror(errno));
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    const pid_t parent = getppid();

    auto ctx = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vtop>(ctx.get());

    Board b;
    b.top = top.get();
    b.fd = fd;
    b.div = div;
    if (trace_path) {
        b.trace = fopen(trace_path, "w");
        if (!b.trace) {
            fprintf(stderr, "simboard: %s: %s\n", trace_path, strerror(errno));
            return 2;
        }
    }

    top->rx = 1;
    top->rst = 1;
    b.in_reset = true;
    for (uint64_t i = 0; i < reset_cycles; ++i) b.cycle();
    top->rst = 0;
    b.in_reset = false;
    b.last_activity = b.cyc;
    printf("ready\n");
    fflush(stdout);

    const size_t root_size = sizeof(Vtop___024root);
    std::vector<unsigned char> snapshot(root_size);
    uint64_t t_start = now_ns(), last_io_ns = t_start, t_slice = t_start;
    uint64_t slice = 1024, fixed_point_sleeps = 0, throttled_batches = 0;
    const uint64_t TARGET_NS = 200000;
    uint64_t last_check_ns = t_start;

    while (!g_stop) {
        uint64_t quiet = b.cyc - b.last_activity;
        bool idle = quiet > idle_cycles && b.uart_quiet();
        uint64_t n = idle ? idle_batch : slice;
        uint64_t end = b.cyc + n;
        if (idle) {
            // Fixed point? One cycle with the same inputs left the whole state unchanged.
            memcpy(snapshot.data(), (const void*)top->rootp, root_size);
            b.cycle();
            if (memcmp(snapshot.data(), (const void*)top->rootp, root_size) == 0 &&
                b.uart_quiet()) {
                ++fixed_point_sleeps;
                if (b.trace) fflush(b.trace);
                while (!g_stop) {
                    pollfd p = {fd, (short)(POLLIN | (b.out.empty() ? 0 : POLLOUT)), 0};
                    int r = poll(&p, 1, 200);
                    if (r > 0) {
                        bool moved = b.do_io();
                        if (moved) last_io_ns = now_ns();
                        if (b.rx_count) break;  // a host byte: wake up
                        // POLLHUP (nobody holds the slave open) or a spurious wake-up: poll()
                        // would return at once again, so sleep instead.
                        if (!moved) usleep(20000);
                    }
                    if (getppid() != parent) g_stop = 1;
                    if (max_idle_ms && (now_ns() - last_io_ns) / 1000000 > max_idle_ms)
                        g_stop = 1;
                }
                b.last_activity = b.cyc;  // input arrived: full speed
                t_slice = now_ns();
                continue;
            }
        }
        while (b.cyc < end) {
            b.cycle();
            if (b.need_flush || b.need_read) break;
        }
        if (b.do_io()) last_io_ns = now_ns();
        uint64_t t = now_ns();
        if (idle) {
            ++throttled_batches;
            int ms = (int)(quiet > 64 * idle_cycles   ? 100 * idle_sleep_ms
                           : quiet > 16 * idle_cycles ? 10 * idle_sleep_ms
                                                      : idle_sleep_ms);
            pollfd p = {fd, POLLIN, 0};
            int r = poll(&p, 1, ms);
            if (r > 0) {
                if (b.do_io()) last_io_ns = now_ns();  // a host byte: start shifting now
                else usleep(ms * 1000);  // POLLHUP returns at once: sleep anyway
            }
            t = now_ns();
        } else if (b.cyc == end) {
            // A full slice: adapt its length to ~TARGET_NS of wall time.
            uint64_t dt = t - t_slice;
            if (dt < TARGET_NS / 2 && slice < 65536) slice *= 2;
            else if (dt > TARGET_NS * 2 && slice > 64) slice /= 2;
        }
        t_slice = t;
        if (ctx->gotFinish()) break;  // $finish in the design
        if (t - last_check_ns > 100000000ull) {  // every 0.1 s
            last_check_ns = t;
            if (getppid() != parent) break;
            if (max_idle_ms && (t - last_io_ns) / 1000000 > max_idle_ms) break;
        }
    }
    b.do_io();  // last bytes out
    double secs = (now_ns() - t_start) / 1e9;
    printf("simboard: cycles=%llu rx_bytes=%llu tx_bytes=%llu framing_errors=%llu "
           "tx_dropped=%llu glitches=%llu fixed_point_sleeps=%llu throttled_batches=%llu "
           "leds=%llu seconds=%.3f\n",
           (unsigned long long)b.cyc, (unsigned long long)b.rx_bytes,
           (unsigned long long)b.tx_bytes, (unsigned long long)b.framing_errors,
           (unsigned long long)b.tx_dropped, (unsigned long long)b.glitches,
           (unsigned long long)fixed_point_sleeps, (unsigned long long)throttled_batches,
           (unsigned long long)leds_of(top.get(), 0), secs);
    fflush(stdout);
    if (b.trace) fclose(b.trace);
    top->final();
    return 0;
}
