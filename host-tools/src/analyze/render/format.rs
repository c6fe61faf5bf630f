//! Numbers as an engineer reads them: percentages, byte sizes, grouped
//! counts — and "—" for a value that was not measured.

/// `0.9765` → `97.7 %`; non-finite → `—`.
pub fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1} %", 100.0 * v)
    } else {
        "—".into()
    }
}

/// `v` written by `f` with a true minus sign: `signed(-3.0, …)` → `−3…`.
pub fn signed(v: f64, f: impl Fn(f64) -> String) -> String {
    if v < 0.0 {
        format!("−{}", f(-v))
    } else {
        f(v)
    }
}

/// [`pct`] of an optional value.
pub fn opt_pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), pct)
}

/// Bytes with a binary unit: `29760` → `29.1 KiB`.
pub fn bytes(n: u64) -> String {
    match n {
        0..=1023 => format!("{n} B"),
        1024..=1_048_575 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.2} MiB", n as f64 / 1_048_576.0),
    }
}

/// A count with thin-space thousands separators: `307648` → `307 648`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{2009}');
        }
        out.push(c);
    }
    out
}

/// A plain number with `digits` decimals; non-finite → `—`.
pub fn num(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "—".into()
    }
}

/// A shape as `1×28×28×8`.
pub fn shape(dims: &[usize]) -> String {
    dims.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("×")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        assert_eq!(pct(0.9765), "97.7 %");
        assert_eq!(pct(f64::NAN), "—");
        assert_eq!(bytes(29760), "29.1 KiB");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(signed(-2048.0, |b| bytes(b as u64)), "−2.0 KiB");
        assert_eq!(signed(0.5, |v| format!("{v:.2}")), "0.50");
        assert_eq!(count(307648), "307\u{2009}648");
        assert_eq!(count(12), "12");
        assert_eq!(shape(&[1, 28, 28, 8]), "1×28×28×8");
    }
}
