//! Medians and ratios of interleaved runs.

use std::time::Duration;

use crate::measure::Sample;

/// Runs of a measured command (A) and of what it is compared with (B), interleaved A B A B ...
/// so that a drift of the machine affects both alike.
#[derive(Debug, Clone, Default)]
pub struct Pairs {
    /// The measured command's runs.
    pub tool: Vec<Sample>,
    /// The runs it is compared with, each taken just after the tool's of the same index.
    pub floor: Vec<Sample>,
}

impl Pairs {
    /// Runs `n` pairs: `a`, then `b`, `n` times.
    pub fn run(
        n: usize,
        mut a: impl FnMut() -> Result<Sample, String>,
        mut b: impl FnMut() -> Result<Sample, String>,
    ) -> Result<Self, String> {
        let mut pairs = Self::default();
        for _ in 0..n {
            pairs.tool.push(a()?);
            pairs.floor.push(b()?);
        }
        Ok(pairs)
    }

    /// The pairwise ratios `tool[i] / floor[i]`, in run order.
    pub fn ratios(&self) -> Vec<f64> {
        self.tool
            .iter()
            .zip(&self.floor)
            .map(|(a, b)| a.wall.as_secs_f64() / b.wall.as_secs_f64().max(f64::MIN_POSITIVE))
            .collect()
    }

    /// The median of the pairwise ratios: the ratio the targets are judged by (each pair was
    /// taken at nearly the same moment).
    pub fn ratio(&self) -> f64 {
        median(self.ratios())
    }

    /// The smallest and the largest pairwise ratio.
    pub fn range(&self) -> (f64, f64) {
        let ratios = self.ratios();
        let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let max = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    }

    /// The ratio of the two medians, shown beside [`Pairs::ratio`].
    pub fn ratio_of_medians(&self) -> f64 {
        median_wall(&self.tool).as_secs_f64() / median_wall(&self.floor).as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// The median wall time of `samples` (the mean of the two middle ones for an even count).
pub fn median_wall(samples: &[Sample]) -> Duration {
    Duration::from_secs_f64(median(samples.iter().map(|s| s.wall.as_secs_f64()).collect()))
}

/// The largest peak memory of `samples`, in KiB.
pub fn max_rss_kb(samples: &[Sample]) -> u64 {
    samples.iter().map(|s| s.max_rss_kb).max().unwrap_or(0)
}

/// The median of `values` (the mean of the two middle ones for an even count; 0 when empty).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Sample {
        Sample { wall: Duration::from_millis(n), max_rss_kb: n }
    }

    #[test]
    fn the_median_of_an_odd_and_an_even_count() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }

    #[test]
    fn ratios_are_taken_pair_by_pair() {
        // The floor drifts up with the tool: the pairwise ratios stay 2.
        let pairs = Pairs { tool: vec![ms(20), ms(40), ms(80)], floor: vec![ms(10), ms(20), ms(40)] };
        assert_eq!(pairs.ratio(), 2.0);
        assert_eq!(pairs.ratio_of_medians(), 2.0);
        assert_eq!(pairs.range(), (2.0, 2.0));
        assert_eq!(max_rss_kb(&pairs.tool), 80);
    }
}
