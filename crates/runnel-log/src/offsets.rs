//! Offset newtypes. The log juggles several offsets that are all `i64` on the wire; giving each
//! its own type stops a high watermark from being passed where a log end offset is expected.

use std::fmt;

/// Offset of one record in a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub i64);

impl Offset {
    pub fn value(self) -> i64 {
        self.0
    }

    /// The offset right after this one.
    pub fn next(self) -> Offset {
        Offset(self.0 + 1)
    }
}

/// Epoch of the partition leader that appended a batch (`partitionLeaderEpoch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaderEpoch(pub i32);

/// First offset still present in the log (retention moves it forward).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogStartOffset(pub Offset);

/// Offset the next appended record will get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogEndOffset(pub Offset);

/// Offsets below this are replicated to the whole ISR and visible to consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HighWatermark(pub Offset);

/// Offsets below this belong to no open transaction (read_committed upper bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LastStableOffset(pub Offset);

macro_rules! display_as_number {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    )*};
}
display_as_number!(
    Offset,
    LeaderEpoch,
    LogStartOffset,
    LogEndOffset,
    HighWatermark,
    LastStableOffset
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_bare_number() {
        assert_eq!(Offset(42).to_string(), "42");
        assert_eq!(LogEndOffset(Offset(7)).to_string(), "7");
        assert_eq!(LeaderEpoch(-1).to_string(), "-1");
    }

    #[test]
    fn next_and_ordering() {
        assert_eq!(Offset(1).next(), Offset(2));
        assert!(HighWatermark(Offset(3)) < HighWatermark(Offset(4)));
    }
}
