//! One page of a list, as server functions answer it. The API answers a list as a JSON array
//! with `X-Total-Count`; [`client`](super::client) folds the count and the page asked for in.

use serde::{Deserialize, Serialize};

/// One page of a list and how many items there are in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

impl<T> Page<T> {
    /// How many pages there are (at least one, so "page 1 of 1" reads right on an empty list).
    pub fn pages(&self) -> u64 {
        self.total.div_ceil(self.per_page.max(1)).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_count_up_and_never_reach_zero() {
        let page = |total| Page::<()> { items: vec![], total, page: 1, per_page: 10 };
        assert_eq!(page(0).pages(), 1);
        assert_eq!(page(10).pages(), 1);
        assert_eq!(page(11).pages(), 2);
    }
}
