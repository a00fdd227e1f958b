//! Reads of single live products, coalesced: the reads that are waiting while earlier ones are
//! in flight go to the database together, as one `find` by `$in`. When many cached products
//! expire at once, this costs a few queries instead of one per product; an idle service still
//! sends each read at once, with no added delay.

use std::collections::HashMap;
use std::sync::Arc;

use bson::oid::ObjectId;
use shared::context::RequestContext;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{ProductDoc, Products};

type Answer = mongodb::error::Result<Option<ProductDoc>>;

/// A read waiting for its batch.
struct Pending {
    id: ObjectId,
    /// The context of the request that asked, so the query is attributed to a request.
    context: Option<RequestContext>,
    reply: oneshot::Sender<Answer>,
}

/// Coalesces concurrent reads of live products by id.
#[derive(Clone)]
pub struct BatchedReads {
    queue: mpsc::Sender<Pending>,
    products: Products,
}

impl BatchedReads {
    /// Starts the batching task: at most `max_batch` ids per query and `concurrency` queries in
    /// flight (both at least 1).
    pub fn new(products: Products, max_batch: usize, concurrency: usize) -> Self {
        let (max_batch, concurrency) = (max_batch.max(1), concurrency.max(1));
        let (queue, waiting) = mpsc::channel(max_batch * concurrency * 4);
        tokio::spawn(run(products.clone(), waiting, max_batch, concurrency));
        Self { queue, products }
    }

    /// The live product with `id`, read along with the others waiting.
    pub async fn find_live(&self, id: ObjectId) -> Answer {
        let (reply, answer) = oneshot::channel();
        let context = RequestContext::current();
        if self
            .queue
            .send(Pending { id, context, reply })
            .await
            .is_ok()
            && let Ok(answer) = answer.await
        {
            return answer;
        }
        // The batching task is gone (the runtime is shutting down): read directly.
        self.products.find_live(id).await
    }
}

/// Takes whatever has queued up whenever a query slot is free, and answers it with one query.
async fn run(
    products: Products,
    mut waiting: mpsc::Receiver<Pending>,
    max_batch: usize,
    concurrency: usize,
) {
    let slots = Arc::new(Semaphore::new(concurrency));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(max_batch);
        if waiting.recv_many(&mut batch, max_batch).await == 0 {
            return;
        }
        let products = products.clone();
        tokio::spawn(async move {
            answer(&products, batch).await;
            drop(slot);
        });
    }
}

async fn answer(products: &Products, batch: Vec<Pending>) {
    let mut ids: Vec<ObjectId> = batch.iter().map(|p| p.id).collect();
    ids.sort_unstable();
    ids.dedup();
    let read = products.find_many(ids);
    let found = match batch.iter().find_map(|p| p.context.clone()) {
        Some(context) => context.scope(read).await,
        None => read.await,
    };
    match found {
        Ok(found) => {
            let found: HashMap<ObjectId, ProductDoc> =
                found.into_iter().map(|p| (p.id, p)).collect();
            for pending in batch {
                // A receiver gone away (its request was dropped) needs no answer.
                let _ = pending.reply.send(Ok(found.get(&pending.id).cloned()));
            }
        }
        Err(e) => {
            for pending in batch {
                let _ = pending.reply.send(Err(e.clone()));
            }
        }
    }
}
