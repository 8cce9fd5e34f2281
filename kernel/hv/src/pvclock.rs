//! The scale factors of KVM's paravirtual clock (pvclock) for a TSC frequency: what the kernel
//! writes into a guest's `pvclock_vcpu_time_info`. See: Linux arch/x86/include/asm/pvclock.h.

/// The pvclock scale for a TSC of `tsc_hz`: ns = ((tsc << shift) * mul) >> 32 (shift may be
/// negative: a right shift). See: Linux arch/x86/include/asm/pvclock.h, KVM's kvm_get_time_scale.
pub fn pvclock_scale(tsc_hz: u64) -> (u32, i8) {
    let tsc_hz = tsc_hz.max(1);
    let mut shift: i8 = 0;
    let mut base = tsc_hz;
    // Make 1e9 / base lie in [0.5, 1): then mul = (1e9 << 32) / base fits in 32 bits.
    while base > 2_000_000_000 {
        base >>= 1;
        shift -= 1;
    }
    while base <= 1_000_000_000 {
        base <<= 1;
        shift += 1;
    }
    let mul = ((1_000_000_000u128 << 32) / u128::from(base)) as u32;
    (mul, shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(tsc: u64, mul: u32, shift: i8) -> u64 {
        let t = if shift >= 0 { tsc << shift } else { tsc >> -shift };
        ((u128::from(t) * u128::from(mul)) >> 32) as u64
    }

    #[test]
    fn scales_convert_one_second() {
        for hz in [1_000_000_000u64, 2_400_000_000, 3_600_000_000, 500_000_000, 62_000_000, 10_000_000_000] {
            let (mul, shift) = pvclock_scale(hz);
            let got = ns(hz, mul, shift);
            assert!((999_999_000..=1_000_000_000).contains(&got), "{hz} Hz: {got} ns");
        }
    }
}
