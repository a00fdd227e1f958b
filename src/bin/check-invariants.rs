//! Checks the stock and order invariants in the databases of product-service and order-service
//! and exits non-zero on any violation. See `shop::invariants`.
//!
//! Usage: `check-invariants [--products-db NAME] [--orders-db NAME]` with `MONGODB_URI` set;
//! `--no-orders` checks product-service alone.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let mut products_db = "products".to_owned();
    let mut orders_db = Some("orders".to_owned());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--products-db" => products_db = args.next().unwrap_or(products_db),
            "--orders-db" => orders_db = args.next(),
            "--no-orders" => orders_db = None,
            other => anyhow::bail!("unknown argument {other}; see the source's header"),
        }
    }
    let uri = std::env::var("MONGODB_URI").unwrap_or_else(|_| "mongodb://localhost:27017".into());
    let client = mongodb::Client::with_uri_str(&uri).await?;
    let orders = orders_db.map(|name| client.database(&name));
    let report = shop::invariants::check(&client.database(&products_db), orders.as_ref()).await?;
    #[expect(clippy::print_stdout, reason = "the report is this program's output")]
    {
        print!("{report}");
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
