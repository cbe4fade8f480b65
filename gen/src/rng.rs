//! Seeded randomness helpers: identifiers in the API's formats and a few simple distributions.
//! Everything draws from a caller-supplied `fastrand::Rng`, so output depends only on the seed.

use fastrand::Rng;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `n` random base62 characters.
pub fn push_base62(s: &mut String, rng: &mut Rng, n: usize) {
    for _ in 0..n {
        s.push(BASE62[rng.usize(..62)] as char);
    }
}

/// `prefix` followed by `n` random base62 characters, e.g. `user-` + 24.
pub fn id(rng: &mut Rng, prefix: &str, n: usize) -> String {
    let mut s = String::with_capacity(prefix.len() + n);
    s.push_str(prefix);
    push_base62(&mut s, rng, n);
    s
}

/// `n` random lower-case hex digits.
pub fn hex(rng: &mut Rng, n: usize) -> String {
    (0..n).map(|_| HEX[rng.usize(..16)] as char).collect()
}

/// A random version 4 UUID in its usual text form.
pub fn uuid(rng: &mut Rng) -> String {
    let h = hex(rng, 32);
    let variant = ['8', '9', 'a', 'b'][rng.usize(..4)];
    format!(
        "{}-{}-4{}-{}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        variant,
        &h[17..20],
        &h[20..32]
    )
}

/// True with probability `p`.
pub fn chance(rng: &mut Rng, p: f64) -> bool {
    rng.f64() < p
}

/// A Poisson-distributed count with mean `lambda` (fine for small means).
pub fn poisson(rng: &mut Rng, lambda: f64) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda > 30.0 {
        // Normal approximation keeps large means cheap.
        let v = lambda + normal(rng) * lambda.sqrt();
        return v.round().max(0.0) as u32;
    }
    let limit = (-lambda).exp();
    let mut n = 0;
    let mut p = rng.f64();
    while p > limit {
        n += 1;
        p *= rng.f64();
    }
    n
}

/// A standard normal draw (Box-Muller).
pub fn normal(rng: &mut Rng) -> f64 {
    let u1 = rng.f64().max(1e-12);
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A uniformly chosen element.
pub fn pick<'a, T>(rng: &mut Rng, xs: &'a [T]) -> &'a T {
    &xs[rng.usize(..xs.len())]
}

/// An index chosen with probability proportional to its weight.
pub fn weighted(rng: &mut Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.f64() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// A uniform integer in `lo..=hi`.
pub fn between(rng: &mut Rng, lo: i64, hi: i64) -> i64 {
    rng.i64(lo..=hi)
}

/// Mixes a seed with a stream number so independent streams never share a sequence.
pub fn stream(seed: u64, n: u64) -> Rng {
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    Rng::with_seed(z ^ (z >> 31))
}
