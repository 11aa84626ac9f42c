//! The scalar type of the math: `f32` for training, `f64` for gradient checks and fixtures.
//!
//! Everything in the engine is generic over [`Real`], so the gradient check runs the very code
//! path that trains, only in double precision. This trait is plain arithmetic; what the fast CPU
//! engine adds per type (its GEMM and the SIMD cell) is [`crate::cpu::kernels::CpuReal`].

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point scalar the engine can compute in.
pub trait Real:
    Copy
    + Default
    + Send
    + Sync
    + Debug
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + Sum
    + 'static
{
    /// 0
    const ZERO: Self;
    /// 1
    const ONE: Self;
    /// Name for messages ("f32").
    const NAME: &'static str;
    /// Conversion from f64 (rounding for f32).
    fn from_f64(x: f64) -> Self;
    /// Conversion to f64 (exact).
    fn to_f64(self) -> f64;
    /// e^x
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Not NaN and not infinite.
    fn is_finite(self) -> bool;
}

/// `f32` and `f64` implement the trait the same way: the std functions of that precision.
macro_rules! real_common {
    ($t:ident, $name:literal) => {
        const ZERO: Self = 0.0;
        const ONE: Self = 1.0;
        const NAME: &'static str = $name;
        fn from_f64(x: f64) -> Self {
            x as $t
        }
        fn to_f64(self) -> f64 {
            self as f64
        }
        fn exp(self) -> Self {
            $t::exp(self)
        }
        fn ln(self) -> Self {
            $t::ln(self)
        }
        fn tanh(self) -> Self {
            $t::tanh(self)
        }
        fn sqrt(self) -> Self {
            $t::sqrt(self)
        }
        fn is_finite(self) -> bool {
            $t::is_finite(self)
        }
    };
}

impl Real for f64 {
    real_common!(f64, "f64");
}

impl Real for f32 {
    real_common!(f32, "f32");
}
