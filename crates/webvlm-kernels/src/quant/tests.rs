//! Layout and round-trip tests of the CPU block formats.

use half::f16;

use super::*;
use crate::reference::Lcg;

fn random(n: usize, k: usize, seed: u64) -> Vec<f32> {
    let mut rng = Lcg::new(seed);
    (0..n * k).map(|_| rng.normal()).collect()
}

/// Per-element error bound of one block, from the stored scales (see the module docs):
/// q8 rounds to the nearest step of `d`; q4 also pays for rounding `d` and `m` to f16 when the
/// block's maximum is clamped to 15.
fn check_round_trip(scheme: QuantScheme, n: usize, k: usize, seed: u64) {
    let w = random(n, k, seed);
    let qm = QuantMatrix::quantize(&w, n, k, scheme).unwrap();
    let back = qm.dequantize();
    assert_eq!(back.len(), n * k);
    let kb = blocks_per_row(k);
    for row in 0..n {
        for col in 0..k {
            let blk = row * kb + col / BLOCK;
            let (v, r) = (w[row * k + col], back[row * k + col]);
            let bound = match qm.planes() {
                Planes::Q8 { d, .. } => 0.5 * unpack_f16(d, blk).to_f32() * (1.0 + 1e-3) + 1e-7,
                Planes::Q4 { dm, .. } => {
                    let (d, m) = (unpack_f16(dm, 2 * blk).to_f32(), unpack_f16(dm, 2 * blk + 1).to_f32());
                    0.5 * d + (15.0 * d + m.abs()) * 2f32.powi(-10) + 1e-7
                }
                Planes::F16 { .. } => v.abs() * 2f32.powi(-11) + 1e-7,
            };
            assert!((v - r).abs() <= bound, "{scheme:?} [{row},{col}]: {v} vs {r} (bound {bound})");
        }
    }
}

#[test]
fn round_trip_within_half_a_step() {
    for scheme in [QuantScheme::Q8, QuantScheme::Q4, QuantScheme::F16] {
        for (n, k) in [(1, 1), (3, 31), (5, 32), (7, 33), (4, 100), (2, 577)] {
            check_round_trip(scheme, n, k, (n * 1000 + k) as u64);
        }
    }
}

#[test]
fn plane_lengths_follow_the_layout() {
    let (n, k) = (3, 33); // kb = 2, n·kb = 6
    let w = random(n, k, 1);
    let q8 = QuantMatrix::quantize(&w, n, k, QuantScheme::Q8).unwrap();
    let Planes::Q8 { qs, d } = q8.planes() else { panic!("scheme") };
    assert_eq!((qs.len(), d.len()), (6 * 8, 3));
    let q4 = QuantMatrix::quantize(&w, n, k, QuantScheme::Q4).unwrap();
    let Planes::Q4 { qs, dm } = q4.planes() else { panic!("scheme") };
    assert_eq!((qs.len(), dm.len()), (6 * 4, 6));
    let f = QuantMatrix::quantize(&w, n, k, QuantScheme::F16).unwrap();
    let Planes::F16 { w: plane } = f.planes() else { panic!("scheme") };
    assert_eq!(plane.len(), 3 * 17);
    // An odd number of q8 blocks pads the d plane to a whole word with a zero half.
    let q8 = QuantMatrix::quantize(&random(1, 33, 2)[..33], 1, 33, QuantScheme::Q8).unwrap();
    let Planes::Q8 { d, .. } = q8.planes() else { panic!("scheme") };
    assert_eq!(d.len(), 1);
    let q8 = QuantMatrix::quantize(&random(3, 1, 2), 3, 1, QuantScheme::Q8).unwrap();
    let Planes::Q8 { d, .. } = q8.planes() else { panic!("scheme") };
    assert_eq!((d.len(), d[1] >> 16), (2, 0));
}

#[test]
fn q4_nibbles_are_lowest_first() {
    // Weights 0..16 then 0..16 again: with min 0 and max 15, d = 1, m = 0 and q = the weight.
    let w: Vec<f32> = (0..32).map(|i| (i % 16) as f32).collect();
    let qm = QuantMatrix::quantize(&w, 1, 32, QuantScheme::Q4).unwrap();
    let Planes::Q4 { qs, dm } = qm.planes() else { panic!("scheme") };
    assert_eq!(qs, &vec![0x7654_3210, 0xFEDC_BA98, 0x7654_3210, 0xFEDC_BA98]);
    assert_eq!(dm[0], pack_f16x2(f16::ONE, f16::ZERO));
    assert_eq!(qm.dequantize(), w);
}

#[test]
fn q8_bytes_are_little_endian_i8() {
    let mut w = vec![0f32; 32];
    w[..5].copy_from_slice(&[127.0, -127.0, 1.0, -1.0, 2.0]);
    let qm = QuantMatrix::quantize(&w, 1, 32, QuantScheme::Q8).unwrap();
    let Planes::Q8 { qs, d } = qm.planes() else { panic!("scheme") };
    assert_eq!(qs[0], 0xFF01_817F); // 127, -127 (0x81), 1, -1 (0xFF)
    assert_eq!(qs[1], 0x0000_0002);
    assert_eq!(d[0] & 0xFFFF, u32::from(f16::ONE.to_bits()));
    assert_eq!(qm.dequantize(), w);
}

#[test]
fn tail_block_is_zero_padded() {
    let k = 35; // kb = 2, the second block holds 3 real weights
    let w: Vec<f32> = (0..k).map(|i| i as f32 - 17.0).collect();
    let q8 = QuantMatrix::quantize(&w, 1, k, QuantScheme::Q8).unwrap();
    let Planes::Q8 { qs, .. } = q8.planes() else { panic!("scheme") };
    assert_eq!(qs[8] >> 24, 0, "column 35 is padding");
    assert!(qs[9..16].iter().all(|&word| word == 0));
    let q4 = QuantMatrix::quantize(&w, 1, k, QuantScheme::Q4).unwrap();
    let Planes::Q4 { qs, .. } = q4.planes() else { panic!("scheme") };
    assert_eq!(qs[4] >> 12, 0, "nibbles 3..8 of the tail are padding");
    assert!(qs[5..8].iter().all(|&word| word == 0));
}

#[test]
fn row_ranges_repack_the_scales() {
    let (n, k) = (5, 33);
    let w = random(n, k, 7);
    for scheme in [QuantScheme::Q8, QuantScheme::Q4, QuantScheme::F16] {
        let qm = QuantMatrix::quantize(&w, n, k, scheme).unwrap();
        let all = qm.dequantize();
        for (s, e) in [(0, 1), (1, 4), (3, 5), (0, 5)] {
            let part = qm.rows(s, e).unwrap();
            assert_eq!(part.n(), e - s);
            assert_eq!(part.dequantize(), all[s * k..e * k], "{scheme:?} rows {s}..{e}");
        }
        assert!(qm.rows(2, 2).is_err());
    }
}

#[test]
fn raw_planes_are_checked() {
    assert!(QuantMatrix::from_q8_planes(2, 32, vec![0; 16], vec![0; 1]).is_ok());
    assert!(matches!(QuantMatrix::from_q8_planes(2, 32, vec![0; 15], vec![0; 1]), Err(KernelError::PlaneLength { plane: "qs", .. })));
    assert!(matches!(QuantMatrix::from_q4_planes(2, 32, vec![0; 8], vec![0; 1]), Err(KernelError::PlaneLength { plane: "dm", .. })));
    assert!(QuantMatrix::from_f16_plane(3, 3, vec![0; 6]).is_ok());
    assert!(matches!(QuantMatrix::from_f16_plane(0, 3, vec![]), Err(KernelError::EmptyMatrix { .. })));
}

#[test]
fn unrepresentable_weights_are_refused() {
    let mut w = vec![0.5f32; 64];
    w[40] = f32::NAN;
    assert!(matches!(QuantMatrix::quantize(&w, 2, 32, QuantScheme::Q8), Err(KernelError::Unrepresentable { row: 1, block: 0, .. })));
    let big = vec![1e6f32; 32];
    assert!(QuantMatrix::quantize(&big, 1, 32, QuantScheme::F16).is_err());
    assert!(QuantMatrix::quantize(&big, 1, 32, QuantScheme::Q4).is_err(), "m = 1e6 overflows f16");
    assert!(QuantMatrix::quantize(&big, 1, 32, QuantScheme::Q8).is_ok(), "d = 1e6 / 127 fits");
    assert!(matches!(QuantMatrix::quantize(&w, 3, 32, QuantScheme::Q8), Err(KernelError::DataLength { .. })));
}

#[test]
fn sizes() {
    let qm = QuantMatrix::quantize(&random(576, 576, 3), 576, 576, QuantScheme::Q8).unwrap();
    // 18 blocks of 32 one-byte weights plus a two-byte scale: 8.5 bits per weight.
    assert_eq!(qm.byte_size(), 576 * 18 * 34);
    assert_eq!(qm.max_plane_bytes(), 576 * 18 * 32);
    assert_eq!(QuantScheme::Q4.row_bytes(576), 18 * 16);
    assert_eq!(QuantScheme::F16.row_bytes(577), 289 * 4);
}
