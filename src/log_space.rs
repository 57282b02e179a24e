//! Log-space arithmetic shared by the CTC kernel and the CTC decoders.

/// `log(e^a + e^b)`, exact when either is `-inf`.
pub(crate) fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}
