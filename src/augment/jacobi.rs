//! Eigenvalues and eigenvectors of a small symmetric matrix by cyclic Jacobi rotations
//! (Golub & Van Loan, *Matrix Computations*, 4th ed., §8.5.2): each rotation zeroes one
//! off-diagonal pair, and sweeps over every pair until what is left off the diagonal is
//! below rounding. For the elastic field's 28×28 covariance it takes a handful of sweeps,
//! once per run.

/// The eigen-decomposition `A = V·diag(λ)·Vᵀ` of a symmetric matrix.
#[derive(Debug, Clone)]
pub struct SymmetricEigen {
    /// The eigenvalues, largest first.
    pub values: Vec<f64>,
    /// The unit eigenvectors, `vectors[k]` belonging to `values[k]`.
    pub vectors: Vec<Vec<f64>>,
}

/// The eigen-decomposition of the symmetric `n × n` matrix `a` (row-major).
///
/// # Panics
/// If `a` does not hold `n²` values.
pub fn symmetric_eigen(mut a: Vec<f64>, n: usize) -> SymmetricEigen {
    assert_eq!(a.len(), n * n, "a symmetric matrix of {n}×{n}");
    // `v` collects the rotations: its columns end as the eigenvectors.
    let mut v: Vec<f64> = (0..n * n)
        .map(|i| if i / n == i % n { 1.0 } else { 0.0 })
        .collect();
    let scale: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..64 {
        let off: f64 = (0..n)
            .flat_map(|p| (p + 1..n).map(move |q| (p, q)))
            .map(|(p, q)| a[p * n + q] * a[p * n + q])
            .sum();
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                rotate(&mut a, &mut v, n, p, q);
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[j * n + j].total_cmp(&a[i * n + i]));
    SymmetricEigen {
        values: order.iter().map(|&k| a[k * n + k]).collect(),
        vectors: order
            .iter()
            .map(|&k| (0..n).map(|i| v[i * n + k]).collect())
            .collect(),
    }
}

/// One Jacobi rotation `A ← Jᵀ·A·J`, `V ← V·J` in the plane `(p, q)`, with
/// `J = [[c, s], [−s, c]]` chosen so that the new `a_pq` is zero (Golub & Van Loan's
/// `sym.schur2`, the smaller of the two angles).
fn rotate(a: &mut [f64], v: &mut [f64], n: usize, p: usize, q: usize) {
    let apq = a[p * n + q];
    if apq == 0.0 {
        return;
    }
    let tau = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
    let t = tau.signum() / (tau.abs() + (1.0 + tau * tau).sqrt());
    let c = 1.0 / (1.0 + t * t).sqrt();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `A·v = λ·v` for every pair and the vectors orthonormal, on a matrix with
    /// eigenvalues close together and of mixed sign. 1e-10 is far above f64 rounding
    /// over a few sweeps of a 12×12 matrix (~1e-14) and far below any wrong rotation.
    #[test]
    fn the_pairs_satisfy_their_equation_and_the_vectors_are_orthonormal() {
        let n = 12;
        let a: Vec<f64> = (0..n * n)
            .map(|i| {
                let (r, c) = (i / n, i % n);
                ((r * c) as f64 * 0.37).sin() + if r == c { 0.1 * r as f64 } else { 0.0 }
            })
            .collect();
        let eigen = symmetric_eigen(a.clone(), n);
        for (k, (lambda, u)) in eigen.values.iter().zip(&eigen.vectors).enumerate() {
            for i in 0..n {
                let av: f64 = (0..n).map(|j| a[i * n + j] * u[j]).sum();
                assert!((av - lambda * u[i]).abs() < 1e-10, "pair {k}, row {i}");
            }
            for (l, w) in eigen.vectors.iter().enumerate() {
                let dot: f64 = u.iter().zip(w).map(|(x, y)| x * y).sum();
                let want = if k == l { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-10, "vectors {k} and {l}: {dot}");
            }
        }
        assert!(
            eigen.values.windows(2).all(|w| w[0] >= w[1]),
            "largest first: {:?}",
            eigen.values
        );
    }

    #[test]
    fn a_two_by_two_has_its_known_eigenvalues() {
        // [[2, 1], [1, 2]]: 3 along (1, 1)/√2, 1 along (1, −1)/√2.
        let eigen = symmetric_eigen(vec![2.0, 1.0, 1.0, 2.0], 2);
        assert!((eigen.values[0] - 3.0).abs() < 1e-12, "{:?}", eigen.values);
        assert!((eigen.values[1] - 1.0).abs() < 1e-12, "{:?}", eigen.values);
        let u = &eigen.vectors[0];
        assert!((u[0] - u[1]).abs() < 1e-12 && (u[0].abs() - 0.5f64.sqrt()).abs() < 1e-12);
    }
}
