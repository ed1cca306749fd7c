//! Media basics shared by every layer: the kind of a file, and time codes from integer timestamps.

use serde::{Deserialize, Serialize};

/// What kind of media a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Video,
}

/// Formats `pts × num/den` seconds as `HH:MM:SS.mmm` with integer arithmetic.
pub fn time_code(pts: i64, time_base: (i32, i32)) -> String {
    let (num, den) = (time_base.0 as i128, time_base.1.max(1) as i128);
    let ms = (pts as i128 * num * 1000).div_euclid(den).max(0);
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_codes_use_integer_time_bases() {
        assert_eq!(time_code(0, (1, 25)), "00:00:00.000");
        assert_eq!(time_code(3601 * 90000 + 45000, (1, 90000)), "01:00:01.500");
        assert_eq!(time_code(1001, (1001, 30000)), "00:00:33.400");
    }
}
