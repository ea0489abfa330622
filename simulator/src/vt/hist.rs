//! The latency histogram.

use std::time::Duration;

/// Latency histogram with 64 buckets per power of two, of nanoseconds: any
/// range, within 1.6%.
#[derive(Clone, Debug)]
pub struct LogHist {
    counts: Vec<u64>,
}

impl Default for LogHist {
    fn default() -> Self {
        LogHist {
            counts: vec![0; 64 * 60],
        }
    }
}

impl LogHist {
    pub(crate) fn index(ns: u64) -> usize {
        if ns < 64 {
            return ns as usize;
        }
        let e = 63 - ns.leading_zeros() as usize - 6; // ns >> e in 64..128
        (e + 1) * 64 + ((ns >> e) as usize - 64)
    }

    /// The smallest value of bucket `i` and the next bucket's.
    pub(crate) fn bounds(i: usize) -> (u64, u64) {
        if i < 64 {
            return (i as u64, i as u64 + 1);
        }
        let e = i / 64 - 1;
        let m = (i % 64 + 64) as u64;
        (m << e, (m + 1) << e)
    }

    pub fn record(&mut self, ns: u64) {
        self.counts[Self::index(ns)] += 1;
    }

    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The value under which `q` of the recorded ones fall (bucket midpoint).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let want = ((total as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                let (lo, hi) = Self::bounds(i);
                return Some(Duration::from_nanos((lo + hi) / 2));
            }
        }
        None
    }
}
