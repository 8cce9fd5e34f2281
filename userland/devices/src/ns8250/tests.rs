//! Host tests for the 16550A model: the Linux 8250 probe, THRE interrupt rules, FIFOs, DLAB,
//! loopback, output bounds and a random register stream.

use super::*;
use crate::testutil::Rng;

fn rd(uart: &mut Uart, offset: u64) -> u8 {
    let mut data = [0u8];
    uart.read(offset, &mut data, 0);
    data[0]
}

fn wr(uart: &mut Uart, offset: u64, value: u8) {
    uart.write(offset, &[value], 0);
}

fn output(uart: &mut Uart) -> Vec<u8> {
    let mut out = Vec::new();
    uart.take_output(&mut out);
    out
}

#[test]
fn reset_state() {
    let mut uart = Uart::new();
    assert_eq!(rd(&mut uart, 1), 0, "IER");
    assert_eq!(rd(&mut uart, 2), 0x01, "IIR: nothing pending, FIFOs off");
    assert_eq!(rd(&mut uart, 3), 0, "LCR");
    assert_eq!(rd(&mut uart, 4), 0, "MCR");
    assert_eq!(rd(&mut uart, 5), 0x60, "LSR: THRE | TEMT");
    assert_eq!(rd(&mut uart, 6) & 0x0F, 0, "MSR deltas");
    assert!(!uart.irq_level());
}

/// The register probe of Linux's 8250_port.c autoconfig(): IER scratch test, loopback MSR test,
/// FIFO detection through IIR bits 6-7, no EFR, no 64-byte FIFO, no UUE bit.
#[test]
fn linux_autoconfig_sees_a_16550a() {
    let mut uart = Uart::new();
    // IER test.
    wr(&mut uart, 1, 0);
    assert_eq!(rd(&mut uart, 1) & 0x0F, 0);
    wr(&mut uart, 1, 0x0F);
    assert_eq!(rd(&mut uart, 1) & 0x0F, 0x0F);
    wr(&mut uart, 1, 0);
    // Loopback with RTS | OUT2: MSR must read CTS | DCD (0x90).
    wr(&mut uart, 4, 0x10 | 0x0A);
    assert_eq!(rd(&mut uart, 6) & 0xF0, 0x90);
    wr(&mut uart, 4, 0);
    // FIFO detection.
    wr(&mut uart, 3, 0xBF);
    wr(&mut uart, 2, 0); // EFR on a 16650; FCR (FIFOs off) here
    wr(&mut uart, 3, 0);
    wr(&mut uart, 2, 0x01);
    assert_eq!(rd(&mut uart, 2) >> 6, 3, "16550A FIFOs");
    // autoconfig_16550a: the EFR probe under DLAB reads IIR, which is not 0.
    wr(&mut uart, 3, 0x80);
    assert_ne!(rd(&mut uart, 2), 0);
    wr(&mut uart, 3, 0xBF);
    assert_ne!(rd(&mut uart, 2), 0);
    // 16750 probe: IIR bit 5 stays clear with FCR bit 5.
    wr(&mut uart, 3, 0);
    wr(&mut uart, 2, 0x21);
    assert_eq!(rd(&mut uart, 2) >> 5, 6);
    wr(&mut uart, 3, 0x80);
    wr(&mut uart, 2, 0x21);
    assert_eq!(rd(&mut uart, 2) >> 5, 6);
    wr(&mut uart, 3, 0);
    // XScale UUE probe: IER bit 6 does not stick.
    wr(&mut uart, 1, 0x40);
    assert_eq!(rd(&mut uart, 1), 0);
}

#[test]
fn dlab_selects_divisor_latch() {
    let mut uart = Uart::new();
    wr(&mut uart, 1, 0x05);
    wr(&mut uart, 3, 0x83); // DLAB, 8N1
    wr(&mut uart, 0, 0x01);
    wr(&mut uart, 1, 0x00);
    assert_eq!(rd(&mut uart, 0), 0x01);
    assert_eq!(rd(&mut uart, 1), 0x00);
    assert_eq!(uart.divisor(), 1);
    assert!(output(&mut uart).is_empty(), "a DLL write is not a THR write");
    wr(&mut uart, 3, 0x03);
    assert_eq!(rd(&mut uart, 1), 0x05, "IER kept");
    wr(&mut uart, 0, b'A');
    assert_eq!(output(&mut uart), b"A");
    assert_eq!(uart.divisor(), 1);
}

#[test]
fn transmit_and_bounded_output() {
    let mut uart = Uart::new();
    wr(&mut uart, 3, 0x03);
    for &b in b"hello" {
        assert_ne!(rd(&mut uart, 5) & 0x20, 0, "THRE before each byte");
        wr(&mut uart, 0, b);
    }
    assert_eq!(uart.output_len(), 5);
    assert_eq!(output(&mut uart), b"hello");
    assert_eq!(uart.output_len(), 0);
    for i in 0..OUTPUT_CAP + 10 {
        wr(&mut uart, 0, i as u8);
    }
    assert_eq!(uart.output_len(), OUTPUT_CAP);
    assert_eq!(uart.dropped(), 10);
    assert_eq!(output(&mut uart).len(), OUTPUT_CAP);
    wr(&mut uart, 0, b'x');
    assert_eq!(output(&mut uart), b"x");
}

#[test]
fn word_length_is_not_applied() {
    let mut uart = Uart::new();
    wr(&mut uart, 3, 0x00); // 5 bits: still eight bits through, as for an unprogrammed UART
    wr(&mut uart, 0, 0xFF);
    assert_eq!(output(&mut uart), [0xFF]);
    assert!(uart.receive(0xC1));
    assert_eq!(rd(&mut uart, 0), 0xC1);
}

/// THRE interrupt: raised when ETBEI is enabled with THR empty and after each THR write; reset
/// by an IIR read reporting it; gated onto the bus by OUT2.
#[test]
fn thre_interrupt() {
    let mut uart = Uart::new();
    wr(&mut uart, 4, 0x08); // OUT2
    assert!(!uart.irq_level());
    wr(&mut uart, 1, 0x02); // ETBEI
    assert!(uart.irq_level());
    assert_eq!(rd(&mut uart, 2), 0x02);
    assert!(!uart.irq_level(), "reading IIR reset it");
    assert_eq!(rd(&mut uart, 2), 0x01);
    // Writing IER with ETBEI still set does not raise it again.
    wr(&mut uart, 1, 0x02);
    assert!(!uart.irq_level());
    // 0 -> 1 does (Linux's UART_BUG_THRE probe).
    wr(&mut uart, 1, 0x00);
    wr(&mut uart, 1, 0x02);
    assert_eq!(rd(&mut uart, 2), 0x02);
    // A THR write empties at once and raises it again.
    wr(&mut uart, 0, b'a');
    assert!(uart.irq_level());
    // Disabling ETBEI drops it.
    wr(&mut uart, 1, 0x00);
    assert!(!uart.irq_level());
    assert_eq!(rd(&mut uart, 2), 0x01);
    // OUT2 gates the line but not IIR.
    wr(&mut uart, 1, 0x02);
    wr(&mut uart, 4, 0x00);
    assert!(!uart.irq_level());
    wr(&mut uart, 4, 0x08);
    assert!(uart.irq_level());
    assert_eq!(rd(&mut uart, 2), 0x02);
}

/// Linux's serial8250_do_startup TX-enable test: IER = THRI, then LSR shows TEMT and IIR shows a
/// pending interrupt (otherwise it sets UART_BUG_TXEN).
#[test]
fn linux_txen_probe() {
    let mut uart = Uart::new();
    wr(&mut uart, 2, 0x07);
    wr(&mut uart, 3, 0x03);
    wr(&mut uart, 4, 0x0B);
    wr(&mut uart, 1, 0x02);
    let lsr = rd(&mut uart, 5);
    let iir = rd(&mut uart, 2);
    wr(&mut uart, 1, 0);
    assert_ne!(lsr & 0x40, 0);
    assert_eq!(iir & 0x01, 0);
    assert_eq!(iir, 0xC2);
}

#[test]
fn receive_without_fifo() {
    let mut uart = Uart::new();
    assert!(uart.can_receive());
    assert!(uart.receive(b'x'));
    assert!(!uart.can_receive());
    assert!(!uart.receive(b'y'), "one holding byte");
    assert_eq!(rd(&mut uart, 5) & 0x01, 0x01);
    wr(&mut uart, 1, 0x01);
    wr(&mut uart, 4, 0x08);
    assert!(uart.irq_level());
    assert_eq!(rd(&mut uart, 2), 0x04);
    assert_eq!(rd(&mut uart, 0), b'x');
    assert_eq!(rd(&mut uart, 5) & 0x01, 0);
    assert!(!uart.irq_level());
    assert_eq!(rd(&mut uart, 0), 0, "empty RBR");
    assert!(uart.can_receive());
}

#[test]
fn receive_fifo_full_and_trigger() {
    let mut uart = Uart::new();
    wr(&mut uart, 2, 0x81); // FIFO, trigger 8
    wr(&mut uart, 1, 0x01);
    wr(&mut uart, 4, 0x08);
    for i in 0..RX_FIFO_LEN {
        assert!(uart.receive(i as u8));
        let iir = rd(&mut uart, 2);
        if i + 1 >= 8 {
            assert_eq!(iir, 0xC4, "at or above the trigger level");
        } else {
            assert_eq!(iir, 0xCC, "below it: character timeout");
        }
    }
    assert!(!uart.can_receive());
    assert!(!uart.receive(0xEE), "FIFO full");
    assert_eq!(rd(&mut uart, 5) & 0x02, 0, "no overrun: the byte was refused");
    for i in 0..RX_FIFO_LEN {
        assert_eq!(rd(&mut uart, 0), i as u8);
    }
    assert_eq!(rd(&mut uart, 2), 0xC1);
    assert!(!uart.irq_level());
}

#[test]
fn fcr_clears_and_needs_enable_bit() {
    let mut uart = Uart::new();
    wr(&mut uart, 2, 0x01);
    uart.receive(1);
    uart.receive(2);
    wr(&mut uart, 2, 0x03); // clear RX
    assert_eq!(rd(&mut uart, 5) & 1, 0);
    uart.receive(3);
    wr(&mut uart, 2, 0xC2); // FCR0 = 0: disables and clears the FIFOs
    assert_eq!(rd(&mut uart, 5) & 1, 0);
    assert_eq!(rd(&mut uart, 2) & 0xC0, 0);
    // Trigger bits are ignored without FCR0.
    wr(&mut uart, 2, 0xC1);
    wr(&mut uart, 1, 0x01);
    for i in 0..13 {
        uart.receive(i);
    }
    assert_eq!(rd(&mut uart, 2), 0xCC, "13 < 14");
    uart.receive(13);
    assert_eq!(rd(&mut uart, 2), 0xC4);
}

#[test]
fn interrupt_priority() {
    let mut uart = Uart::new();
    wr(&mut uart, 2, 0x01);
    wr(&mut uart, 4, 0x18); // loopback | OUT2
    wr(&mut uart, 1, 0x0F);
    // Loopback: overrun the FIFO to get a line status interrupt.
    for i in 0..=RX_FIFO_LEN {
        wr(&mut uart, 0, i as u8);
    }
    assert!(output(&mut uart).is_empty(), "loopback does not transmit");
    assert!(!uart.irq_level(), "loopback gates the line");
    assert_eq!(rd(&mut uart, 2), 0xC6, "line status first");
    assert_eq!(rd(&mut uart, 5) & 0x03, 0x03, "OE | DR");
    assert_eq!(rd(&mut uart, 5) & 0x02, 0, "LSR read cleared OE");
    assert_eq!(rd(&mut uart, 2), 0xC4, "then data");
    for _ in 0..RX_FIFO_LEN {
        rd(&mut uart, 0);
    }
    assert_eq!(rd(&mut uart, 2), 0xC2, "then THRE");
    assert_eq!(rd(&mut uart, 2), 0xC0, "then modem status (MCR changes in loopback)");
    assert_ne!(rd(&mut uart, 6) & 0x0F, 0);
    assert_eq!(rd(&mut uart, 2), 0xC1);
}

#[test]
fn loopback_echoes_and_disconnects_input() {
    let mut uart = Uart::new();
    wr(&mut uart, 4, 0x10);
    assert_eq!(rd(&mut uart, 6), 0x0B, "entering loopback drops CTS, DSR, DCD");
    assert!(!uart.can_receive());
    assert!(!uart.receive(b'z'));
    wr(&mut uart, 0, b'q');
    assert_eq!(rd(&mut uart, 5) & 1, 1);
    assert_eq!(rd(&mut uart, 0), b'q');
    assert!(output(&mut uart).is_empty());
    // Modem lines follow MCR; deltas are latched until MSR is read.
    wr(&mut uart, 4, 0x10 | 0x01 | 0x04); // DTR, OUT1
    assert_eq!(rd(&mut uart, 6), 0x60 | 0x02);
    wr(&mut uart, 4, 0x10 | 0x01); // OUT1 off: RI trailing edge
    assert_eq!(rd(&mut uart, 6), 0x20 | 0x04);
    wr(&mut uart, 4, 0x00);
    assert!(uart.can_receive());
    assert_eq!(rd(&mut uart, 6) & 0xF0, 0xB0, "peer lines outside loopback");
}

#[test]
fn scratch_and_odd_accesses() {
    let mut uart = Uart::new();
    wr(&mut uart, 7, 0xA5);
    assert_eq!(rd(&mut uart, 7), 0xA5);
    let mut wide = [0u8; 4];
    uart.read(7, &mut wide, 0);
    assert_eq!(wide, [0xA5, 0xFF, 0xFF, 0xFF]);
    uart.write(7, &[0x5A, 1, 2, 3], 0);
    assert_eq!(rd(&mut uart, 7), 0x5A);
    uart.write(7, &[], 0);
    uart.read(7, &mut [], 0);
    assert_eq!(rd(&mut uart, 8), 0xFF);
    assert_eq!(rd(&mut uart, u64::MAX), 0xFF);
    wr(&mut uart, 0x1_0000_0000, 1);
    wr(&mut uart, 5, 0);
    wr(&mut uart, 6, 0xFF);
    assert_eq!(rd(&mut uart, 5), 0x60);
}

#[test]
fn random_register_stream() {
    let mut rng = Rng::new(0x8250);
    let mut uart = Uart::new();
    let mut out = Vec::new();
    for _ in 0..200_000 {
        let offset = rng.below(10);
        let mut data = [0u8; 8];
        let len = [0, 1, 1, 1, 2, 4, 8][rng.below(7) as usize];
        match rng.below(8) {
            0..=2 => uart.read(offset, &mut data[..len], 0),
            3..=5 => {
                data[0] = rng.byte();
                uart.write(offset, &data[..len], 0);
            }
            6 => {
                let _ = uart.receive(rng.byte());
            }
            _ => {
                if rng.below(100) == 0 {
                    out.clear();
                    uart.take_output(&mut out);
                }
            }
        }
        assert!(uart.output_len() <= OUTPUT_CAP);
        assert!(uart.rx_len <= RX_FIFO_LEN);
        let _ = uart.irq_level();
        let _ = uart.can_receive();
    }
}
