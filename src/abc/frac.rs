//! Exact rational numbers for note lengths and onsets.
//!
//! Every duration in this module is a fraction (a whole note is 1, a quarter note 1/4), so
//! triplets and dotted notes add up exactly and a bar either equals its meter or it does not.
//! All arithmetic is checked: a tune with absurd lengths yields `None`, never a panic or a wrap.

use std::cmp::Ordering;
use std::fmt;

/// A reduced fraction `num/den` with `den > 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Frac {
    num: i128,
    den: i128,
}

/// Greatest common divisor of the magnitudes (1 in the one case, both `i128::MIN` or
/// `i128::MIN` and 0, where it does not fit in an `i128`).
fn gcd(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    i128::try_from(a).unwrap_or(1)
}

impl Frac {
    /// Zero.
    pub const ZERO: Frac = Frac { num: 0, den: 1 };
    /// One (a whole note when used as a duration).
    pub const ONE: Frac = Frac { num: 1, den: 1 };

    /// `num/den`, reduced; `None` when `den` is zero or a value overflows.
    pub fn new(num: i128, den: i128) -> Option<Frac> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den);
        let (mut n, mut d) = if g == 0 { (0, 1) } else { (num / g, den / g) };
        if d < 0 {
            n = n.checked_neg()?;
            d = d.checked_neg()?;
        }
        Some(Frac { num: n, den: d })
    }

    /// The integer `n` as a fraction.
    pub const fn int(n: i128) -> Frac {
        Frac { num: n, den: 1 }
    }

    /// `1/den` for a positive `den` (a constant length such as a 32nd note); one otherwise.
    pub const fn one_over(den: i128) -> Frac {
        if den > 0 { Frac { num: 1, den } } else { Frac::ONE }
    }

    /// Numerator (reduced).
    pub fn num(self) -> i128 {
        self.num
    }

    /// Denominator (reduced, positive).
    pub fn den(self) -> i128 {
        self.den
    }

    /// `self + o`, `None` on overflow.
    pub fn checked_add(self, o: Frac) -> Option<Frac> {
        let g = gcd(self.den, o.den);
        let l = (self.den / g).checked_mul(o.den)?;
        let a = self.num.checked_mul(l / self.den)?;
        let b = o.num.checked_mul(l / o.den)?;
        Frac::new(a.checked_add(b)?, l)
    }

    /// `self - o`, `None` on overflow.
    pub fn checked_sub(self, o: Frac) -> Option<Frac> {
        self.checked_add(Frac { num: o.num.checked_neg()?, den: o.den })
    }

    /// `self * o`, `None` on overflow.
    pub fn checked_mul(self, o: Frac) -> Option<Frac> {
        let g1 = gcd(self.num, o.den).max(1);
        let g2 = gcd(o.num, self.den).max(1);
        Frac::new((self.num / g1).checked_mul(o.num / g2)?, (self.den / g2).checked_mul(o.den / g1)?)
    }

    /// `self / o`, `None` when `o` is zero or on overflow.
    pub fn checked_div(self, o: Frac) -> Option<Frac> {
        if o.num == 0 {
            return None;
        }
        self.checked_mul(Frac { num: o.den, den: 1 })?.checked_mul(Frac::new(1, o.num)?)
    }

    /// True when the value is zero.
    pub fn is_zero(self) -> bool {
        self.num == 0
    }

    /// True when the value is above zero.
    pub fn is_positive(self) -> bool {
        self.num > 0
    }

    /// Nearest `f64` (for display and tempo maths only).
    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// `self * scale` rounded to the nearest integer (halves away from zero), e.g. quarter
    /// notes to MIDI ticks. `None` on overflow.
    pub fn round_scaled(self, scale: i128) -> Option<i128> {
        let n = self.num.checked_mul(scale)?;
        let twice = n.checked_mul(2)?;
        let d2 = self.den.checked_mul(2)?;
        // floor((2n + d) / 2d) for n >= 0; mirrored for negatives.
        if twice >= 0 {
            Some(twice.checked_add(self.den)?.div_euclid(d2))
        } else {
            twice.checked_neg()?.checked_add(self.den)?.div_euclid(d2).checked_neg()
        }
    }
}

impl PartialOrd for Frac {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Frac {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.num.checked_mul(other.den), other.num.checked_mul(self.den)) {
            (Some(a), Some(b)) => a.cmp(&b),
            // Astronomically large terms: compare approximately rather than panic.
            _ => self.to_f64().partial_cmp(&other.to_f64()).unwrap_or(Ordering::Equal),
        }
    }
}

impl fmt::Display for Frac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 { write!(f, "{}", self.num) } else { write!(f, "{}/{}", self.num, self.den) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(n: i128, d: i128) -> Frac {
        Frac::new(n, d).expect("valid test fraction")
    }

    #[test]
    fn arithmetic_is_exact_and_reduced() {
        assert_eq!(f(1, 3).checked_add(f(1, 6)), Some(f(1, 2)));
        assert_eq!(f(3, 8).checked_sub(f(1, 2)), Some(f(-1, 8)));
        assert_eq!(f(2, 3).checked_mul(f(3, 4)), Some(f(1, 2)));
        assert_eq!(f(1, 8).checked_div(f(1, 2)), Some(f(1, 4)));
        assert_eq!(f(2, -4), f(-1, 2));
        assert_eq!(Frac::new(1, 0), None);
        assert_eq!(f(1, 2).checked_div(Frac::ZERO), None);
        assert!(f(1, 3) < f(3, 8));
    }

    #[test]
    fn overflow_is_none_not_panic() {
        let big = Frac::int(i128::MAX / 2);
        assert_eq!(big.checked_mul(Frac::int(4)), None);
        assert_eq!(big.checked_add(big).and_then(|x| x.checked_add(big)), None);
        assert_eq!(Frac::int(i128::MIN).checked_sub(Frac::ONE), None);
        let min = Frac::int(i128::MIN);
        assert_eq!(min.checked_mul(Frac::int(-1)), None);
        assert_eq!(min.round_scaled(2), None);
        assert_eq!(Frac::new(i128::MIN, i128::MIN), None);
    }

    #[test]
    fn rounding_to_ticks() {
        // A third of a quarter note at 1024 ticks per quarter is 341.33 ticks: rounds to 341.
        assert_eq!(f(1, 3).round_scaled(1024), Some(341));
        assert_eq!(f(2, 3).round_scaled(1024), Some(683));
        assert_eq!(f(1, 2).round_scaled(3), Some(2));
        assert_eq!(f(-1, 2).round_scaled(3), Some(-2));
    }
}
