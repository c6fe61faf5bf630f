//! Eigen-decomposition of a small symmetric matrix (cyclic Jacobi).
//!
//! Why hand-written: the matrices are layer Gram matrices of at most a few
//! hundred rows, Jacobi is exact to rounding and short, and a LAPACK
//! binding would be a system dependency for one call.

/// Eigenvalues (ascending) and eigenvectors (`vectors[k]` belongs to
/// `values[k]`, unit length) of the symmetric `n × n` row-major `a`.
pub fn symmetric(a: &[f64], n: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..64 {
        let off: f64 = (0..n)
            .flat_map(|p| (0..n).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| a[p * n + q] * a[p * n + q])
            .sum();
        if off <= 1e-24 * total || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                // The rotation that zeroes a[p][q] (Numerical Recipes §11.1).
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (kp, kq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * kp - s * kq;
                    a[k * n + q] = s * kp + c * kq;
                }
                for k in 0..n {
                    let (pk, qk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * pk - s * qk;
                    a[q * n + k] = s * pk + c * qk;
                }
                for k in 0..n {
                    let (kp, kq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * kp - s * kq;
                    v[k * n + q] = s * kp + c * kq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[i * n + i].total_cmp(&a[j * n + j]));
    let values = order.iter().map(|&i| a[i * n + i]).collect();
    let vectors = order
        .iter()
        .map(|&i| (0..n).map(|k| v[k * n + i]).collect())
        .collect();
    (values, vectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_two_by_two_and_a_reconstruction() {
        // [[2, 1], [1, 2]]: eigenvalues 1 and 3, vectors (1, −1)/√2, (1, 1)/√2.
        let (values, vectors) = symmetric(&[2.0, 1.0, 1.0, 2.0], 2);
        assert!((values[0] - 1.0).abs() < 1e-12 && (values[1] - 3.0).abs() < 1e-12);
        let r = std::f64::consts::FRAC_1_SQRT_2;
        assert!(
            (vectors[1][0].abs() - r).abs() < 1e-12
                && (vectors[1][0] - vectors[1][1]).abs() < 1e-12
        );
        assert!((vectors[0][0] + vectors[0][1]).abs() < 1e-12);
        // A 4 × 4 matrix is rebuilt from its decomposition: Σ λ v vᵀ.
        let a = [
            4.0, 1.0, -2.0, 0.5, 1.0, 3.0, 0.0, 1.0, -2.0, 0.0, 5.0, 2.0, 0.5, 1.0, 2.0, 1.0,
        ];
        let (values, vectors) = symmetric(&a, 4);
        for i in 0..4 {
            for j in 0..4 {
                let rebuilt: f64 = (0..4)
                    .map(|k| values[k] * vectors[k][i] * vectors[k][j])
                    .sum();
                assert!((rebuilt - a[i * 4 + j]).abs() < 1e-9, "({i}, {j})");
            }
        }
    }
}
