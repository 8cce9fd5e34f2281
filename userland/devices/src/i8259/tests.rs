//! Host tests for the 8259A pair: the Linux and OpenBSD init sequences, EOIs, masking, cascade,
//! spurious interrupts, AEOI, rotation, poll, level mode and a random register stream.

use super::*;
use crate::testutil::Rng;
use crate::Device;

/// The device offset of `port` (ports below the base wrap to offsets no port reaches).
fn at(port: u16) -> u64 {
    u64::from(port).wrapping_sub(u64::from(BASE))
}

fn out(pic: &mut PicPair, port: u16, value: u8) {
    pic.write(at(port), &[value], 0);
}

fn inb(pic: &mut PicPair, port: u16) -> u8 {
    let mut data = [0u8];
    pic.read(at(port), &mut data, 0);
    data[0]
}

fn pulse(pic: &mut PicPair, irq: u8) {
    pic.set_irq(irq, true);
    pic.set_irq(irq, false);
}

/// arch/x86/kernel/i8259.c: probe_8259A() then init_8259A(0), then unmask IRQ 2 (cascade).
fn linux_init(pic: &mut PicPair) {
    out(pic, 0xA1, 0xFF);
    out(pic, 0x21, 0xFB);
    assert_eq!(inb(pic, 0x21), 0xFB, "probe reads the mask back");
    out(pic, 0x21, 0xFF);
    out(pic, 0x20, 0x11);
    out(pic, 0x21, 0x30);
    out(pic, 0x21, 0x04);
    out(pic, 0x21, 0x01);
    out(pic, 0xA0, 0x11);
    out(pic, 0xA1, 0x38);
    out(pic, 0xA1, 0x02);
    out(pic, 0xA1, 0x01);
    out(pic, 0x21, 0xFB);
    out(pic, 0xA1, 0xFF);
}

/// Linux's mask_and_ack_8259A for a normal (non-spurious) IRQ.
fn linux_eoi(pic: &mut PicPair, irq: u8) {
    if irq >= 8 {
        out(pic, 0xA0, 0x60 + (irq & 7));
        out(pic, 0x20, 0x62);
    } else {
        out(pic, 0x20, 0x60 + irq);
    }
}

fn unmask(pic: &mut PicPair, irq: u8) {
    let (port, bit) = if irq >= 8 { (0xA1, irq - 8) } else { (0x21, irq) };
    let mask = inb(pic, port) & !(1 << bit);
    out(pic, port, mask);
}

#[test]
fn masked_at_start() {
    let mut pic = PicPair::new();
    pulse(&mut pic, 0);
    pulse(&mut pic, 4);
    assert!(!pic.has_interrupt());
    assert_eq!(pic.imr(), 0xFFFF);
}

#[test]
fn linux_timer_and_serial() {
    let mut pic = PicPair::new();
    linux_init(&mut pic);
    unmask(&mut pic, 0);
    unmask(&mut pic, 4);
    assert!(!pic.has_interrupt());
    pulse(&mut pic, 0);
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), Some(0x30));
    assert!(!pic.has_interrupt());
    assert_eq!(pic.isr(), 1);
    // The UART raises IRQ 4 while IRQ 0 is in service: it is lower priority and waits.
    pic.set_irq(4, true);
    assert!(!pic.has_interrupt());
    linux_eoi(&mut pic, 0);
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), Some(0x34));
    // A timer tick now is higher priority and nests.
    pulse(&mut pic, 0);
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), Some(0x30));
    assert_eq!(pic.isr(), 0x11);
    linux_eoi(&mut pic, 0);
    linux_eoi(&mut pic, 4);
    assert_eq!(pic.isr(), 0);
    // The UART line stayed high: edge mode needs a new rising edge.
    assert!(!pic.has_interrupt());
    pic.set_irq(4, false);
    pic.set_irq(4, true);
    assert_eq!(pic.acknowledge(), Some(0x34));
}

#[test]
fn masking_holds_requests() {
    let mut pic = PicPair::new();
    linux_init(&mut pic);
    pulse(&mut pic, 3);
    assert!(!pic.has_interrupt());
    assert_eq!(pic.irr() & 0x08, 0x08, "latched while masked");
    unmask(&mut pic, 3);
    assert_eq!(pic.acknowledge(), Some(0x33));
    assert_eq!(pic.irr() & 0x08, 0);
}

#[test]
fn cascade_from_slave() {
    let mut pic = PicPair::new();
    linux_init(&mut pic);
    unmask(&mut pic, 8);
    unmask(&mut pic, 12);
    pulse(&mut pic, 12);
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), Some(0x3C));
    assert_eq!(pic.isr(), 0x1004, "slave IR4 and master IR2 in service");
    // A higher-priority slave request waits for the master's IR2 EOI (fully nested mode).
    pulse(&mut pic, 8);
    assert!(!pic.has_interrupt());
    out(&mut pic, 0xA0, 0x64);
    assert!(!pic.has_interrupt());
    out(&mut pic, 0x20, 0x62);
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), Some(0x38));
    linux_eoi(&mut pic, 8);
    assert_eq!(pic.isr(), 0);
    assert!(!pic.has_interrupt());
}

#[test]
fn master_priority_over_slave() {
    let mut pic = PicPair::new();
    linux_init(&mut pic);
    for irq in [1, 3, 8, 14] {
        unmask(&mut pic, irq);
        pulse(&mut pic, irq);
    }
    // IR1 > IR2 (the slave: IRQ8 > IRQ14) > IR3.
    let mut order = Vec::new();
    while pic.has_interrupt() {
        let vector = pic.acknowledge().unwrap();
        order.push(vector);
        let irq = vector - 0x30;
        linux_eoi(&mut pic, irq);
    }
    assert_eq!(order, [0x31, 0x38, 0x3E, 0x33]);
}

#[test]
fn spurious_master_irq7() {
    let mut pic = PicPair::new();
    linux_init(&mut pic);
    unmask(&mut pic, 5);
    pulse(&mut pic, 5);
    assert!(pic.has_interrupt());
    // The guest masks it before the INTA cycle: default IR7, no ISR bit.
    out(&mut pic, 0x21, 0xFF);
    assert!(!pic.has_interrupt());
    assert_eq!(pic.acknowledge(), Some(0x37));
    assert_eq!(pic.isr(), 0);
    // Linux's i8259A_irq_real: OCW3 read ISR shows IR7 not in service.
    out(&mut pic, 0x20, 0x0B);
    assert_eq!(inb(&mut pic, 0x20) & 0x80, 0);
    out(&mut pic, 0x20, 0x0A);
    assert_eq!(inb(&mut pic, 0x20), 0x20, "IRR again: IR5 still requested");
}

#[test]
fn slave_request_withdrawn_before_inta() {
    let mut pic = PicPair::new();
    linux_init(&mut pic);
    unmask(&mut pic, 10);
    pulse(&mut pic, 10);
    assert!(pic.has_interrupt());
    // The guest masks it on the slave: the slave's INT drops and so does the master's IR2
    // request; an INTA cycle now gets the master's default IR7.
    out(&mut pic, 0xA1, 0xFF);
    assert!(!pic.has_interrupt());
    assert_eq!(pic.acknowledge(), Some(0x37));
    assert_eq!(pic.isr(), 0);
    // Unmasking brings the request back (it is still in the slave's IRR).
    unmask(&mut pic, 10);
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), Some(0x3A));
    linux_eoi(&mut pic, 10);
    assert_eq!(pic.isr(), 0);
}

#[test]
fn non_specific_eoi_clears_highest() {
    let mut pic = PicPair::new();
    linux_init(&mut pic);
    out(&mut pic, 0x21, 0x00);
    pulse(&mut pic, 6);
    assert_eq!(pic.acknowledge(), Some(0x36));
    pulse(&mut pic, 1);
    assert_eq!(pic.acknowledge(), Some(0x31));
    assert_eq!(pic.isr(), 0x42);
    out(&mut pic, 0x20, 0x20);
    assert_eq!(pic.isr(), 0x40);
    out(&mut pic, 0x20, 0x20);
    assert_eq!(pic.isr(), 0);
    out(&mut pic, 0x20, 0x20); // nothing in service: harmless
}

#[test]
fn auto_eoi_mode() {
    let mut pic = PicPair::new();
    out(&mut pic, 0x20, 0x11);
    out(&mut pic, 0x21, 0x20);
    out(&mut pic, 0x21, 0x04);
    out(&mut pic, 0x21, 0x03); // uPM | AEOI
    out(&mut pic, 0x21, 0x00);
    pulse(&mut pic, 3);
    assert_eq!(pic.acknowledge(), Some(0x23));
    assert_eq!(pic.isr(), 0);
    pulse(&mut pic, 3);
    assert!(pic.has_interrupt(), "no EOI needed");
    assert_eq!(pic.acknowledge(), Some(0x23));
}

#[test]
fn rotation() {
    let mut pic = PicPair::new();
    linux_init(&mut pic);
    out(&mut pic, 0x21, 0x00);
    // Set priority: IR3 lowest, so IR4 is highest.
    out(&mut pic, 0x20, 0xC3);
    pulse(&mut pic, 0);
    pulse(&mut pic, 5);
    assert_eq!(pic.acknowledge(), Some(0x35));
    // Rotate on non-specific EOI: IR5 becomes lowest, IR6 highest; IR0 is next.
    out(&mut pic, 0x20, 0xA0);
    assert_eq!(pic.acknowledge(), Some(0x30));
    // Rotate on specific EOI of IR0: IR1 highest.
    out(&mut pic, 0x20, 0xE0);
    pulse(&mut pic, 7);
    pulse(&mut pic, 1);
    assert_eq!(pic.acknowledge(), Some(0x31));
}

#[test]
fn poll_command() {
    let mut pic = PicPair::new();
    linux_init(&mut pic);
    out(&mut pic, 0x20, 0x0C);
    assert_eq!(inb(&mut pic, 0x20), 0x00, "nothing pending");
    unmask(&mut pic, 6);
    pulse(&mut pic, 6);
    out(&mut pic, 0x20, 0x0C);
    assert_eq!(inb(&mut pic, 0x20), 0x86);
    assert_eq!(pic.isr(), 0x40, "the poll read acknowledged it");
    assert!(!pic.has_interrupt());
    assert_eq!(inb(&mut pic, 0x20), 0x00, "back to IRR");
}

#[test]
fn special_mask_mode() {
    let mut pic = PicPair::new();
    linux_init(&mut pic);
    out(&mut pic, 0x21, 0x00);
    pulse(&mut pic, 1);
    assert_eq!(pic.acknowledge(), Some(0x31));
    pulse(&mut pic, 5);
    assert!(!pic.has_interrupt(), "IR1 in service blocks IR5");
    out(&mut pic, 0x21, 0x02);
    out(&mut pic, 0x20, 0x68); // OCW3: set special mask mode
    assert!(pic.has_interrupt(), "masked in-service level no longer blocks");
    assert_eq!(pic.acknowledge(), Some(0x35));
    out(&mut pic, 0x20, 0x48); // reset special mask mode
    out(&mut pic, 0x20, 0x65);
    out(&mut pic, 0x20, 0x61);
    assert_eq!(pic.isr(), 0);
}

#[test]
fn special_fully_nested_master() {
    let mut pic = PicPair::new();
    out(&mut pic, 0x20, 0x11);
    out(&mut pic, 0x21, 0x08);
    out(&mut pic, 0x21, 0x04);
    out(&mut pic, 0x21, 0x11); // SFNM
    out(&mut pic, 0x21, 0x00);
    out(&mut pic, 0xA1, 0x00);
    pulse(&mut pic, 13);
    assert_eq!(pic.acknowledge(), Some(0x75));
    pulse(&mut pic, 9);
    assert!(pic.has_interrupt(), "a higher slave request nests through IR2");
    assert_eq!(pic.acknowledge(), Some(0x71));
}

#[test]
fn level_mode_via_elcr_and_ltim() {
    let mut pic = PicPair::new();
    linux_init(&mut pic);
    out(&mut pic, 0x4D1, 0xFF);
    assert_eq!(inb(&mut pic, 0x4D1), 0xDE, "IRQ 8 and 13 are edge only");
    out(&mut pic, 0x4D0, 0xFF);
    assert_eq!(inb(&mut pic, 0x4D0), 0xF8);
    unmask(&mut pic, 11);
    pic.set_irq(11, true);
    assert_eq!(pic.acknowledge(), Some(0x3B));
    linux_eoi(&mut pic, 11);
    assert!(pic.has_interrupt(), "still high: requested again after EOI");
    pic.set_irq(11, false);
    assert!(!pic.has_interrupt(), "level dropped: request withdrawn");
    // ICW1.LTIM makes every input level triggered.
    let mut pic = PicPair::new();
    out(&mut pic, 0x20, 0x19);
    out(&mut pic, 0x21, 0x40);
    out(&mut pic, 0x21, 0x04);
    out(&mut pic, 0x21, 0x01);
    pic.set_irq(5, true);
    assert_eq!(pic.acknowledge(), Some(0x45));
    out(&mut pic, 0x20, 0x20);
    assert!(pic.has_interrupt());
}

#[test]
fn single_mode_and_no_icw4() {
    let mut pic = PicPair::new();
    out(&mut pic, 0x20, 0x12); // single, no ICW4
    out(&mut pic, 0x21, 0x50);
    // Initialized after ICW2: the next data write is OCW1.
    out(&mut pic, 0x21, 0x00);
    assert_eq!(inb(&mut pic, 0x21), 0x00);
    // Without a cascade IR2 is an ordinary input of the master: the slave cannot be reached
    // and IRQ 2 is not a device line, so nothing happens.
    pulse(&mut pic, 2);
    assert!(!pic.has_interrupt());
    pulse(&mut pic, 4);
    assert_eq!(pic.acknowledge(), Some(0x54));
}

#[test]
fn init_sequence_blocks_and_resets() {
    let mut pic = PicPair::new();
    linux_init(&mut pic);
    unmask(&mut pic, 0);
    pulse(&mut pic, 0);
    out(&mut pic, 0x20, 0x11);
    assert!(!pic.has_interrupt(), "ICW1 cleared IRR");
    assert_eq!(pic.acknowledge(), None, "in the init sequence");
    out(&mut pic, 0x21, 0x20);
    assert_eq!(pic.acknowledge(), None);
    out(&mut pic, 0x21, 0x04);
    out(&mut pic, 0x21, 0x01);
    assert_eq!(inb(&mut pic, 0x21), 0x00, "ICW1 cleared IMR");
    pulse(&mut pic, 0);
    assert_eq!(pic.acknowledge(), Some(0x20));
}

/// OpenBSD's i386/amd64 isa/icu.s / machdep: ICW1 0x11, ICW2 0x20/0x28, ICW3 4/2, ICW4 1, then
/// OCW3 0x0A (read IRR) and special mask mode off; EOIs are specific (0x60|irq).
#[test]
fn openbsd_style_init() {
    let mut pic = PicPair::new();
    out(&mut pic, 0x20, 0x11);
    out(&mut pic, 0x21, 0x20);
    out(&mut pic, 0x21, 1 << 2);
    out(&mut pic, 0x21, 0x01);
    out(&mut pic, 0x21, 0xFF);
    out(&mut pic, 0x20, 0x68);
    out(&mut pic, 0x20, 0x0A);
    out(&mut pic, 0xA0, 0x11);
    out(&mut pic, 0xA1, 0x28);
    out(&mut pic, 0xA1, 0x02);
    out(&mut pic, 0xA1, 0x01);
    out(&mut pic, 0xA1, 0xFF);
    out(&mut pic, 0xA0, 0x68);
    out(&mut pic, 0xA0, 0x0A);
    out(&mut pic, 0x21, 0xFA); // IRQ 0 and the cascade
    out(&mut pic, 0xA1, 0xFE); // IRQ 8
    pulse(&mut pic, 8);
    assert_eq!(pic.acknowledge(), Some(0x28));
    out(&mut pic, 0xA0, 0x60);
    out(&mut pic, 0x20, 0x62);
    pulse(&mut pic, 0);
    assert_eq!(pic.acknowledge(), Some(0x20));
    out(&mut pic, 0x20, 0x60);
    assert_eq!(pic.isr(), 0);
}

#[test]
fn odd_ports_and_sizes() {
    let mut pic = PicPair::new();
    let mut data = [0u8; 2];
    pic.read(at(0x21), &mut data, 0);
    assert_eq!(data, [0xFF, 0xFF]);
    pic.read(at(0x22), &mut data[..1], 0);
    assert_eq!(data[0], 0xFF);
    pic.read(at(0x21), &mut [], 0);
    pic.write(at(0x21), &[], 0);
    pic.write(at(0x21), &[0x12, 0x34], 0);
    assert_eq!(pic.imr() & 0xFF, 0x12);
    pic.write(at(0x1234), &[0], 0);
    pic.set_irq(16, true);
    pic.set_irq(255, true);
    pic.set_irq(2, true);
    assert!(!pic.has_interrupt());
}

#[test]
fn random_register_stream() {
    let mut rng = Rng::new(0x8259);
    let ports = [0x20, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1, 0x22];
    for round in 0..20 {
        let mut pic = PicPair::new();
        if round % 2 == 0 {
            linux_init(&mut pic);
        }
        for _ in 0..20_000 {
            let port = ports[rng.below(ports.len() as u64) as usize];
            match rng.below(6) {
                0 | 1 => {
                    pic.write(at(port), &[rng.byte()], 0);
                }
                2 => {
                    let mut data = [0u8; 1];
                    pic.read(at(port), &mut data, 0);
                }
                3 => pic.set_irq(rng.below(17) as u8, rng.below(2) == 1),
                4 => {
                    if pic.has_interrupt() {
                        assert!(pic.acknowledge().is_some());
                    }
                }
                _ => {
                    let _ = pic.acknowledge();
                }
            }
        }
    }
}
