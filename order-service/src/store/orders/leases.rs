//! Recovery leases: claiming an order atomically so that one replica at a time settles it.

use std::time::Duration;

use bson::{DateTime, Document, doc};
use mongodb::options::ReturnDocument;

use super::{Order, Orders};
use crate::domain::OrderStatus;

impl Orders {
    /// Claims one order left `pending` for longer than `grace` for `lease` (atomically: two
    /// replicas never claim the same order at once).
    #[tracing::instrument(skip_all)]
    pub async fn claim_stale_pending(
        &self,
        grace: Duration,
        lease: Duration,
        owner: &str,
    ) -> mongodb::error::Result<Option<Order>> {
        let older_than = ago(grace);
        self.claim(
            doc! {"status": OrderStatus::Pending.as_str(), "created_at": {"$lt": older_than}},
            lease,
            owner,
        )
        .await
    }

    /// Claims one failed or cancelled order whose stock release is still outstanding and has not
    /// changed for `quiet` (so a request releasing it right now is left alone).
    #[tracing::instrument(skip_all)]
    pub async fn claim_release(
        &self,
        quiet: Duration,
        lease: Duration,
        owner: &str,
    ) -> mongodb::error::Result<Option<Order>> {
        self.claim(
            doc! {"release_pending": true, "updated_at": {"$lt": ago(quiet)}},
            lease,
            owner,
        )
        .await
    }

    async fn claim(
        &self,
        mut filter: Document,
        lease: Duration,
        owner: &str,
    ) -> mongodb::error::Result<Option<Order>> {
        let now = DateTime::now();
        filter.insert("lease_until", doc! {"$lt": now});
        let until = DateTime::from_millis(now.timestamp_millis() + millis(lease));
        self.collection
            .find_one_and_update(
                filter,
                doc! {"$set": {"lease_until": until, "lease_owner": owner}},
            )
            .sort(doc! {"created_at": 1})
            .return_document(ReturnDocument::After)
            .await
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

fn ago(d: Duration) -> DateTime {
    DateTime::from_millis(DateTime::now().timestamp_millis() - millis(d))
}
