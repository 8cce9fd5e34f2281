//! The Intel 8254 programmable interval timer of a PC: counters 0-2 at ports 0x40-0x42, the
//! control word register at 0x43, and counter 2's gate and output through port 0x61 (system
//! control port B).
//!
//! The counters run at 1.193182 MHz on a time base the monitor passes in (`now_ns`, monotonic;
//! a time earlier than one already seen counts as no time passing). Nothing ticks by itself:
//! [`Pit::advance`] reports how many rising edges counter 0's OUT (IRQ 0) made since the last
//! call, capped at [`MAX_EDGES_PER_ADVANCE`] so a long pause cannot flood the guest, and
//! [`Pit::next_event_ns`] says when the next one is due so the monitor can arm its timer.
//!
//! Modelled: control words (counter select, lobyte/hibyte/both, modes 0-5, BCD), the counter
//! latch and read-back commands, count and status reads with their read/write flip-flops, gate
//! behaviour per mode (counter 2's gate from port 0x61 bit 0; counters 0 and 1 have theirs tied
//! high as on a PC), deferred reloads in modes 1, 2, 3 and 5, and OUT edges caused by control
//! words. Counter 1's output is not wired; port 0x61 bit 4 toggles every 18 clocks (15.1 µs) as
//! the refresh request does on a PC.
//!
//! Simplifications: a count takes effect on the tick it is written (the part loads it on the next
//! CLK); in mode 3 a new count is taken at the end of the current period (the part takes it at
//! the end of the current half-cycle) and the count read back decrements by two through both
//! halves for odd counts too; a count of 1 in modes 2 and 3 (illegal on the part) gives an edge
//! every clock. Holds no buffers.
//!
//! At creation every counter is in mode 3 with a count of 65536 (18.2 Hz), as a PC BIOS leaves
//! it; counter 2 waits for its gate.
//!
//! See: Intel 8254 Programmable Interval Timer datasheet (order 231164-005, September 1993), cited
//! as "8254"; port 0x61 from the IBM PC/AT Technical Reference, System Board I/O, port 061h.

/// Counter clock (8254 on a PC: 14.31818 MHz / 12).
pub const PIT_HZ: u64 = 1_193_182;
/// At most this many IRQ 0 edges are reported by one [`Pit::advance`].
pub const MAX_EDGES_PER_ADVANCE: u32 = 1000;

use crate::device::{ClockNs, PortDevice, WriteEffect};

/// The PIT's base port: [`crate::Device`] offsets are ports minus this (0-3 the counters and the
/// control word, 0x21 port 0x61; the platform maps the two windows).
pub const BASE: u16 = COUNTER0;
/// Counter 0 data port (counters 1 and 2 follow).
pub const COUNTER0: u16 = 0x40;
/// Control word register.
pub const CONTROL: u16 = 0x43;
/// PC system control port B (counter 2 gate and output, refresh toggle).
pub const PORT61: u16 = 0x61;

const NS_PER_SEC: u128 = 1_000_000_000;
/// Clocks per half period of the PC's DRAM refresh request (counter 1, mode 2, count 18).
const REFRESH_CLOCKS: u64 = 18;

// Read/write modes (8254 Figure 7, RW1-RW0).
const RW_LATCH: u8 = 0;
// 1 is "LSB only", the default arm below.
const RW_MSB: u8 = 2;
const RW_BOTH: u8 = 3;

/// Where a counter's counting element is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A control word was written and no count yet (or a mode 0 count is half written).
    Idle,
    /// Modes 1 and 5: loaded, waiting for a rising gate edge.
    Armed,
    /// Counting since tick `start`.
    Running { start: u64 },
    /// Counting suspended by a low gate after `elapsed` ticks (modes 0, 2, 3, 4).
    Paused { elapsed: u64 },
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    mode: u8,
    rw: u8,
    bcd: bool,
    /// The initial count in clocks: 1..=65536 (1..=10000 in BCD); a written 0 is the maximum.
    count: u64,
    state: State,
    gate: bool,
    /// A count written while counting, taken at the next trigger (modes 1, 5) or period end.
    next_count: Option<u64>,
    /// For modes 2 and 3: the tick at which `next_count` is taken.
    next_at: Option<u64>,
    null_count: bool,
    count_latch: Option<u16>,
    latch_msb_next: bool,
    status_latch: Option<u8>,
    read_msb_next: bool,
    write_msb_next: bool,
    write_lsb: u8,
}

impl Counter {
    fn new(gate: bool, now: u64) -> Self {
        let mut counter = Self {
            mode: 3,
            rw: RW_BOTH,
            bcd: false,
            count: 0x1_0000,
            state: State::Idle,
            gate,
            next_count: None,
            next_at: None,
            null_count: false,
            count_latch: None,
            latch_msb_next: false,
            status_latch: None,
            read_msb_next: false,
            write_msb_next: false,
            write_lsb: 0,
        };
        counter.start(now);
        counter
    }

    fn modulus(&self) -> u64 {
        if self.bcd {
            10_000
        } else {
            0x1_0000
        }
    }

    /// Clocks counted by tick `t`, if counting has started.
    fn elapsed(&self, t: u64) -> Option<u64> {
        match self.state {
            State::Running { start } => Some(t.saturating_sub(start)),
            State::Paused { elapsed } => Some(elapsed),
            State::Idle | State::Armed => None,
        }
    }

    /// Starts counting a freshly loaded count at `t`, or waits for the gate (8254 "Operation":
    /// modes 0, 2, 3, 4 count while GATE is high; modes 1 and 5 wait for a trigger).
    fn start(&mut self, t: u64) {
        self.null_count = false;
        self.state = match self.mode {
            1 | 5 => State::Armed,
            _ if self.gate => State::Running { start: t },
            _ => State::Paused { elapsed: 0 },
        };
    }

    /// OUT at tick `t` (8254 "Mode Definitions").
    fn out(&self, t: u64) -> bool {
        let n = self.count;
        match (self.state, self.mode) {
            (State::Idle, mode) => mode != 0,
            (State::Armed, _) => true,
            (State::Paused { .. }, 2 | 3) => true, // GATE low forces OUT high
            (_, mode) => {
                let d = self.elapsed(t).unwrap_or(0);
                match mode {
                    0 | 1 => d >= n,
                    2 => n < 2 || d % n != n - 1,
                    3 => d % n < n.div_ceil(2),
                    _ => d != n, // 4, 5: low for the one clock at terminal count
                }
            }
        }
    }

    /// Rising OUT edges in ticks `(a, b]`, with no reload in between.
    fn edges(&self, a: u64, b: u64) -> u64 {
        let State::Running { start } = self.state else { return 0 };
        let (da, db) = (a.saturating_sub(start), b.saturating_sub(start));
        let n = self.count;
        let once = |at: u64| u64::from(da < at && at <= db);
        match self.mode {
            0 | 1 => once(n),
            2 | 3 => db / n - da / n,
            _ => once(n + 1),
        }
    }

    /// The tick of the next rising OUT edge after `t`.
    fn next_edge(&self, t: u64) -> Option<u64> {
        let State::Running { start } = self.state else { return None };
        let d = t.saturating_sub(start);
        let n = self.count;
        let at = match self.mode {
            0 | 1 => n,
            2 | 3 => (d / n).checked_add(1)?.checked_mul(n)?,
            _ => n + 1,
        };
        (d < at).then(|| start.checked_add(at)).flatten()
    }

    /// Moves to tick `t`, taking a deferred mode 2/3 count whose period ended; returns the
    /// rising OUT edges in `(a, t]`.
    fn run_to(&mut self, a: u64, t: u64) -> u64 {
        let mut edges = 0;
        let mut a = a;
        if let (Some(at), Some(next), State::Running { .. }) = (self.next_at, self.next_count, self.state) {
            if at <= t {
                edges = self.edges(a, at);
                self.count = next;
                self.state = State::Running { start: at };
                self.next_count = None;
                self.next_at = None;
                self.null_count = false;
                a = at;
            }
        }
        edges.saturating_add(self.edges(a, t))
    }

    /// The counting element at tick `t`, as read (binary or BCD).
    fn value(&self, t: u64) -> u16 {
        let n = self.count;
        let m = self.modulus();
        let v = match self.elapsed(t) {
            None => n,
            Some(d) => match self.mode {
                2 => n - d % n,
                3 => n - (2 * (d % n)) % n,
                _ => (n % m + m - d % m) % m, // counts down through 0 and wraps
            },
        };
        let v = v % m;
        if self.bcd {
            to_bcd(v)
        } else {
            v as u16
        }
    }

    fn status(&self, t: u64) -> u8 {
        // 8254 Figure 11: OUTPUT, NULL COUNT, RW1-RW0, M2-M0, BCD.
        u8::from(self.out(t)) << 7 | u8::from(self.null_count) << 6 | self.rw << 4 | self.mode << 1 | u8::from(self.bcd)
    }

    /// A control word for this counter (8254 "Control Word Format"), or its counter latch
    /// command (RW = 00).
    fn control(&mut self, value: u8, t: u64) {
        let rw = (value >> 4) & 3;
        if rw == RW_LATCH {
            self.latch_count(t);
            return;
        }
        self.rw = rw;
        self.mode = match (value >> 1) & 7 {
            6 => 2,
            7 => 3,
            mode => mode,
        };
        self.bcd = value & 1 != 0;
        // "When a Control Word is written to a Counter, all Control Logic is immediately reset
        // and OUT goes to a known initial state."
        self.state = State::Idle;
        self.next_count = None;
        self.next_at = None;
        self.null_count = true;
        self.count_latch = None;
        self.status_latch = None;
        self.read_msb_next = false;
        self.write_msb_next = false;
    }

    fn latch_count(&mut self, t: u64) {
        // "If a Counter is latched and then, some time later, latched again before the count is
        // read, the second Counter Latch Command is ignored."
        if self.count_latch.is_none() {
            self.count_latch = Some(self.value(t));
            self.latch_msb_next = false;
        }
    }

    fn latch_status(&mut self, t: u64) {
        if self.status_latch.is_none() {
            self.status_latch = Some(self.status(t));
        }
    }

    /// A read of the counter's port (8254 "Read Operations").
    fn read(&mut self, t: u64) -> u8 {
        if let Some(status) = self.status_latch.take() {
            return status;
        }
        if let Some(latched) = self.count_latch {
            let [lsb, msb] = latched.to_le_bytes();
            return match self.rw {
                RW_MSB => {
                    self.count_latch = None;
                    msb
                }
                RW_BOTH if !self.latch_msb_next => {
                    self.latch_msb_next = true;
                    lsb
                }
                RW_BOTH => {
                    self.count_latch = None;
                    self.latch_msb_next = false;
                    msb
                }
                _ => {
                    self.count_latch = None;
                    lsb
                }
            };
        }
        let [lsb, msb] = self.value(t).to_le_bytes();
        match self.rw {
            RW_MSB => msb,
            RW_BOTH => {
                self.read_msb_next = !self.read_msb_next;
                if self.read_msb_next {
                    lsb
                } else {
                    msb
                }
            }
            _ => lsb,
        }
    }

    /// A write of the counter's port (8254 "Write Operations").
    fn write(&mut self, value: u8, t: u64) {
        let raw = match self.rw {
            RW_MSB => u16::from(value) << 8,
            RW_BOTH if !self.write_msb_next => {
                self.write_msb_next = true;
                self.write_lsb = value;
                if self.mode == 0 {
                    // Mode 0: "Writing the first byte disables counting. OUT is set low
                    // immediately."
                    self.state = State::Idle;
                }
                return;
            }
            RW_BOTH => {
                self.write_msb_next = false;
                u16::from_le_bytes([self.write_lsb, value])
            }
            _ => u16::from(value),
        };
        self.load(raw, t);
    }

    fn load(&mut self, raw: u16, t: u64) {
        let m = self.modulus();
        let n = if self.bcd { from_bcd(raw) } else { u64::from(raw) };
        let n = if n == 0 { m } else { n.min(m) };
        self.null_count = true;
        match (self.mode, self.state) {
            // A one-shot in progress finishes with its old count; the new one is used at the
            // next trigger (8254 modes 1 and 5).
            (1 | 5, State::Running { .. }) => self.next_count = Some(n),
            // Modes 2 and 3 take a new count at the end of the current period.
            (2 | 3, State::Running { start }) => {
                let d = t.saturating_sub(start);
                let end = (d / self.count + 1).saturating_mul(self.count);
                self.next_count = Some(n);
                self.next_at = Some(start.saturating_add(end));
            }
            // ... or when GATE next rises.
            (2 | 3, State::Paused { .. }) => self.next_count = Some(n),
            _ => {
                self.count = n;
                self.start(t);
            }
        }
    }

    /// GATE changes (8254 Figure 18, "Gate Pin Operations Summary").
    fn set_gate(&mut self, gate: bool, t: u64) {
        let rising = gate && !self.gate;
        self.gate = gate;
        match (self.mode, self.state) {
            (0 | 4, State::Running { start }) if !gate => {
                self.state = State::Paused { elapsed: t.saturating_sub(start) };
            }
            (0 | 4, State::Paused { elapsed }) if gate => {
                self.state = State::Running { start: t.saturating_sub(elapsed) };
            }
            (2 | 3, State::Running { start }) if !gate => {
                self.state = State::Paused { elapsed: t.saturating_sub(start) };
            }
            // A rising gate (re)starts modes 1, 2, 3 and 5 from the initial count.
            (1 | 2 | 3 | 5, State::Armed | State::Running { .. } | State::Paused { .. }) if rising => {
                if let Some(next) = self.next_count.take() {
                    self.count = next;
                }
                self.next_at = None;
                self.null_count = false;
                self.state = State::Running { start: t };
            }
            _ => {}
        }
    }
}

fn to_bcd(v: u64) -> u16 {
    let v = v % 10_000;
    ((v / 1000) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | (v % 10)) as u16
}

/// Decodes a BCD count; digits above 9 (not valid BCD) count at their binary weight.
fn from_bcd(raw: u16) -> u64 {
    let digit = |shift: u32| u64::from((raw >> shift) & 0xF);
    digit(12) * 1000 + digit(8) * 100 + digit(4) * 10 + digit(0)
}

/// Clock ticks since time 0 at `ns`.
fn ticks_at(ns: u64) -> u64 {
    (u128::from(ns) * u128::from(PIT_HZ) / NS_PER_SEC) as u64
}

/// The first nanosecond at which `ticks_at` reaches `tick`.
fn ns_at(tick: u64) -> u64 {
    let ns = (u128::from(tick) * NS_PER_SEC).div_ceil(u128::from(PIT_HZ));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// The three counters and port 0x61's stored bits.
#[derive(Debug, Clone)]
pub struct Pit {
    counters: [Counter; 3],
    /// The latest tick seen; time never runs backwards.
    now: u64,
    /// Counter 0 edges not yet reported by `advance`.
    edges: u64,
    /// Port 0x61 bits 0-3 as written (gate 2, speaker data, parity and channel-check enables).
    port61: u8,
}

impl Pit {
    /// A PIT in the state a PC BIOS leaves it, starting at `now_ns`.
    pub fn new(now_ns: u64) -> Self {
        let now = ticks_at(now_ns);
        Self {
            counters: [Counter::new(true, now), Counter::new(true, now), Counter::new(false, now)],
            now,
            edges: 0,
            port61: 0,
        }
    }

    /// Brings every counter to `now_ns`, counting counter 0's edges; returns the tick.
    fn sync(&mut self, now_ns: u64) -> u64 {
        let t = ticks_at(now_ns).max(self.now);
        let from = self.now;
        let [c0, c1, c2] = &mut self.counters;
        let new_edges = c0.run_to(from, t);
        c1.run_to(from, t);
        c2.run_to(from, t);
        self.edges = self.edges.saturating_add(new_edges);
        self.now = t;
        t
    }

    /// Runs the counters to `now_ns` and returns the rising edges of counter 0's OUT (IRQ 0)
    /// since the last call, at most [`MAX_EDGES_PER_ADVANCE`] (the rest are dropped).
    pub fn advance(&mut self, now_ns: u64) -> u32 {
        self.sync(now_ns);
        let edges = core::mem::take(&mut self.edges);
        u32::try_from(edges).unwrap_or(u32::MAX).min(MAX_EDGES_PER_ADVANCE)
    }

    /// When counter 0's OUT next rises (for the monitor's timer): `now_ns` itself if edges are
    /// waiting for [`Pit::advance`], `None` if counter 0 will not raise OUT without a new write.
    pub fn next_event_ns(&self, now_ns: u64) -> Option<u64> {
        if self.edges > 0 {
            return Some(now_ns);
        }
        let t = ticks_at(now_ns).max(self.now);
        let mut counter = self.counters[0];
        if counter.run_to(self.now, t) > 0 {
            return Some(now_ns);
        }
        counter.next_edge(t).map(ns_at)
    }

    /// Reads port `port` (0x40-0x42; the write-only control register and other ports read as all
    /// ones).
    fn read_counter(&mut self, port: u16, now_ns: u64) -> u8 {
        match port.checked_sub(COUNTER0) {
            Some(index @ 0..=2) => {
                let t = self.sync(now_ns);
                self.counters[usize::from(index)].read(t)
            }
            _ => 0xFF,
        }
    }

    /// Writes `value` to port `port` (0x40-0x43); other ports are ignored.
    fn write_counter(&mut self, port: u16, now_ns: u64, value: u8) {
        let Some(index) = port.checked_sub(COUNTER0).filter(|&i| i <= 3) else { return };
        let t = self.sync(now_ns);
        let out0 = self.counters[0].out(t);
        if index == 3 {
            self.control(value, t);
        } else {
            self.counters[usize::from(index)].write(value, t);
        }
        // An OUT0 edge caused by the write itself (e.g. a mode 0 count replaced by a mode 2
        // control word) reaches the PIC too.
        if !out0 && self.counters[0].out(t) {
            self.edges = self.edges.saturating_add(1);
        }
    }

    fn control(&mut self, value: u8, t: u64) {
        let select = value >> 6;
        if select == 3 {
            // Read-back command (8254 Figure 10): bit 5 = !COUNT, bit 4 = !STATUS, bits 3-1 pick
            // counters 2-0.
            for (i, counter) in self.counters.iter_mut().enumerate() {
                if value & (2 << i) == 0 {
                    continue;
                }
                if value & 0x20 == 0 {
                    counter.latch_count(t);
                }
                if value & 0x10 == 0 {
                    counter.latch_status(t);
                }
            }
            return;
        }
        self.counters[usize::from(select)].control(value, t);
    }

    /// Reads port 0x61: bits 0-3 as written, bit 4 the refresh toggle, bit 5 counter 2's OUT.
    fn read_port61(&mut self, now_ns: u64) -> u8 {
        let t = self.sync(now_ns);
        let refresh = u8::from((t / REFRESH_CLOCKS) & 1 == 1) << 4;
        let out2 = u8::from(self.counters[2].out(t)) << 5;
        self.port61 | refresh | out2
    }

    /// Writes port 0x61: bit 0 is counter 2's gate; bits 1-3 are stored; bits 4-7 are read-only.
    fn write_port61(&mut self, now_ns: u64, value: u8) {
        let t = self.sync(now_ns);
        self.port61 = value & 0x0F;
        self.counters[2].set_gate(value & 1 != 0, t);
    }
}

impl PortDevice for Pit {
    const BASE: u16 = BASE;

    /// Reads port `port` (0x40-0x43, or 0x61) into `data[0]`; further bytes of a wider access,
    /// and other ports, read as all ones.
    fn read_port(&mut self, port: u16, data: &mut [u8], now: ClockNs) {
        let Some((first, rest)) = data.split_first_mut() else { return };
        rest.fill(0xFF);
        *first = match port {
            PORT61 => self.read_port61(now),
            port => self.read_counter(port, now),
        };
    }

    /// Writes `data[0]` to port `port` (0x40-0x43, or 0x61); further bytes and other ports are
    /// ignored.
    fn write_port(&mut self, port: u16, data: &[u8], now: ClockNs) -> WriteEffect {
        match (port, data.first()) {
            (PORT61, Some(&value)) => self.write_port61(now, value),
            (port, Some(&value)) => self.write_counter(port, now, value),
            (_, None) => {}
        }
        WriteEffect::None
    }
}

#[cfg(test)]
mod tests;
